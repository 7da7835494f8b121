"""The application layer under both front-ends: one validated :class:`SessionConfig`, one :func:`open_session`.

The console (:mod:`ser_live.cli.main`) and the window (:mod:`ser_live.gui`) never import each other; both
build a :class:`SessionConfig` (from the command line, or in code) and call :func:`open_session`, which
loads the model, resolves the analysis settings, the speaker profile and calibration, opens the session
file, and makes the :class:`~ser_live.engine.monitor.Monitor` objects a front-end runs. Closing the
:class:`Session` saves the learnt voice. Everything the session reports goes to one ``on_status``
callback as a typed :class:`~ser_live.results.StatusEvent`.

Example
-------
>>> from ser_live.app.session import SessionConfig, open_session          # doctest: +SKIP
>>> with open_session(SessionConfig(model="light")) as session:     # doctest: +SKIP
...     monitor = session.monitor(on_prediction=print)
...     monitor.run_file("speech.wav")
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine.settings import HOP_S, SMOOTHING, WINDOW_S, check_analysis_settings
from ..errors import ConfigError, SessionFileError
from ..results import Prediction, StatusEvent, StatusKind

__all__ = [
    "WINDOW_S", "HOP_S", "SMOOTHING", "MonitorSettings", "SessionConfig", "Calibration", "Session",
    "open_session", "resolve_settings", "profile_key", "NEUTRAL_PASSAGE",
]

StatusCallback = Callable[[StatusEvent], None]
PredictionCallback = Callable[[Prediction], None]


@dataclasses.dataclass(frozen=True)
class MonitorSettings:
    """Analysis settings a user can change while a session runs (see :class:`~ser_live.engine.monitor.Monitor`).

    Attributes
    ----------
    window_s, hop_s : float
        Analysis window and the time between analyses, in seconds.
    smoothing : float
        Exponential smoothing of probabilities across hops, in [0, 1).
    """

    window_s: float
    hop_s: float
    smoothing: float = 0.0

    def __post_init__(self) -> None:
        check_analysis_settings(self.window_s, self.hop_s, self.smoothing)


@dataclasses.dataclass(frozen=True)
class SessionConfig:
    """Everything a monitoring session is started with, validated when it is made.

    Every option means the same in the console and in the window.

    Parameters
    ----------
    model : str, optional
        ``"default"``, ``"light"`` or a model file (``--model``); the shipped default when omitted.
    input_path : str, optional
        Analyse this audio file instead of the microphone (``--input``).
    realtime : bool
        With ``input_path``: play it at real-time pace (``--realtime``).
    device : str, optional
        Input device: a name, an index or a unique name fragment (``--device``); the default input when omitted.
    window_s, hop_s : float, optional
        Analysis window and hop in seconds (``--window``, ``--hop``); the model's own when omitted.
    smoothing : float
        Exponential smoothing of probabilities across hops, in [0, 1) (``--smooth``).
    adapt : bool
        Keep learning the speaker's neutral voice from the windows the plain model judges neutral
        (``--adapt``; off by default, see :mod:`ser_live.model.speaker`).
    profile : str, optional
        Use the learnt voice of this profile name and save it there at the end (``--profile``).
    calibrate_s : float, optional
        Learn the speaker's neutral voice from a reading of this many seconds of speech first, holding
        predictions back meanwhile, then freeze it unless ``adapt`` (``--calibrate``).
    record_path : str, optional
        Also write every hop to this CSV file as it happens (``--record``); never overwrites a file.
    record_audio : bool
        Also keep the audio heard, beside the CSV (``--record-audio``: the CSV's name ending ``.wav``).
    lsl_name : str, optional
        Publish the predictions as a Lab Streaming Layer stream of this name (``--lsl``; needs pylsl).

    Raises
    ------
    ConfigError
        For a value out of range or options that contradict each other (one line naming the options).
    """

    model: str | None = None
    input_path: str | None = None
    realtime: bool = False
    device: str | None = None
    window_s: float | None = None
    hop_s: float | None = None
    smoothing: float = 0.0
    adapt: bool = False
    profile: str | None = None
    calibrate_s: float | None = None
    record_path: str | None = None
    record_audio: bool = False
    lsl_name: str | None = None

    def __post_init__(self) -> None:
        check_analysis_settings(self.window_s, self.hop_s, self.smoothing, window_from="--window", hop_from="--hop")
        for option, value in (("--profile", self.profile), ("--record", self.record_path),
                              ("--input", self.input_path), ("--device", self.device), ("--model", self.model),
                              ("--lsl", self.lsl_name)):
            if value is not None and not str(value).strip():
                raise ConfigError(f"{option} needs a value; it was given an empty one")
        self._check_source_and_outputs()
        if self.calibrate_s is not None and not (math.isfinite(self.calibrate_s) and self.calibrate_s > 0):
            raise ConfigError(f"--calibrate must be a positive number of seconds, got {self.calibrate_s:g}")
        if self.profile is not None:
            from ..model.speaker import profile_path

            try:
                profile_path(self.profile)
            except ValueError as exc:
                raise ConfigError(f"--profile: {exc}") from None

    def _check_source_and_outputs(self) -> None:
        if self.realtime and self.input_path is None:
            raise ConfigError("--realtime goes with --input FILE")
        if self.record_audio and self.record_path is None:
            raise ConfigError("--record-audio keeps the audio beside the session file: give --record FILE.csv too")
        if self.device is not None and self.input_path is not None:
            raise ConfigError("--device chooses a microphone; it does not apply with --input FILE")

    @property
    def uses_voice(self) -> bool:
        """Whether the session learns or uses a speaker's voice (``--adapt``, ``--calibrate`` or ``--profile``)."""
        return self.adapt or self.calibrate_s is not None or self.profile is not None

    @classmethod
    def from_args(cls, args: Any) -> SessionConfig:
        """The config of parsed ``ser-live`` arguments (:func:`ser_live.cli.main.build_parser`)."""
        for option, given in (("--calibrate", args.calibrate is not None), ("--profile", args.profile is not None)):
            if args.no_adapt and given:
                raise ConfigError(f"{option} uses a learnt voice, which --no-adapt turns off; drop one of them")
        return cls(
            model=args.model, input_path=args.input, realtime=args.realtime,
            device=args.device, window_s=args.window, hop_s=args.hop, smoothing=args.smooth,
            adapt=args.adapt, profile=args.profile, calibrate_s=args.calibrate, record_path=args.record,
            record_audio=args.record_audio, lsl_name=args.lsl,
        )


def resolve_settings(config: SessionConfig, model: Any) -> MonitorSettings:
    """The window, hop and smoothing a session runs with: the config's, else the model's.

    Raises
    ------
    ConfigError
        When the two together do not fit, naming where each value came from.
    """
    window_s = config.window_s if config.window_s is not None else model.window_s
    hop_s = config.hop_s if config.hop_s is not None else model.hop_s
    window_from = "--window" if config.window_s is not None else "the model's window"
    hop_from = "--hop" if config.hop_s is not None else "the model's hop"
    check_analysis_settings(window_s, hop_s, window_from=window_from, hop_from=hop_from)
    return MonitorSettings(window_s=float(window_s), hop_s=float(hop_s), smoothing=config.smoothing)


#: What a calibration asks the speaker to read in their everyday voice (Aesop's fable, the phoneticians' passage).
NEUTRAL_PASSAGE = ("The North Wind and the Sun were disputing which was the stronger, when a traveller came along "
                   "wrapped in a warm cloak. They agreed that the one who first succeeded in making the traveller "
                   "take his cloak off should be considered stronger than the other.")


class Calibration:
    """Holds predictions back until ``seconds`` of the speaker's neutral speech were learnt, reporting progress.

    Parameters
    ----------
    seconds : float
        Speech to learn before predictions are shown.
    learnt_s : callable
        Returns the seconds of speech learnt so far (the session's speaker statistics).
    on_done : callable, optional
        Called once when the reading is learnt (the session freezes the voice there, or keeps learning).
    """

    def __init__(self, seconds: float, learnt_s: Callable[[], float],
                 on_done: Callable[[], None] | None = None) -> None:
        self.seconds = float(seconds)
        self._learnt_s = learnt_s
        self._on_done = on_done
        self._target_s = learnt_s() + self.seconds
        self.done = False
        self._shown = -1

    @property
    def progress_s(self) -> float:
        """Seconds of speech learnt towards the target."""
        return min(self.seconds, self.seconds - max(0.0, self._target_s - self._learnt_s()))

    def passes(self, prediction: Prediction, on_status: StatusCallback) -> bool:
        """Whether this prediction may reach the consumers.

        While it may not, ``on_status`` receives :attr:`~ser_live.results.StatusKind.CALIBRATING` progress
        (the passage to read first, then every 5 s of speech); then one
        :attr:`~ser_live.results.StatusKind.CALIBRATED` event.
        """
        if self.done:
            return True
        learnt = self.progress_s
        if learnt >= self.seconds:
            # This window was classified before it was learnt from, with less than the target: the
            # first prediction shown is the next one.
            self.done = True
            if self._on_done is not None:
                self._on_done()
            on_status(StatusEvent(StatusKind.CALIBRATED,
                                  f"calibration done: learnt {self.seconds:g} s of your neutral voice; monitoring"))
            return False
        if int(learnt) // 5 != self._shown:  # a line every 5 s of speech, not one per hop
            self._shown = int(learnt) // 5
            on_status(StatusEvent(StatusKind.CALIBRATING, self.message(learnt)))
        return False

    def message(self, learnt_s: float) -> str:
        """The calibration line: the passage while little is learnt, then the progress."""
        if learnt_s < 5:
            return (f"calibrating: read this aloud in your everyday voice ({self.seconds:g} s of speech): "
                    f"\"{NEUTRAL_PASSAGE}\"")
        return f"calibrating: {learnt_s:.0f} of {self.seconds:g} s of your neutral voice heard; keep reading"


def _ignore(_event: StatusEvent) -> None:
    pass


class Session:
    """One monitoring session: the model, its settings, the learnt voice, calibration and the session file.

    Made by :func:`open_session`; use it as a context manager, or call :meth:`close`.

    Attributes
    ----------
    config : SessionConfig
    model : EmotionModel
    settings : MonitorSettings
        The window, hop and smoothing new monitors use (a front-end may change them).
    speaker : SpeakerNormalizer or None
        The learnt voice, shared by every monitor of the session (None when not adapting).
    calibration : Calibration or None
    recorder : CsvRecorder or None
        The ``--record`` file, opened before anything runs.
    audio_recorder : AudioRecorder or None
        The ``--record-audio`` WAV beside the session file; every monitor of the session writes what it hears.
    lsl : LslOutlet or None
        The ``--lsl`` stream; every monitor of the session publishes to it.
    """

    def __init__(self, config: SessionConfig, model: Any, settings: MonitorSettings, *,
                 on_status: StatusCallback | None = None) -> None:
        self.config = config
        self.model = model
        self.settings = settings
        self.on_status: StatusCallback = on_status or _ignore
        self.speaker = None
        self._parked_speaker = None  # what was learnt before adaptation was turned off, kept for turning it on
        self.profile_path: Path | None = None
        self.calibration: Calibration | None = None
        self.recorder = None
        self.audio_recorder = None
        self.lsl = None
        self._closed = False

    # -- speaker adaptation -----------------------------------------------------------------
    @property
    def can_adapt(self) -> bool:
        """Whether the model has a speaker-adaptive variant."""
        return self.model.adaptation is not None

    @property
    def adapting(self) -> bool:
        """Whether new monitors learn the speaker's voice."""
        return self.speaker is not None

    def set_adapt(self, adapt: bool) -> None:
        """Turn speaker adaptation on (learning from windows judged neutral) or off, for the monitors made
        from now on (keeps what was learnt)."""
        from ..model.speaker import SpeakerNormalizer

        if adapt and not self.can_adapt:
            raise ConfigError("this model cannot adapt to the speaker")
        if adapt and self.speaker is None:
            self.speaker = self._parked_speaker or SpeakerNormalizer(
                self.model.adaptation.prior, hop_s=self.settings.hop_s)
        if adapt and self.speaker.learn == "frozen":
            self.speaker.learn = "judged-neutral"
        elif not adapt and self.speaker is not None:
            self._parked_speaker, self.speaker = self.speaker, None

    def start_calibration(self, seconds: float, *, keep_learning: bool = False) -> None:
        """Learn the speaker's neutral voice afresh from a reading of ``seconds`` s of speech, then freeze it.

        Predictions are held back meanwhile (see :class:`Calibration`); with ``keep_learning`` the voice
        then keeps learning from windows judged neutral instead of freezing.
        """
        from ..model.speaker import SpeakerNormalizer

        if not self.can_adapt:
            raise ConfigError("this model cannot adapt to the speaker")
        if self.speaker is None:
            self.speaker = SpeakerNormalizer(self.model.adaptation.prior, hop_s=self.settings.hop_s)
        speaker = self.speaker
        speaker.reset()
        speaker.learn = "every"  # the reading is neutral by request: every speech window of it counts

        def done() -> None:
            speaker.learn = "judged-neutral" if keep_learning else "frozen"

        self.calibration = Calibration(seconds, lambda: self.learnt_s, on_done=done)

    def forget_speaker(self) -> None:
        """Forget the learnt voice (a new person sits down); running monitors start over at once."""
        if self.speaker is not None:
            self.speaker.reset()

    @property
    def learnt_s(self) -> float:
        """Seconds of the speaker's speech learnt (0 when not adapting)."""
        return self.speaker.learnt_s if self.speaker is not None else 0.0

    @property
    def adaptation_weight(self) -> float:
        """Weight of the speaker's own statistics in [0, 1) (0 when not adapting)."""
        return self.speaker.weight if self.speaker is not None else 0.0

    def adaptation_line(self) -> str:
        """What the session does with the speaker's voice and what that was measured to do (console, window)."""
        from ..model.speaker import measured_effect

        if not self.can_adapt:
            return "this model cannot adapt to a speaker"
        if self.speaker is None:
            return "speaker adaptation off (the plain model)"
        how = {"every": "calibrating", "judged-neutral": "learning from windows heard as neutral",
               "frozen": "frozen"}[self.speaker.learn]
        line = (f"neutral voice learnt from {self.learnt_s:.0f} s of speech (weighs {self.adaptation_weight:.0%}), "
                f"{how}")
        effect = measured_effect(self.model.path, "adapt" if self.speaker.learn == "judged-neutral" else "calibrate")
        return line + (f"; measured on held-out speakers: {effect}" if effect else "")

    # -- monitors -------------------------------------------------------------------------
    def monitor(self, *, on_prediction: PredictionCallback | None = None,
                on_status: StatusCallback | None = None, settings: MonitorSettings | None = None) -> Any:
        """A new :class:`~ser_live.engine.monitor.Monitor` with this session's model, settings and learnt voice.

        Predictions pass the calibration (if any) before ``on_prediction`` sees them; status events go
        to ``on_status`` (the session's own callback when omitted).
        """
        from ..engine.monitor import Monitor

        settings = settings or self.settings
        status = on_status or self.on_status

        def deliver(prediction: Prediction) -> None:
            calibrated = self.calibration is None or self.calibration.passes(prediction, status)
            if calibrated and self.lsl is not None:
                self.lsl.push(prediction, monitor.audio_clock_s(prediction.t_s))
            if on_prediction is not None and calibrated:
                on_prediction(prediction)

        monitor = Monitor(self.model, window_s=settings.window_s, hop_s=settings.hop_s, smoothing=settings.smoothing,
                          on_prediction=deliver, on_status=status, adapt=self.adapting, speaker=self.speaker)
        if self.audio_recorder is not None:
            monitor.add_audio_sink(self.audio_recorder.write)
        return monitor

    # -- the end ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the session file and save the learnt voice to the profile (idempotent).

        Problems are reported to ``on_status`` as warnings; nothing here raises.
        """
        if self._closed:
            return
        self._closed = True
        if self.calibration is not None and not self.calibration.done:
            self.on_status(StatusEvent(
                StatusKind.CALIBRATION_INCOMPLETE,
                f"calibration incomplete: learnt {self.calibration.progress_s:.0f} of "
                f"{self.calibration.seconds:g} s of speech before the input ended, so no emotions were shown"))
        self._close_outputs()
        speaker = self.speaker or self._parked_speaker
        if speaker is not None and self.profile_path is not None:
            try:
                speaker.save(self.profile_path, profile_key=profile_key(self.model))
            except OSError as exc:
                self.on_status(StatusEvent(
                    StatusKind.WARNING,
                    f"warning: could not save the speaker profile {self.profile_path} ({exc.strerror or exc})"))

    def _close_outputs(self) -> None:
        """The LSL stream and the session file."""
        if self.lsl is not None:
            self.lsl.close()
        for recorder in (self.recorder, self.audio_recorder):
            try:
                if recorder is not None:
                    recorder.close()
            except OSError as exc:
                self.on_status(StatusEvent(StatusKind.WARNING, f"warning: {exc}"))

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def profile_key(model: Any) -> str:
    """What a speaker profile must have been learnt with to fit ``model``: its extractor's kind and version."""
    extractor = model.extractor
    return f"{extractor.kind}-{extractor.version}"


def open_session(config: SessionConfig, *, on_status: StatusCallback | None = None, model: Any = None) -> Session:
    """Load the model and everything a session starts from, and return the :class:`Session`.

    Parameters
    ----------
    config : SessionConfig
    on_status : callable, optional
        Receives every :class:`~ser_live.results.StatusEvent` of the session (profile loaded or
        ignored, calibration progress, device lost, ...).
    model : EmotionModel, optional
        An already loaded model to use instead of loading ``config.model``.

    Raises
    ------
    SerLiveError
        The model cannot be loaded (:class:`~ser_live.errors.ModelError`), the settings do not fit it
        (:class:`~ser_live.errors.ConfigError`), or the session file cannot be created
        (:class:`~ser_live.errors.SessionFileError`).
    """
    if model is None:
        from ..model.emotion_model import EmotionModel

        model = EmotionModel.load(config.model)
    session = Session(config, model, resolve_settings(config, model), on_status=on_status)
    if config.uses_voice:
        _start_voice(session, config)
    _open_outputs(session, config, session.on_status)
    return session


def _start_voice(session: Session, config: SessionConfig) -> None:
    """The voice ``--adapt``, ``--calibrate`` and ``--profile`` ask for: learning, calibrating or frozen."""
    from ..model.speaker import SpeakerNormalizer

    if not session.can_adapt:
        option = "--calibrate" if config.calibrate_s is not None else "--profile" if config.profile else "--adapt"
        raise ConfigError(f"{option}: this model cannot adapt to the speaker")
    learn = "judged-neutral" if config.adapt else "frozen"
    session.speaker = SpeakerNormalizer(session.model.adaptation.prior, hop_s=session.settings.hop_s, learn=learn)
    if config.profile is not None:
        _load_profile(session, config.profile, session.on_status)
    if config.calibrate_s is not None:
        session.start_calibration(config.calibrate_s, keep_learning=config.adapt)


def _load_profile(session: Session, name: str, status: StatusCallback) -> None:
    """Start the session's voice from the profile ``name``; a refused profile is one warning, and a fresh start."""
    from ..model.speaker import profile_path

    session.profile_path = profile_path(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = session.speaker.load(session.profile_path, profile_key=profile_key(session.model))
    for warning in caught:
        status(StatusEvent(StatusKind.WARNING, f"warning: {warning.message}; starting afresh"))
    if loaded:
        status(StatusEvent(StatusKind.NOTICE, f"speaker profile '{name}': "
                                              f"{session.speaker.learnt_s:.0f} s of speech already learnt"))


def _audio_recorder(csv_path: str, sample_rate_hz: int, status: StatusCallback) -> Any:
    from ..sinks.writers import AudioRecorder, audio_path_beside

    path = audio_path_beside(csv_path)
    if path == Path(csv_path):
        raise ConfigError(f"--record {csv_path}: name the session file .csv; its audio goes beside it as .wav")
    recorder = AudioRecorder(path, sample_rate_hz)
    megabytes_per_hour = sample_rate_hz * 2 * 3600 / 1e6
    status(StatusEvent(StatusKind.NOTICE, f"keeping the audio in {path} ({megabytes_per_hour:.0f} MB per hour)"))
    return recorder


def _open_outputs(session: Session, config: SessionConfig, status: StatusCallback) -> None:
    """The ``--record`` file and the ``--lsl`` stream, before anything runs."""
    classes, hop_s = session.model.classes, session.settings.hop_s
    if config.record_audio:  # first: if the CSV cannot be made, the fresh WAV goes again
        session.audio_recorder = _audio_recorder(config.record_path, session.model.sample_rate_hz, status)
    if config.record_path is not None:
        from ..sinks.writers import CsvRecorder

        try:
            session.recorder = CsvRecorder(config.record_path, classes)
        except SessionFileError:
            if session.audio_recorder is not None:
                session.audio_recorder.close()
                session.audio_recorder.path.unlink(missing_ok=True)
            raise
    if config.lsl_name is not None:
        from ..sinks.lsl import LslOutlet, channel_labels

        session.lsl = LslOutlet(config.lsl_name, classes, hop_s=hop_s)
        channels = len(channel_labels(classes))
        status(StatusEvent(StatusKind.NOTICE, f"publishing the LSL stream '{config.lsl_name}' (type Emotion, "
                                              f"{channels} channels, one sample every {hop_s:g} s)"))
