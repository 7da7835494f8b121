"""The desktop launcher, icon and their installer (``make install-desktop``)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

RESOURCES = REPO / "ser_live" / "gui" / "resources"
SCRIPT = REPO / "scripts" / "install_desktop.py"


def read_desktop(path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def test_launcher_and_icon_are_valid():
    entry = read_desktop(RESOURCES / "ser-live.desktop")
    assert entry["Type"] == "Application" and entry["Exec"] == "ser-live" and entry["Icon"] == "ser-live"
    assert entry["Terminal"] == "false"
    svg = (RESOURCES / "ser-live.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert (RESOURCES / "ser-live.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if shutil.which("desktop-file-validate"):
        launcher = str(RESOURCES / "ser-live.desktop")
        done = subprocess.run(["desktop-file-validate", launcher], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_install_and_uninstall_under_xdg_data_home(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    desktop = tmp_path / "applications" / "ser-live.desktop"
    entry = read_desktop(desktop)
    # The launcher runs this environment's ser-live, so the menu entry works without activating the venv.
    expected = Path(sys.executable).with_name("ser-live")
    if expected.is_file():
        assert entry["Exec"] == entry["TryExec"] == str(expected)
    else:  # not an installed environment: the launcher falls back to the command name
        assert entry["Exec"] == entry["TryExec"] == "ser-live"
    assert entry["Icon"] == "ser-live"
    svg = tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "ser-live.svg"
    png = tmp_path / "icons" / "hicolor" / "256x256" / "apps" / "ser-live.png"
    assert svg.read_bytes() == (RESOURCES / "ser-live.svg").read_bytes()
    assert png.read_bytes() == (RESOURCES / "ser-live.png").read_bytes()
    done = subprocess.run([sys.executable, str(SCRIPT), "--uninstall"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert not desktop.exists() and not svg.exists() and not png.exists()


def test_install_reports_an_unwritable_target_in_one_line(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where a folder should be")
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          env={"XDG_DATA_HOME": str(blocker), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "cannot write" in done.stderr and "Traceback" not in done.stderr
