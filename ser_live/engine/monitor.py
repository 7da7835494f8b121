"""The analysis pipeline: buffer → windows → speech gate → features → model → predictions for consumers.

:class:`Monitor` is the one engine behind the console, the GUI and the Python API. Audio comes in
through :meth:`Monitor.feed` (files, tests, any source) or from the microphone
(:meth:`Monitor.listen`); every due window becomes a :class:`Prediction` handed to the callbacks.
:func:`classify_signal` classifies a whole recording the same way.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..audio.buffer import RingBuffer, WindowSchedule, stream_utterance_windows
from ..audio.files import iter_audio_blocks, resample, sanitise_samples
from ..dsp.gate import SpeechGate
from ..errors import DeviceError
from ..features.extractor import FeatureExtractor
from ..model.emotion_model import EmotionModel
from ..model.speaker import SpeakerNormalizer
from ..results import ClipResult, Prediction, SessionSummary, StatusEvent, StatusKind
from .settings import check_analysis_settings

__all__ = [
    "Prediction", "ClipResult", "SessionSummary", "WindowAnalyzer", "Monitor", "MonitorSnapshot", "classify_signal",
    "classify_file", "GatedFeatures", "gated_window_features",
]

PredictionCallback = Callable[["Prediction"], None]
StatusCallback = Callable[[StatusEvent], None]


class WindowAnalyzer:
    """Gate, features and model for one window; optional smoothing of probabilities across hops.

    Parameters
    ----------
    model : EmotionModel
    smoothing : float
        Weight of the past in an exponential moving average of the probabilities over consecutive
        speech windows, in [0, 1); 0 turns smoothing off. With hop ``h`` the time constant is
        ``h / (1 - smoothing)``.
    gate : SpeechGate, optional
        A fresh gate at the model's rate when omitted.
    normalizer : SpeakerNormalizer, optional
        Learn the speaker (see :mod:`ser_live.model.speaker`; the model must have an adaptive variant): each
        speech window is classified with the statistics learnt so far, then learnt from.
    """

    def __init__(self, model: EmotionModel, *, smoothing: float = 0.0, gate: SpeechGate | None = None,
                 normalizer: SpeakerNormalizer | None = None) -> None:
        check_analysis_settings(smoothing=smoothing, smoothing_from="smoothing")
        self.model = model
        self.smoothing = smoothing
        self.gate = gate if gate is not None else model.make_gate()
        self._smoothed: np.ndarray | None = None
        if normalizer is not None and model.adaptation is None:
            raise ValueError("the model has no speaker-adaptive variant to use a speaker normaliser with")
        #: The speaker's running statistics; None when not adapting.
        self.normalizer = normalizer

    def reset(self) -> None:
        """Forget the noise floor and the smoothing state."""
        self.gate.reset()
        self._smoothed = None

    def _predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The probabilities shown (adapted when adapting) and the plain model's."""
        plain = self.model.predict_proba(features)
        if self.normalizer is None:
            return plain, plain
        return self.model.predict_proba_adapted(features, self.normalizer, plain=plain), plain

    def classify_speech(self, features: np.ndarray) -> np.ndarray:
        """Unsmoothed probabilities of one speech window's features; then the voice learns from them if it may."""
        probs, plain = self._predict(features)
        self._learn(features, plain)  # after predicting: a window is never normalised by itself
        return probs

    def _learn(self, features: np.ndarray, plain: np.ndarray) -> None:
        """Teach the speaker's voice one speech window, if the normaliser's mode lets this window teach it."""
        normalizer, adaptation = self.normalizer, self.model.adaptation
        if normalizer is None or adaptation is None or normalizer.learn == "frozen":
            return
        if normalizer.learn == "every" or adaptation.learns_from(self.model.untempered(plain), self.model.classes):
            normalizer.update(features)

    def __call__(self, window: np.ndarray, *, t_s: float) -> Prediction:
        """Analyse the window ending at stream time ``t_s``."""
        decision = self.gate(window, end_s=t_s)
        if not decision.speech:
            return Prediction(t_s, False, None, 0.0, None, decision.level_db)  # silence never teaches the speaker
        # The gate already tracked the pitch of the loud frames; the features reuse it.
        features = self.model.extractor(window, pitch=decision.pitch)
        probs = self.classify_speech(features)
        if self.smoothing > 0.0:
            if self._smoothed is not None:
                probs = self.smoothing * self._smoothed + (1.0 - self.smoothing) * probs
            self._smoothed = probs
        best = int(np.argmax(probs))
        return Prediction(
            t_s=t_s,
            speech=True,
            emotion=self.model.classes[best],
            confidence=float(probs[best]),
            probs={c: float(p) for c, p in zip(self.model.classes, probs)},
            level_db=decision.level_db,
        )


def classify_signal(samples: np.ndarray, *, sample_rate_hz: int, model: EmotionModel) -> ClipResult:
    """Classify a whole recording: average the probabilities of its speech windows.

    Parameters
    ----------
    samples : np.ndarray, shape (n,) or (n, channels)
        Audio at any rate; mixed to mono and resampled to the model's rate.
    sample_rate_hz : int
        Rate of ``samples``.
    model : EmotionModel

    Returns
    -------
    ClipResult
        ``emotion`` is None when no window held speech.
    """
    from ..audio.files import to_mono

    y = resample(to_mono(sanitise_samples(samples)), from_rate_hz=sample_rate_hz, to_rate_hz=model.sample_rate_hz)
    return _classify_blocks([y], model)


def classify_file(path: str | os.PathLike[str], *, model: EmotionModel, block_s: float = 10.0) -> ClipResult:
    """Classify an audio file as :func:`classify_signal` does, streaming it so memory stays flat.

    Raises :class:`~ser_live.errors.AudioFileError` for files that cannot be read.
    """
    return _classify_blocks(iter_audio_blocks(path, sample_rate_hz=model.sample_rate_hz, block_s=block_s), model)


@dataclasses.dataclass(frozen=True)
class GatedFeatures:
    """The speech windows of a whole recording, featurised (see :func:`gated_window_features`).

    Attributes
    ----------
    features : np.ndarray, shape (n_speech_windows, n_features), float32
    end_samples : np.ndarray, shape (n_speech_windows,), int64
        Where each speech window ends, in samples from the start of the recording.
    n_windows : int
        Windows analysed, speech or not.
    n_samples : int
        Length of the recording.
    """

    features: np.ndarray
    end_samples: np.ndarray
    n_windows: int
    n_samples: int


def gated_window_features(blocks: Iterable[np.ndarray], *, gate: SpeechGate, extractor: FeatureExtractor,
                          window_samples: int, hop_samples: int, batch_windows: int = 32) -> GatedFeatures:
    """Feature vectors of the windows of a recording, fed block by block, that the speech gate accepts.

    The windows are the live monitor's (:func:`ser_live.audio.buffer.stream_utterance_windows`), judged by
    ``gate`` in stream order as live. Speech windows are featurised ``batch_windows`` at a time with
    :meth:`FeatureExtractor.batch <ser_live.features.extractor.FeatureExtractor.batch>` (the handcrafted features
    analyse the frames overlapping windows share once); memory stays flat however long the recording.

    Parameters
    ----------
    blocks : iterable of np.ndarray
        Consecutive mono blocks at the gate's and features' sample rate.
    gate : SpeechGate
        A fresh gate (its noise floor is learnt from this recording).
    extractor : FeatureExtractor
        The model's feature extractor.
    window_samples, hop_samples : int
        Window length and hop.
    batch_windows : int
        Speech windows featurised together.
    """
    rate = extractor.sample_rate_hz
    chunks: list[np.ndarray] = []
    all_ends: list[int] = []
    pending: list[np.ndarray] = []
    pending_ends: list[int] = []
    pending_pitch: list[Any] = []
    n_windows = total = 0

    def flush() -> None:
        if pending:
            chunks.append(extractor.batch(pending, ends=pending_ends, pitch=pending_pitch))
            all_ends.extend(pending_ends)
            pending.clear()
            pending_ends.clear()
            pending_pitch.clear()

    windows = stream_utterance_windows((sanitise_samples(np.asarray(block)) for block in blocks),
                                       window_samples=window_samples, hop_samples=hop_samples)
    for end, window in windows:
        n_windows += 1
        total = end
        decision = gate(window, end_s=end / rate)
        if decision.speech:
            pending.append(window)
            pending_ends.append(end)
            pending_pitch.append(decision.pitch)  # the features reuse the frames the gate tracked
            if len(pending) >= batch_windows:
                flush()
    flush()
    features = np.concatenate(chunks) if chunks else np.zeros((0, extractor.dim), dtype=np.float32)
    return GatedFeatures(features, np.asarray(all_ends, dtype=np.int64), n_windows, total)


def _classify_blocks(blocks: Iterable[np.ndarray], model: EmotionModel) -> ClipResult:
    """Average the speech windows' probabilities over a recording fed block by block.

    The model classifies all speech windows in one call, which costs far less than one call per window.
    """
    rate = model.sample_rate_hz
    gated = gated_window_features(blocks, gate=model.make_gate(), extractor=model.extractor,
                                  window_samples=int(round(model.window_s * rate)),
                                  hop_samples=int(round(model.hop_s * rate)))
    duration_s = gated.n_samples / rate
    n_speech = gated.features.shape[0]
    if not n_speech:
        return ClipResult(None, 0.0, None, duration_s, gated.n_windows, 0)
    mean = model.predict_proba(gated.features).mean(axis=0)
    best = int(np.argmax(mean))
    return ClipResult(
        emotion=model.classes[best],
        confidence=float(mean[best]),
        probs={c: float(p) for c, p in zip(model.classes, mean)},
        duration_s=duration_s,
        n_windows=gated.n_windows,
        n_speech_windows=n_speech,
    )


#: How often the analysis thread looks for audio close to a due window, and at most how long it sleeps otherwise.
NEAR_DUE_POLL_S = 0.01
FAR_POLL_S = 0.1


def _poll_s(wait_s: float) -> float:
    """How long the analysis thread sleeps when the next window is ``wait_s`` of audio away.

    Audio arrives in capture blocks (~50 ms), so the count of samples jumps rather than runs: within 0.1 s of a due
    window it looks every 10 ms (a window is analysed at most that late), and further away it sleeps until then, at
    most 0.1 s (the gap meter wants a few readings in each of its 0.5 s: with one every 0.25 s it took delivery
    jitter for lost audio). The callback itself never signals (no locks there). Against looking every 3 ms near and
    50 ms far, this is a third of the wake-ups, which is most of what a monitor costs while nobody speaks.
    """
    return NEAR_DUE_POLL_S if wait_s < 0.1 else min(wait_s - 0.1 + NEAR_DUE_POLL_S, FAR_POLL_S)


@dataclasses.dataclass(frozen=True)
class MonitorSnapshot:
    """What a display needs of a running :class:`Monitor`, read at one moment (see :meth:`Monitor.snapshot`).

    Attributes
    ----------
    written_samples : int
        Samples in the stream since it began: those received, and the silence standing in for audio the
        device did not deliver.
    sample_rate_hz : int
    window_s, hop_s : float
        The analysis window and hop in use.
    last_window_end_s : float
        Stream time at the end of the last window analysed (or about to be); its start is
        ``last_window_end_s - window_s``.
    adapting : bool
        Whether the monitor learns the speaker.
    adapted_s : float
        Seconds of the speaker's speech learnt.
    adaptation_weight : float
        Weight of the speaker's own statistics in [0, 1).
    lost_s : float
        Audio lost so far, in seconds.
    """

    written_samples: int
    sample_rate_hz: int
    window_s: float
    hop_s: float
    last_window_end_s: float
    adapting: bool
    adapted_s: float
    adaptation_weight: float
    lost_s: float


class Monitor:
    """Live emotion monitor over a stream of audio.

    Parameters
    ----------
    model : EmotionModel
    window_s, hop_s : float, optional
        Analysis window and hop; the model's own when omitted.
    smoothing : float
        See :class:`WindowAnalyzer`.
    buffer_s : float
        Ring-buffer capacity in seconds (at least two windows).
    max_lag_windows : int, optional
        Live only: how many due windows may queue before stale ones are skipped.
    on_prediction : callable, optional
        Called with every :class:`Prediction`, on the thread that analyses (the caller's for
        :meth:`feed`, the monitor's worker for :meth:`listen`). Keep it fast.
    on_status : callable, optional
        Called with every :class:`~ser_live.results.StatusEvent` (device lost, back, analysis stopped, ...).
    adapt : bool
        Learn the speaker's voice as speech is heard (only if the model has an adaptive variant;
        see :attr:`adapting`, :attr:`adapted_s` and :attr:`adaptation_weight`).
    speaker : SpeakerNormalizer, optional
        With ``adapt``: continue from these statistics (a loaded profile, or an earlier Monitor's
        the speaker of :class:`ser_live.app.session.Session`) instead of starting from nothing.
    """

    def __init__(
        self,
        model: EmotionModel,
        *,
        window_s: float | None = None,
        hop_s: float | None = None,
        smoothing: float = 0.0,
        buffer_s: float = 10.0,
        max_lag_windows: int | None = 4,
        on_prediction: PredictionCallback | None = None,
        on_status: StatusCallback | None = None,
        adapt: bool = False,
        speaker: SpeakerNormalizer | None = None,
    ) -> None:
        self.model = model
        self.window_s = float(window_s if window_s is not None else model.window_s)
        self.hop_s = float(hop_s if hop_s is not None else model.hop_s)
        check_analysis_settings(self.window_s, self.hop_s)
        self.sample_rate_hz = model.sample_rate_hz
        self.window_samples = int(round(self.window_s * self.sample_rate_hz))
        self.hop_samples = int(round(self.hop_s * self.sample_rate_hz))
        capacity = max(int(buffer_s * self.sample_rate_hz), 2 * self.window_samples)
        self.buffer = RingBuffer(capacity)
        normalizer = None
        if adapt and model.adaptation is not None:
            # Each speech window brings one hop of new speech: that is what the statistics count.
            normalizer = speaker if speaker is not None else SpeakerNormalizer(model.adaptation.prior, hop_s=self.hop_s)
        self.analyzer = WindowAnalyzer(model, smoothing=smoothing, normalizer=normalizer)
        self._normalizer = normalizer
        self._max_lag_windows = max_lag_windows
        self.schedule = WindowSchedule(self.window_samples, self.hop_samples, max_lag_windows=None)
        self.summary = SessionSummary()
        self._callbacks: list[PredictionCallback] = [on_prediction] if on_prediction else []
        self._status_callbacks: list[StatusCallback] = [on_status] if on_status else []
        self._gaps: Any = None  # the capture's GapMeter while listening
        self._capture_lost_s = 0.0
        self._reported_lost_s = 0.0
        self._lost_reported_at = 0.0
        # Silence standing in for audio the device did not deliver: asked for by the analysis thread once the
        # loss is measured, written by the capture's thread before its next block (the buffer has one writer).
        self._silence_due: collections.deque[int] = collections.deque()
        self._silence_asked = 0  # samples, analysis thread
        self.silence_samples = 0  # samples written, capture thread
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._worker: threading.Thread | None = None
        self._capture: Any = None
        self._fed_since: float | None = None  # time.monotonic() of stream time 0 when fed from a file or a caller
        self._audio_sinks: list[Callable[..., None]] = []
        self._audio_kept_to = 0  # stream samples handed to the audio sinks so far
        self.error: BaseException | None = None

    # -- speaker adaptation ------------------------------------------------------------------
    @property
    def adapting(self) -> bool:
        """Whether the monitor learns the speaker (asked for, and the model has an adaptive variant)."""
        return self._normalizer is not None

    @property
    def adapted_s(self) -> float:
        """Seconds of the speaker's speech learnt from (including a loaded profile); 0 when not adapting."""
        return self._normalizer.learnt_s if self._normalizer is not None else 0.0

    @property
    def adaptation_weight(self) -> float:
        """Weight of the speaker's own statistics, ``adapted_s / (adapted_s + half_s)``, in [0, 1)."""
        return self._normalizer.weight if self._normalizer is not None else 0.0

    # -- consumers -------------------------------------------------------------------------
    def add_callback(self, callback: PredictionCallback) -> None:
        """Register another consumer of predictions."""
        self._callbacks.append(callback)

    def add_audio_sink(self, sink: Callable[..., None]) -> None:
        """Hand every sample the monitor hears to ``sink(samples, lost=n)``, in order, from the analysis thread.

        ``lost`` counts the samples just before ``samples`` that analysis could not read in time (overwritten in
        the ring buffer): a sink that keeps the audio writes silence for them, so stream time stays its time base.
        """
        self._audio_sinks.append(sink)

    def _keep_audio(self) -> None:
        if not self._audio_sinks:
            return
        end = self.buffer.total_written
        oldest = max(self._audio_kept_to, end - self.buffer.capacity_samples)
        if end <= oldest:
            return
        samples = self.buffer.peek(oldest, end)  # no drop accounting: that is the windows' business
        for sink in self._audio_sinks:
            sink(samples, lost=oldest - self._audio_kept_to)
        self._audio_kept_to = end

    def _status(self, kind: StatusKind, message: str) -> None:
        event = StatusEvent(kind, message)
        for callback in self._status_callbacks:
            callback(event)

    def snapshot(self) -> MonitorSnapshot:
        """A read-only view of the monitor's state for displays (safe from any thread)."""
        rate = self.sample_rate_hz
        return MonitorSnapshot(
            written_samples=self.buffer.total_written,
            sample_rate_hz=rate,
            window_s=self.window_s,
            hop_s=self.hop_s,
            last_window_end_s=(self.schedule.next_end - self.hop_samples) / rate,
            adapting=self.adapting,
            adapted_s=self.adapted_s,
            adaptation_weight=self.adaptation_weight,
            lost_s=self.lost_s,
        )

    # -- the analysis step shared by every source -------------------------------------------
    @property
    def heard_s(self) -> float:
        """Audio heard so far, in seconds (the stream less the silence written for audio the device withheld)."""
        return (self.buffer.total_written - self.silence_samples) / self.sample_rate_hz

    @property
    def lost_s(self) -> float:
        """Audio lost so far: what the input never delivered (stalls, a device gone) and what analysis overwrote."""
        return self._capture_lost_s + self.buffer.dropped_samples / self.sample_rate_hz

    def _process_due(self) -> list[Prediction]:
        """Analyse every window now due, one at a time: after a slow one, the schedule is asked again, so windows that
        fell behind meanwhile are skipped (``max_lag_windows``) rather than read after the buffer wrote over them."""
        predictions = []
        while True:
            self._keep_audio()  # before each window too: a slow one must not let the buffer outrun the kept audio
            spans = self.schedule.due(self.buffer.total_written, limit=1)
            if not spans:
                return predictions
            predictions.append(self._analyse(*spans[0]))

    def _analyse(self, start: int, stop: int) -> Prediction:
        """Analyse the buffered window ``[start, stop)``, count it and hand it to the consumers."""
        prediction = self.analyzer(self.buffer.read(start, stop), t_s=stop / self.sample_rate_hz)
        lost_s = self.lost_s
        if lost_s:
            prediction = dataclasses.replace(prediction, lost_s=lost_s)
        self._account(prediction)
        for callback in self._callbacks:
            callback(prediction)
        return prediction

    def _account(self, prediction: Prediction) -> None:
        s = self.summary
        s.n_windows += 1
        s.heard_s = self.heard_s
        s.lost_s = self.lost_s
        s.skipped_windows = self.schedule.skipped_windows
        if prediction.speech:
            s.n_speech += 1
            s.emotion_counts[prediction.emotion] += 1

    def feed(self, samples: np.ndarray) -> list[Prediction]:
        """Add mono samples at the model's rate and analyse every window that became due.

        Nothing is skipped or dropped: the caller sets the pace. Returns the new predictions
        (they were also passed to the callbacks).
        """
        samples = sanitise_samples(samples).reshape(-1)  # NaN/inf/overflow must not poison later windows
        if self._fed_since is None:  # a caller streaming blocks as they come: the first block ends now
            self._fed_since = time.monotonic() - (self.buffer.total_written + samples.shape[0]) / self.sample_rate_hz
        out: list[Prediction] = []
        # Write at most one hop at a time so no window is overwritten before it is read.
        for i in range(0, samples.shape[0], self.hop_samples):
            self.buffer.write(samples[i : i + self.hop_samples])
            out.extend(self._process_due())
        self.summary.heard_s = self.heard_s
        return out

    def run_file(self, path: str, *, realtime: bool = False, block_s: float | None = None) -> SessionSummary:
        """Run a file through the monitor, as fast as possible or at real-time pace.

        Stops early when :meth:`stop` is called. Raises :class:`~ser_live.errors.AudioFileError`
        for unreadable files.
        """
        return self.run_blocks(
            iter_audio_blocks(path, sample_rate_hz=self.sample_rate_hz, block_s=block_s or self.hop_s),
            realtime=realtime,
        )

    def run_blocks(self, blocks: Iterable[np.ndarray], *, realtime: bool = False) -> SessionSummary:
        """Feed blocks of mono samples at the model's rate (see :meth:`run_file`)."""
        t0 = time.monotonic()
        self._fed_since = t0 - self.buffer.total_written / self.sample_rate_hz  # at real-time pace, when it happens
        for block in blocks:
            if realtime and self._wait_until_due(t0, block.shape[0]):
                break
            paused_s = self._hold_while_paused()  # checked just before feeding: a pause holds the next block
            if paused_s is None:
                break
            t0 += paused_s  # the pause does not count as audio time
            self.feed(block)
        else:
            self._analyse_tail()
        self._keep_audio()
        return self.summary

    def _wait_until_due(self, t0: float, n_samples: int) -> bool:
        """Pace by the audio clock: a block may only arrive once its audio has "happened"; True when stopped."""
        if self._stop.is_set():
            return True
        delay = t0 + (self.buffer.total_written + n_samples) / self.sample_rate_hz - time.monotonic()
        return delay > 0 and self._stop.wait(delay)

    def _hold_while_paused(self) -> float | None:
        """Seconds held by a pause (0 without one), or None when stopped."""
        if self._stop.is_set():
            return None
        if self._running.is_set():
            return 0.0
        paused_at = time.monotonic()
        while not self._running.wait(0.05) and not self._stop.is_set():
            pass
        return None if self._stop.is_set() else time.monotonic() - paused_at

    def _analyse_tail(self) -> None:
        """At the end of a recording, the window ending at its last sample, as :func:`classify_file` has.

        Without it a recording shorter than a hop would give no result at all, and the last part of a
        longer one would not be heard.
        """
        total = self.buffer.total_written
        if total and total % self.hop_samples:
            self._analyse(total - self.window_samples, total)

    # -- the microphone ---------------------------------------------------------------------
    def listen(self, device: int | str | None = None, *, reconnect_s: float = 2.0) -> None:
        """Start capturing from an input device and analysing in a background thread.

        Returns at once; predictions go to the callbacks from the worker thread. Call
        :meth:`stop` to end, :meth:`wait` to block until then. If the device is lost the worker
        reports it through the status callbacks and tries again every ``reconnect_s`` seconds.

        Raises
        ------
        DeviceError
            If the device cannot be opened at all (no input device, busy, unknown name).
        """
        from ..audio.capture import MicrophoneStream

        if self._worker is not None:
            raise RuntimeError("this monitor is already running")
        self.schedule.max_lag_windows = self._max_lag_windows
        self._stop.clear()
        from ..audio.capture import GapMeter

        capture = MicrophoneStream(self._write_captured, device=device, sample_rate_hz=self.sample_rate_hz)
        capture.start()
        self._capture = capture
        self._gaps = GapMeter()
        self._worker = threading.Thread(
            target=self._listen_loop, args=(capture, reconnect_s), name="ser-live-analysis", daemon=True
        )
        self._worker.start()

    @property
    def device_name(self) -> str | None:
        """Name of the input device being captured, if any."""
        return self._capture.device.name if self._capture is not None else None

    def _write_captured(self, samples: np.ndarray) -> None:
        """The capture's sink (its thread): the silence asked for since its last block, then the block."""
        while self._silence_due:
            n = self._silence_due.popleft()
            self.buffer.write(np.zeros(n, np.float32))
            self.silence_samples += n
        self.buffer.write(samples)

    def _measure_loss(self, capture: Any, *, until_now: bool = False) -> None:
        """Count the audio the input did not deliver; report news of it (at most every 2 s).

        Each loss, once measured, is also asked to be written as silence of its length (before the next block
        the device delivers), so stream time, the session file and the kept audio keep the wall clock's pace.
        """
        if capture.last_block_at > 0:
            self._gaps.observe(capture.last_block_at, capture.received_s)
            measured = int(round(self._gaps.lost_s * self.sample_rate_hz))
            if measured > self._silence_asked:
                self._silence_due.append(measured - self._silence_asked)
                self._silence_asked = measured
        now = time.monotonic()
        self._capture_lost_s = self._gaps.lost_until(now) if until_now else self._gaps.lost_s
        self.summary.lost_s = lost_s = self.lost_s
        if lost_s - self._reported_lost_s >= 0.1 and now - self._lost_reported_at >= 2.0:
            self._status(StatusKind.DROPPED, f"lost {lost_s - self._reported_lost_s:.1f} s of audio "
                                             f"({lost_s:.1f} s in all this session)")
            self._reported_lost_s, self._lost_reported_at = lost_s, now

    def _listen_loop(self, capture: Any, reconnect_s: float) -> None:
        try:
            while not self._stop.is_set():
                if not capture.healthy():
                    self._reconnect(capture, reconnect_s)
                    continue
                self._measure_loss(capture)
                self._process_due()
                wait_s = self.schedule.samples_until_next(self.buffer.total_written) / self.sample_rate_hz
                self._stop.wait(_poll_s(wait_s))
        except BaseException as exc:  # surfaced to the caller through .error and the status callbacks
            self.error = exc
            if not isinstance(exc, BrokenPipeError):  # the reader of the output left: not news to report
                self._status(StatusKind.ANALYSIS_STOPPED, f"analysis stopped: {exc}")
        finally:
            capture.close()
            self._keep_audio()
            # A stall still going on at the end is audio lost too (a device gone until the end).
            self._measure_loss(capture, until_now=True)

    def _reconnect(self, capture: Any, reconnect_s: float) -> None:
        lost_at = time.monotonic()
        if getattr(capture, "stalled", False):  # the one stall signal, before the device counts as lost
            self._status(StatusKind.STALLED, capture.failure)
        self._status(StatusKind.DEVICE_LOST, f"input device lost ({capture.failure or capture.device.name}); "
                                             f"retrying every {reconnect_s:g} s")
        last_reason = None
        remind_after_s = 10.0  # then 20, 40, 80 ... s: a sign of life that slows down, never a flood
        while not self._stop.wait(reconnect_s):
            try:
                capture.restart()
            except DeviceError as exc:
                gone_s = time.monotonic() - lost_at
                if str(exc) != last_reason:  # the full reason once; after that, a slowing sign of life
                    self._status(StatusKind.DEVICE_STILL_LOST, f"still no input device: {exc}")
                    last_reason = str(exc)
                elif gone_s >= remind_after_s:
                    self._status(StatusKind.DEVICE_STILL_LOST,
                                 f"still no input device after {gone_s:.0f} s; retrying every {reconnect_s:g} s")
                    remind_after_s *= 2
                continue
            self.analyzer.reset()
            self.summary.outage_s += time.monotonic() - lost_at
            self._status(StatusKind.DEVICE_BACK, f"input device back: {capture.device.name}")
            return
        self.summary.outage_s += time.monotonic() - lost_at  # stopped while the device was still gone

    def pause(self) -> None:
        """Hold :meth:`run_file`/:meth:`run_blocks` before the next block until :meth:`resume`."""
        self._running.clear()

    def resume(self) -> None:
        """Continue a paused :meth:`run_file`/:meth:`run_blocks`."""
        self._running.set()

    def request_stop(self) -> None:
        """Ask the monitor to stop without waiting (safe from signal handlers and callbacks)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop listening (or a running file) and wait for the worker to finish."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None
        self._capture = None

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until :meth:`stop` is called (from another thread or a signal handler)."""
        return self._stop.wait(timeout_s)

    def audio_clock_s(self, t_s: float) -> float:
        """The ``time.monotonic()`` at which the audio at stream time ``t_s`` was captured.

        From the microphone: the arrival of the latest capture block, less the audio written since ``t_s``
        (accurate to a capture block, ~50 ms). From a file or :meth:`feed`: when the stream started, plus ``t_s``.
        """
        capture = self._capture
        if capture is not None and capture.last_block_at > 0:
            return capture.last_block_at - (self.buffer.total_written / self.sample_rate_hz - t_s)
        started = self._fed_since if self._fed_since is not None else time.monotonic()
        return started + t_s

    def recent_audio(self, seconds: float) -> tuple[np.ndarray, float]:
        """The last ``seconds`` of audio and the stream time of its end, for waveform displays."""
        end = self.buffer.total_written
        n = min(int(seconds * self.sample_rate_hz), self.buffer.capacity_samples - self.hop_samples)
        return self.buffer.peek(end - n, end), end / self.sample_rate_hz
