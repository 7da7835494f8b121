"""Runs the shared :class:`~ser_live.engine.monitor.Monitor` off the GUI thread and queues what it reports.

The Monitor analyses on its own thread (its worker for the microphone, a file thread here for
files); its callbacks only record the row in the session log and put an event on a queue. The
window drains the queue from its timer, so nothing in the audio path ever waits for the GUI.
"""

from __future__ import annotations

import dataclasses
import enum
import queue
import threading
from typing import TYPE_CHECKING

from ..app.session import MonitorSettings, Session
from ..app.sources import check_audio_file
from ..errors import SerLiveError
from ..results import Prediction, StatusEvent, StatusKind
from .recording import SessionLog

if TYPE_CHECKING:
    from ..engine.monitor import Monitor

__all__ = ["RunState", "Event", "MonitorRunner", "FILE_BLOCK_S"]

#: Block length when a file is played at real-time pace.
FILE_BLOCK_S = 0.05


class RunState(str, enum.Enum):
    """Where the runner's audio source is: a value of this, never a bare string."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


@dataclasses.dataclass(frozen=True)
class Event:
    """Something the analysis side reports to the window: a prediction or a status event of one run.

    Attributes
    ----------
    item : Prediction or StatusEvent
        A :class:`~ser_live.results.Prediction` (on the session clock) or a
        :class:`~ser_live.results.StatusEvent` (device lost, analysis stopped, file finished, ...).
    run : int
        Numbers the start it belongs to, so a superseded run's ending is not taken for the current one's.
    """

    item: Prediction | StatusEvent
    run: int


class MonitorRunner:
    """Start, pause and stop one audio source at a time through a fresh or resumed Monitor.

    Parameters
    ----------
    session : Session
        The application session: model, settings, learnt voice, calibration (see :mod:`ser_live.app.session`).
    log : SessionLog
        Receives every prediction (autosaved as it happens).
    """

    def __init__(self, session: Session, log: SessionLog) -> None:
        self.session = session
        self.model = session.model
        self.log = log
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.monitor: Monitor | None = None
        self.state = RunState.IDLE
        self.source: tuple[str, object] | None = None  # ("microphone", device) or ("file", path)
        self._run = 0
        self._thread: threading.Thread | None = None

    @property
    def settings(self) -> MonitorSettings:
        """The window, hop and smoothing the next Monitor uses."""
        return self.session.settings

    @settings.setter
    def settings(self, settings: MonitorSettings) -> None:
        self.session.settings = settings

    # -- the analysis thread's side: record and enqueue, nothing more ---------------------
    def _on_prediction(self, run: int, prediction: Prediction) -> None:
        self.events.put(Event(self.log(prediction), run))

    def _on_status(self, run: int, event: StatusEvent) -> None:
        self.events.put(Event(event, run))

    def _new_monitor(self) -> Monitor:
        self._run += 1
        run = self._run
        self.log.continue_clock()
        return self.session.monitor(on_prediction=lambda p: self._on_prediction(run, p),
                                    on_status=lambda e: self._on_status(run, e))

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
            self.state = RunState.IDLE
            raise
        self.state = RunState.RUNNING

    def start_file(self, path: str, *, realtime: bool = True) -> None:
        """Play an audio file through a new Monitor on a background thread.

        Raises
        ------
        AudioFileError
            The file is missing or not readable audio (checked before anything starts).
        """
        check_audio_file(path)  # fail here, in the caller's thread, with the file's own message
        self.stop()
        monitor = self.monitor = self._new_monitor()
        run = self._run
        self.source = ("file", path)

        def play() -> None:
            try:
                # Small blocks at real-time pace scroll the waveform smoothly, like a microphone.
                monitor.run_file(path, realtime=realtime, block_s=FILE_BLOCK_S if realtime else None)
            except SerLiveError as exc:
                self.events.put(Event(StatusEvent(StatusKind.ANALYSIS_STOPPED, str(exc)), run))
            except Exception as exc:  # shown in the window; the GUI must survive any file
                self.events.put(Event(StatusEvent(StatusKind.ANALYSIS_STOPPED,
                                                  f"{path}: {type(exc).__name__}: {exc}"), run))
            else:
                self.events.put(Event(StatusEvent(StatusKind.FINISHED, f"finished {path}"), run))

        self._thread = threading.Thread(target=play, name="ser-live-file", daemon=True)
        self.state = RunState.RUNNING
        self._thread.start()

    # -- control -------------------------------------------------------------------------
    def pause(self) -> None:
        """Hold the file, or release the microphone, keeping the session and the plots."""
        if self.state != RunState.RUNNING or self.monitor is None:
            return
        if self.source is not None and self.source[0] == "file":
            self.monitor.pause()
        else:
            self.monitor.stop()
        self.state = RunState.PAUSED

    def resume(self) -> None:
        """Continue after :meth:`pause` (may raise DeviceError for a microphone that went away)."""
        if self.state != RunState.PAUSED or self.monitor is None or self.source is None:
            return
        if self.source[0] == "file":
            self.monitor.resume()
            self.state = RunState.RUNNING
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
        if self.state in (RunState.RUNNING, RunState.PAUSED):
            self.state = RunState.IDLE

    def change_settings(self, settings: MonitorSettings) -> None:
        """Use new settings: at once for the microphone (a new Monitor), from the next start for files."""
        if settings == self.settings:
            return
        self.settings = settings
        running_mic = self.state == RunState.RUNNING and self.source is not None and self.source[0] == "microphone"
        device = self.source[1] if self.source is not None else None
        self.stop()
        self.monitor = None
        if running_mic:
            self.start_microphone(device)

    def set_adapt(self, adapt: bool) -> None:
        """Turn speaker adaptation on or off: at once for the microphone, from the next start for files."""
        if adapt == self.session.adapting:
            return
        self.session.set_adapt(adapt)
        self._remake_monitor()

    def calibrate(self, seconds: float) -> None:
        """Learn the speaker's neutral voice afresh from a reading of ``seconds`` s of speech, then freeze it
        (keep learning when adaptation was on); predictions are held back meanwhile."""
        had_voice = self.session.adapting
        keep_learning = had_voice and self.session.speaker.learn == "judged-neutral"
        self.session.start_calibration(seconds, keep_learning=keep_learning)
        if not had_voice:  # the running monitor has no voice to learn into yet
            self._remake_monitor()

    def _remake_monitor(self) -> None:
        """A monitor with the session's current voice: at once for the microphone, from the next start for files."""
        running_mic = self.state == RunState.RUNNING and self.source is not None and self.source[0] == "microphone"
        if running_mic:
            device = self.source[1]
            self.stop()
            self.monitor = None
            self.start_microphone(device)
        elif self.source is None or self.source[0] != "file" or self.state not in (RunState.RUNNING, RunState.PAUSED):
            self.monitor = None

    def forget_speaker(self) -> None:
        """Forget the learnt voice (a new person sits down); learning starts again from the population."""
        self.session.forget_speaker()  # the running Monitor shares the statistics, so it starts over at once

    def drain(self, limit: int = 1000) -> list[Event]:
        """Events queued since the last call; a finished/error event also ends the run's state."""
        out = []
        for _ in range(limit):
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            kind = getattr(event.item, "kind", None)
            if event.run != self._run and kind in (StatusKind.FINISHED, StatusKind.ANALYSIS_STOPPED):
                continue  # a superseded run's ending is not news
            if kind == StatusKind.FINISHED:
                self.state = RunState.FINISHED
            elif kind == StatusKind.ANALYSIS_STOPPED and self.state in (RunState.RUNNING, RunState.PAUSED):
                self.state = RunState.IDLE
            out.append(event)
        return out
