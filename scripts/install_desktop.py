#!/usr/bin/env python3
"""Install the ser-live desktop launcher and icon for the current user (``make install-desktop``).

Copies ``ser-live.desktop`` to ``~/.local/share/applications`` (with ``Exec`` pointing at this
environment's ``ser-live``, so the menu entry works without activating the venv) and the icon to
``~/.local/share/icons/hicolor/{scalable,256x256}/apps``. ``--uninstall`` removes them again.
Honours ``XDG_DATA_HOME``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "ser_live" / "gui" / "resources"
APP_ID = "ser-live"


def data_home() -> Path:
    """``$XDG_DATA_HOME`` or ``~/.local/share``."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def targets(base: Path) -> dict[str, Path]:
    """Where each installed file goes."""
    return {
        "desktop": base / "applications" / f"{APP_ID}.desktop",
        "svg": base / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg",
        "png": base / "icons" / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png",
    }


def launcher_text(executable: str) -> str:
    """The .desktop file with ``Exec``/``TryExec`` set to ``executable``."""
    lines = []
    for line in (RESOURCES / f"{APP_ID}.desktop").read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0]
        if key in ("Exec", "TryExec"):
            line = f"{key}={executable}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def find_executable() -> str:
    """This environment's ``ser-live`` script, else whatever is on PATH, else the bare name."""
    local = Path(sys.executable).with_name(APP_ID)
    if local.is_file():
        return str(local)
    return shutil.which(APP_ID) or APP_ID


def _refresh_caches(base: Path) -> None:
    # Optional helpers: menus pick the entry up without them, just later.
    for cmd in (["update-desktop-database", str(base / "applications")],
                ["gtk-update-icon-cache", "-q", "-t", str(base / "icons" / "hicolor")]):
        if shutil.which(cmd[0]):
            subprocess.run(cmd, check=False, capture_output=True)


def install(base: Path, executable: str) -> list[Path]:
    """Write the launcher and icons under ``base``; returns the files written."""
    paths = targets(base)
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    paths["desktop"].write_text(launcher_text(executable), encoding="utf-8")
    shutil.copyfile(RESOURCES / f"{APP_ID}.svg", paths["svg"])
    shutil.copyfile(RESOURCES / f"{APP_ID}.png", paths["png"])
    _refresh_caches(base)
    return list(paths.values())


def uninstall(base: Path) -> list[Path]:
    """Remove what :func:`install` wrote; returns the files removed."""
    removed = []
    for path in targets(base).values():
        if path.exists():
            path.unlink()
            removed.append(path)
    _refresh_caches(base)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uninstall", action="store_true", help="remove the launcher and icons")
    parser.add_argument("--exec", dest="executable", help="command the launcher runs (default: this venv's ser-live)")
    args = parser.parse_args(argv)
    base = data_home()
    try:
        if args.uninstall:
            done = uninstall(base)
            print("removed " + (", ".join(map(str, done)) if done else "nothing (not installed)"))
        else:
            done = install(base, args.executable or find_executable())
            print("installed " + ", ".join(map(str, done)))
    except OSError as exc:
        sys.stderr.write(f"install_desktop: cannot write under {base}: {exc.strerror or exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
