"""The real window on a real X server: ``ser-live --input FILE`` under Xvfb, screenshot, and the plot is not blank."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets", reason="the window needs PyQt6 ('pip install ser-live[gui]')")
pytest.importorskip("pyqtgraph", reason="the window needs pyqtgraph ('pip install ser-live[gui]')")

from conftest import REPO, write_wav  # noqa: E402
from PyQt6 import QtCore, QtGui  # noqa: E402
from test_gui import delete_windows, speech_and_pauses  # noqa: E402

from ser_live.gui import palette  # noqa: E402

pytestmark = [
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb ('make test' installs xvfb)"),
    pytest.mark.skipif(shutil.which("import") is None, reason="needs ImageMagick's import ('make test' installs it)"),
]

SCREEN = (1280, 800)


def _free_display() -> int:
    for number in range(150, 400):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return number
    pytest.skip("no free X display number between :150 and :399")


@pytest.fixture
def xvfb():
    """A private X server on a free display number, up and accepting connections."""
    for _attempt in range(5):
        number = _free_display()
        server = subprocess.Popen(
            ["Xvfb", f":{number}", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp", "-noreset"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        socket = Path(f"/tmp/.X11-unix/X{number}")
        deadline = time.monotonic() + 15
        while server.poll() is None and not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # a server that lost the number to another one exits right away
        if server.poll() is None and socket.exists():
            break
        server.kill()  # lost a race for the number, or slow to start: try another
        server.wait()
    else:
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def history_region(qtbot, tiny_model, tmp_path) -> QtCore.QRect:
    """Where the history plot sits inside a window of the size the real one opens at."""
    from ser_live.app.session import SessionConfig, open_session
    from ser_live.gui.window import MainWindow

    window = MainWindow(open_session(SessionConfig(), model=tiny_model), sessions_dir=tmp_path / "layout")
    window.show()  # deleted below, on this thread
    qtbot.waitExposed(window)
    assert (window.width(), window.height()) == SCREEN
    top_left = window.history.mapTo(window, QtCore.QPoint(0, 0))
    region = QtCore.QRect(top_left, window.history.size())
    delete_windows()
    # Keep clear of the axes and of small font differences between platforms.
    return region.adjusted(60, 20, -10, -50)


def window_origin(display: str) -> tuple[int, int]:
    """Top-left corner of the ser-live window on the screen (0, 0 when xwininfo is missing)."""
    if shutil.which("xwininfo") is None:
        return 0, 0
    out = subprocess.run(["xwininfo", "-display", display, "-name", "ser-live: speech emotion monitor"],
                         capture_output=True, text=True).stdout
    values = dict(line.strip().split(":", 1) for line in out.splitlines() if ":" in line)
    try:
        return int(values["Absolute upper-left X"]), int(values["Absolute upper-left Y"])
    except (KeyError, ValueError):
        return 0, 0


def screen_pixels(display: str, path: Path) -> np.ndarray | None:
    """Screenshot of the whole X screen as an (h, w, 3) uint8 array."""
    done = subprocess.run(["import", "-display", display, "-window", "root", str(path)], capture_output=True)
    if done.returncode != 0 or not path.is_file():
        return None
    image = QtGui.QImage(str(path)).convertToFormat(QtGui.QImage.Format.Format_RGB888)
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : 3 * image.width()].reshape(image.height(), image.width(), 3).copy()


def _blend(over: str, under: str, alpha: int) -> str:
    """The colour ``over`` drawn at ``alpha`` (0-255) on ``under``."""
    mix = [round(int(under[i:i + 2], 16) + (int(over[i:i + 2], 16) - int(under[i:i + 2], 16)) * alpha / 255)
           for i in (1, 3, 5)]
    return "#" + "".join(f"{v:02X}" for v in mix)


#: The no-speech band as drawn: the palette's grey at the band's alpha (90) over the plot background.
NO_SPEECH_BAND = _blend(palette.NO_SPEECH_COLOUR, palette.PANEL, 90)


def colour_counts(region: np.ndarray, colours: dict[str, str], tolerance: int = 40) -> dict[str, int]:
    """Pixels within ``tolerance`` (max channel difference) of each colour."""
    out = {}
    for name, hex_colour in colours.items():
        rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
        out[name] = int(np.sum(np.max(np.abs(region.astype(int) - rgb), axis=2) <= tolerance))
    return out


def test_real_window_under_xvfb_draws_the_emotion_history(xvfb, qtbot, tiny_model, tiny_model_path, tmp_path):
    wav = write_wav(tmp_path / "speech.wav", np.concatenate([speech_and_pauses(seed=s) for s in range(3)]))
    box = history_region(qtbot, tiny_model, tmp_path)
    # The real platform plugin (xcb), not the offscreen one the unit tests use; trust only by the flag.
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "SER_LIVE_TRUST_MODEL")}
    env.update(DISPLAY=xvfb, XDG_DATA_HOME=str(tmp_path / "xdg"))
    app = subprocess.Popen(
        [sys.executable, "-m", "ser_live", "--input", str(wav), "--model", str(tiny_model_path)],
        cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    shot = tmp_path / "shot.png"
    seen: dict[str, int] = {}
    band = 0
    try:
        # Wait (bounded) until the history shows lines of several emotions and a no-speech band.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and app.poll() is None:
            time.sleep(1.0)
            pixels = screen_pixels(xvfb, shot)
            if pixels is None:
                continue
            x0, y0 = window_origin(xvfb)
            region = pixels[y0 + box.top() : y0 + box.bottom(), x0 + box.left() : x0 + box.right()]
            seen = colour_counts(region, palette.EMOTION_COLOURS)
            # The no-speech band: grey at the band's alpha over the plot background.
            band = colour_counts(region, {"band": NO_SPEECH_BAND}, tolerance=6)["band"]
            if sum(n >= 30 for n in seen.values()) >= 3 and band > 500:
                break
        assert app.poll() is None, f"the window exited early: {app.stderr.read() if app.stderr else ''}"
    finally:
        app.terminate()
        out, err = app.communicate(timeout=20)
    assert "Traceback" not in err, err
    assert sum(n >= 30 for n in seen.values()) >= 3, f"emotion lines missing from the history plot: {seen}"
    assert band > 500, "no-speech stretches are not marked in the history plot"
    region_std = region.reshape(-1, 3).std(axis=0).max()
    assert region_std > 10, "the history plot area is blank"
