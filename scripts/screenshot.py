"""Take the README's screenshot, and one of every state of the window, from a scripted session.

Everything is real: an X server (Xvfb) at the window's default size, a private PulseAudio server
whose virtual microphone the window records from (as from any microphone), espeak-ng speech played
into it, and the screen captured with imagemagick's ``import`` (what a person would see), not
Qt's own rendering. Retake after every visible change::

    python scripts/screenshot.py                         # docs/screenshot.png (speech)
    python scripts/screenshot.py --states --out-dir shots/   # listening, speech, paused,
                                                         # device-lost, file, finished
    python scripts/screenshot.py --review                # also docs/review.png: a session kept with its
                                                         # audio, reviewed, the cursor at a clicked moment

Needs the apt packages of ``make test`` (xvfb, pulseaudio, pulseaudio-utils, espeak-ng, imagemagick).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: What a scripted session says (espeak-ng, en); long enough to fill the history with speech.
SPEECH = ("I can't believe you did that again! This is the third time this week, and nobody even told me. "
          "Well, never mind, let's just try to fix it together tomorrow morning.")
STATES = ("listening", "speech", "paused", "device-lost", "file", "finished")


def _start_xvfb(width: int, height: int) -> tuple[subprocess.Popen, str]:
    for number in range(91, 120):
        if Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                return server, f":{number}"
            time.sleep(0.1)
        server.kill()
    raise SystemExit("screenshot: Xvfb did not start (apt-get install xvfb)")


def _speech_file(directory: Path) -> Path:
    path = directory / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(path), SPEECH], check=True, capture_output=True)
    return path


class Session:
    """The window on a private microphone, driven step by step."""

    def __init__(self, display: str, pulse, *, model: str | None) -> None:
        os.environ.update(pulse.env)
        os.environ["DISPLAY"] = display
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        from PyQt6 import QtWidgets

        from ser_live.app.session import SessionConfig, open_session
        from ser_live.gui.window import MainWindow, apply_theme

        self.display = display
        self.pulse = pulse
        self.app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["ser-live"])
        apply_theme(self.app)
        self.sessions = Path(tempfile.mkdtemp(prefix="ser-live-shots-"))
        self.session = open_session(SessionConfig(model=model))
        self.window = MainWindow(self.session, sessions_dir=self.sessions)
        self.window.move(0, 0)
        self.window.show()

    def run_for(self, seconds: float) -> None:
        """Let the event loop run (the window redraws from its timer)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.01)

    def shoot(self, path: Path) -> None:
        """Capture the X screen as a person sees it."""
        self.run_for(0.3)
        path.parent.mkdir(parents=True, exist_ok=True)
        if shutil.which("import"):
            subprocess.run(["import", "-display", self.display, "-window", "root", str(path)], check=True)
        else:  # imagemagick missing: Qt's own rendering of the window
            self.window.grab().save(str(path), "PNG")
        print(f"wrote {path}")

    def close(self) -> None:
        self.window.close()
        self.session.close()
        shutil.rmtree(self.sessions, ignore_errors=True)


def _review_shot(display: str, pulse, speech: Path, out: Path, *, model: str | None) -> None:
    """A fresh session with its audio kept, the speech spoken into the microphone, then that session reviewed."""
    shots = Session(display, pulse, model=model)
    try:
        window = shots.window
        window.keep_audio.setChecked(True)
        window.start_microphone()
        shots.run_for(1.0)
        player = pulse.play(speech, wait=False)
        while player.poll() is None:
            shots.run_for(0.2)
        shots.run_for(1.5)
        window.runner.stop()
        shots.session.audio_recorder.close()
        review = window.open_session(str(window.session.autosave_path))
        review.move(0, 0)
        review.resize(window.width(), window.height())
        shots.run_for(1.0)
        review.seek(review.recording.duration_s * 0.45)  # where a person clicked
        shots.shoot(out)
        review.close()
    finally:
        shots.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png", help="the README's screenshot")
    parser.add_argument("--states", action="store_true", help="also one screenshot per state, in --out-dir")
    parser.add_argument("--out-dir", type=Path, default=REPO / "docs" / "states", help="where --states go")
    parser.add_argument("--model", default=None, help="model name or file (default: the shipped default)")
    parser.add_argument("--size", default="1280x800", help="screen size, WIDTHxHEIGHT (default 1280x800)")
    parser.add_argument("--review", action="store_true", help="also the review view of a kept session")
    parser.add_argument("--review-out", type=Path, default=REPO / "docs" / "review.png", help="where --review goes")
    args = parser.parse_args(argv)
    for tool in ("Xvfb", "pulseaudio", "espeak-ng"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed ('make setup-test' installs it)")
    from ser_live.audio.virtual_microphone import PulseServer

    width, height = (int(v) for v in args.size.split("x"))
    xvfb, display = _start_xvfb(width, height)
    work = Path(tempfile.mkdtemp(prefix="ser-live-speech-"))
    try:
        with PulseServer() as pulse:
            speech = _speech_file(work)
            shots = Session(display, pulse, model=args.model)
            try:
                window = shots.window
                window.start_microphone()
                shots.run_for(3.0)
                if args.states:
                    shots.shoot(args.out_dir / "listening.png")
                player = pulse.play(speech, wait=False)
                shots.run_for(7.0)
                shots.shoot(args.out)
                if args.states:
                    shots.shoot(args.out_dir / "speech.png")
                    window.toggle_running()  # pause
                    shots.run_for(1.0)
                    shots.shoot(args.out_dir / "paused.png")
                    window.toggle_running()  # resume
                    shots.run_for(1.0)
                    # The source stops delivering audio: what an unplugged USB microphone does.
                    pulse.pactl("suspend-source", pulse.source, "1")
                    shots.run_for(5.0)
                    shots.shoot(args.out_dir / "device-lost.png")
                    pulse.pactl("suspend-source", pulse.source, "0")
                    shots.run_for(4.0)
                    window.open_file(str(speech))
                    shots.run_for(5.0)
                    shots.shoot(args.out_dir / "file.png")
                    while window.runner.state == "running":
                        shots.run_for(0.5)
                    shots.shoot(args.out_dir / "finished.png")
                player.wait(timeout=60)
            finally:
                shots.close()
            if args.review:
                _review_shot(display, pulse, speech, args.review_out, model=args.model)
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
