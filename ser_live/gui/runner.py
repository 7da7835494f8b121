"""Runs the shared :class:`~ser_live.pipeline.Monitor` off the GUI thread and queues what it reports.

The Monitor analyses on its own thread (its worker for the microphone, a file thread here for
files); its callbacks only record the row in the session log and put an event on a queue. The
window drains the queue from its timer, so nothing in the audio path ever waits for the GUI.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Any

from ..adapt import SpeakerNormalizer
from ..audio import audio_info
from ..errors import SerLiveError
from ..model import EmotionModel
from ..pipeline import Monitor, Prediction
from .session import SessionLog

__all__ = ["Event", "MonitorRunner", "Settings", "FILE_BLOCK_S"]

#: Block length when a file is played at real-time pace.
FILE_BLOCK_S = 0.05


@dataclasses.dataclass(frozen=True)
class Settings:
    """Analysis settings the user can change (see :class:`~ser_live.pipeline.Monitor`)."""

    window_s: float
    hop_s: float
    smoothing: float = 0.0


@dataclasses.dataclass(frozen=True)
class Event:
    """Something the analysis side reports to the window.

    ``kind`` is ``"prediction"`` (``payload`` a Prediction on the session clock), ``"status"`` (a
    message, e.g. device lost), ``"error"`` (the run ended with this message) or ``"finished"`` (the
    file ended). ``run`` numbers the start it belongs to.
    """

    kind: str
    payload: Any
    run: int


class MonitorRunner:
    """Start, pause and stop one audio source at a time through a fresh or resumed Monitor.

    Parameters
    ----------
    model : EmotionModel
    settings : Settings
    session : SessionLog
        Receives every prediction (autosaved as it happens).
    """

    def __init__(self, model: EmotionModel, settings: Settings, session: SessionLog) -> None:
        self.model = model
        self.settings = settings
        self.session = session
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.monitor: Monitor | None = None
        self.state = "idle"  # idle | running | paused | finished
        self.source: tuple[str, Any] | None = None  # ("microphone", device) or ("file", path)
        self._run = 0
        self._thread: threading.Thread | None = None
        #: Learn the speaker (when the model can); ``speaker`` carries the learnt statistics from one
        #: Monitor to the next, so a new source or new settings do not forget the voice.
        self.adapt = True
        self.speaker: SpeakerNormalizer | None = None

    # -- the analysis thread's side: record and enqueue, nothing more ---------------------
    def _on_prediction(self, run: int, prediction: Prediction) -> None:
        self.events.put(Event("prediction", self.session(prediction), run))

    def _on_status(self, run: int, message: str) -> None:
        self.events.put(Event("status", message, run))

    def _new_monitor(self) -> Monitor:
        self._run += 1
        run = self._run
        self.session.continue_clock()
        monitor = Monitor(
            self.model,
            window_s=self.settings.window_s,
            hop_s=self.settings.hop_s,
            smoothing=self.settings.smoothing,
            on_prediction=lambda p: self._on_prediction(run, p),
            on_status=lambda m: self._on_status(run, m),
            adapt=self.adapt,
            speaker=self.speaker,
        )
        self.speaker = monitor.analyzer.normalizer
        return monitor

    # -- sources -------------------------------------------------------------------------
    def start_microphone(self, device: int | str | None = None) -> None:
        """Listen to an input device (resuming the paused Monitor when the device is the same).

        Raises
        ------
        DeviceError
            No such device, none at all, or busy; the runner is then idle.
        """
        self.stop()
        if not (self.monitor is not None and self.source == ("microphone", device)):
            self.monitor = self._new_monitor()
        self.source = ("microphone", device)
        try:
            self.monitor.listen(device)
        except BaseException:
            self.state = "idle"
            raise
        self.state = "running"

    def start_file(self, path: str, *, realtime: bool = True) -> None:
        """Play an audio file through a new Monitor on a background thread.

        Raises
        ------
        AudioFileError
            The file is missing or not readable audio (checked before anything starts).
        """
        audio_info(path)  # fail here, in the caller's thread, with the file's own message
        self.stop()
        monitor = self.monitor = self._new_monitor()
        run = self._run
        self.source = ("file", path)

        def play() -> None:
            try:
                # Small blocks at real-time pace scroll the waveform smoothly, like a microphone.
                monitor.run_file(path, realtime=realtime, block_s=FILE_BLOCK_S if realtime else None)
            except SerLiveError as exc:
                self.events.put(Event("error", str(exc), run))
            except Exception as exc:  # shown in the window; the GUI must survive any file
                self.events.put(Event("error", f"{path}: {type(exc).__name__}: {exc}", run))
            else:
                self.events.put(Event("finished", path, run))

        self._thread = threading.Thread(target=play, name="ser-live-file", daemon=True)
        self.state = "running"
        self._thread.start()

    # -- control -------------------------------------------------------------------------
    def pause(self) -> None:
        """Hold the file, or release the microphone, keeping the session and the plots."""
        if self.state != "running" or self.monitor is None:
            return
        if self.source is not None and self.source[0] == "file":
            self.monitor.pause()
        else:
            self.monitor.stop()
        self.state = "paused"

    def resume(self) -> None:
        """Continue after :meth:`pause` (may raise DeviceError for a microphone that went away)."""
        if self.state != "paused" or self.monitor is None or self.source is None:
            return
        if self.source[0] == "file":
            self.monitor.resume()
            self.state = "running"
        else:
            self.start_microphone(self.source[1])

    def stop(self) -> None:
        """End the current run and wait for its thread (the session is kept)."""
        if self.monitor is not None:
            self.monitor.request_stop()
            self.monitor.resume()
            self.monitor.stop()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self.state in ("running", "paused"):
            self.state = "idle"

    def change_settings(self, settings: Settings) -> None:
        """Use new settings: at once for the microphone (a new Monitor), from the next start for files."""
        if settings == self.settings:
            return
        self.settings = settings
        running_mic = self.state == "running" and self.source is not None and self.source[0] == "microphone"
        device = self.source[1] if self.source is not None else None
        self.stop()
        self.monitor = None
        if running_mic:
            self.start_microphone(device)

    def set_adapt(self, adapt: bool) -> None:
        """Turn speaker adaptation on or off: at once for the microphone, from the next start for files."""
        if adapt == self.adapt:
            return
        self.adapt = adapt
        running_mic = self.state == "running" and self.source is not None and self.source[0] == "microphone"
        if running_mic:
            device = self.source[1]
            self.stop()
            self.monitor = None
            self.start_microphone(device)
        elif self.source is None or self.source[0] != "file" or self.state not in ("running", "paused"):
            self.monitor = None

    def forget_speaker(self) -> None:
        """Forget the learnt voice (a new person sits down); learning starts again from the population."""
        if self.speaker is not None:
            self.speaker.reset()  # the running Monitor shares this object, so it starts over at once

    def drain(self, limit: int = 1000) -> list[Event]:
        """Events queued since the last call; a finished/error event also ends the run's state."""
        out = []
        for _ in range(limit):
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if event.run != self._run and event.kind in ("finished", "error"):
                continue  # a superseded run's ending is not news
            if event.kind == "status" and event.run == self._run and self.monitor is not None \
                    and self.monitor.error is not None:
                event = Event("error", event.payload, event.run)  # the listening worker died
            if event.kind == "finished":
                self.state = "finished"
            elif event.kind == "error" and self.state in ("running", "paused"):
                self.state = "idle"
            out.append(event)
        return out
