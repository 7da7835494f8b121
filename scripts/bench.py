#!/usr/bin/env python3
"""Benchmark ser-live: per-window compute, end-to-end latency, start-up, steady state, batch throughput and engines.

Both shipped models are measured in one run, each against its own targets: the default (Whisper-base
encoder + MLP) and ``light`` (handcrafted features + MLP). Prints a table per model and writes
``bench/results.json``. Every figure is a median and 95th percentile over repetitions. ``--smoke``
runs everything briefly (CI uses it so the script cannot rot; its numbers mean nothing). The
microphone and GUI parts need the apt packages ``make test`` installs (pulseaudio, espeak-ng, xvfb)
and are skipped, saying why, without them.

    python scripts/bench.py            # full run, ~25 minutes on 2 cores
    python scripts/bench.py --smoke    # ~2 minutes
    python scripts/bench.py --models light --only window
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ser_live.dsp.gate import SpeechGate  # noqa: E402
from ser_live.model.emotion_model import EmotionModel  # noqa: E402

RATE_HZ = 16000
#: Extra ser-live arguments for every subprocess of the model being measured (its --model).
MODEL_ARGS: list[str] = []
#: Targets per shipped model: the light model keeps its own; the encoder model's are issue 15's.
TARGETS_BY_MODEL = {
    "light": {
        "window_2s_median_ms": 10.0,
        "window_2s_p95_ms": 20.0,
        "latency_beyond_hop_ms": 50.0,
        "startup_warm_s": 2.0,
        "startup_cold_s": 6.0,
        "print_cpu_pct": 5.0,
        "print_peak_rss_mb": 200.0,
        "gui_cpu_pct": 20.0,
        "gui_silent_cpu_pct": 3.0,
        "gui_minimised_cpu_pct": 1.0,
        "classify_audio_s_per_s_2workers": 300.0,
    },
    "default": {
        "window_2s_median_ms": 120.0,
        "window_2s_p95_ms": 200.0,
        "latency_beyond_hop_ms": 250.0,
        "startup_warm_s": 3.0,
        "startup_cold_s": 10.0,
        "print_cpu_pct": 30.0,
        "print_peak_rss_mb": 400.0,
        "gui_cpu_pct": 45.0,
        "gui_silent_cpu_pct": 3.0,
        "gui_minimised_cpu_pct": 1.0,
        "classify_audio_s_per_s_2workers": 10.0,
    },
}
TARGETS = TARGETS_BY_MODEL["light"]
#: What issue 19's accuracy targets are measured against: the shipped models' metrics.json before it (commit
#: ae8bf29): utterance UAR of the speaker-independent CV, and the leave-one-corpus-out mean.
BEFORE_ISSUE_19 = {"default": {"cv_uar": 0.817, "loco_uar": 0.343}, "light": {"cv_uar": 0.530, "loco_uar": 0.307}}
#: How close the 10 dB room condition must come to the clean figure of the same recordings.
ROOM_10DB_GAP = {"default": 0.05, "light": 0.10}
#: Issue 32's calibration targets on every corpus the model never heard: the expected calibration error per window
#: at most this, and the answers shown at 80 % or more right at least 80 % of the time.
MAX_UNHEARD_ECE = {"default": 0.05, "light": 0.07}


def stats(values: list[float]) -> dict[str, float]:
    """Median, 95th percentile and count of a list of measurements."""
    arr = np.asarray(values, dtype=float)
    return {"median": float(np.median(arr)), "p95": float(np.percentile(arr, 95)), "n": int(arr.size)}


def speech_signal(seconds: float, workdir: Path) -> np.ndarray:
    """Real speech (espeak-ng sentences) repeated to ``seconds``; a voiced synthetic signal without espeak-ng."""
    from ser_live.audio.files import read_audio

    text = ("The quick brown fox jumps over the lazy dog. I cannot believe you did that again! "
            "Please sit down, we need to talk about what happened yesterday.")
    if shutil.which("espeak-ng"):
        wav = workdir / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
        y = read_audio(wav, sample_rate_hz=RATE_HZ)
    else:
        from conftest import tone

        y = tone(140.0, 6.0, vibrato_hz=3.0)
    reps = int(np.ceil(seconds * RATE_HZ / y.size))
    return np.tile(y, reps)[: int(seconds * RATE_HZ)]


def write_wav(path: Path, y: np.ndarray) -> Path:
    import soundfile as sf

    sf.write(str(path), y, RATE_HZ, subtype="PCM_16")
    return path


# -- 1 and 6: per-window compute ------------------------------------------------------------------
def bench_window_compute(model: EmotionModel, speech: np.ndarray, reps: int) -> dict:
    from ser_live.training.classic import classic_features

    classic = _classic_estimator()
    out = {}
    for window_s in (1.0, 2.0, 3.0):
        n = int(window_s * RATE_HZ)
        starts = np.linspace(0, speech.size - n, reps).astype(int)
        ours, theirs = [], []
        gate = SpeechGate(sample_rate_hz=RATE_HZ)
        for s in starts[:3]:  # warm caches (filterbanks, FFT plans, the encoder's weights) before timing
            model.extractor(speech[s : s + n])
            classic.predict_proba(classic_features(speech[s : s + n], sample_rate_hz=RATE_HZ)[None])
        for s in starts:
            w = speech[s : s + n]
            t0 = time.perf_counter()
            model.predict_proba(model.extractor(w, pitch=gate(w).pitch))
            ours.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            classic.predict_proba(classic_features(w, sample_rate_hz=RATE_HZ)[None])
            theirs.append((time.perf_counter() - t0) * 1000)
        o, c = stats(ours), stats(theirs)
        out[f"{window_s:g}s"] = {
            "ours_ms": o, "classic_ms": c,
            "real_time_factor": o["median"] / (window_s * 1000),
            "ratio_ours_over_classic": o["median"] / c["median"],
        }
    return out


def _classic_estimator():
    """The classic recipe's MLP(300,) at its real size; its cost does not depend on its weights."""
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 180))
    y = np.repeat(np.arange(7), 10)
    return MLPClassifier(hidden_layer_sizes=(300,), max_iter=5).fit(x, y)


# -- 2: end-to-end latency through the real capture path ------------------------------------------
def bench_latency(model: EmotionModel, speech_wav: Path, seconds: float) -> dict:
    """Play speech into the private PulseAudio microphone; time from a hop's last sample entering
    the ring buffer to its prediction leaving the pipeline."""
    from ser_live.audio.virtual_microphone import PulseServer
    from ser_live.engine.monitor import Monitor

    with PulseServer() as server:
        saved = {k: os.environ.get(k) for k in server.env}
        os.environ.update(server.env)  # PortAudio's ALSA pulse plugin reads these when it connects
        try:
            monitor = Monitor(model)
            arrivals: list[tuple[int, float]] = []
            write = monitor.buffer.write

            def timed_write(samples):
                write(samples)
                arrivals.append((monitor.buffer.total_written, time.perf_counter()))

            monitor.buffer.write = timed_write  # the capture sink is taken at listen()
            latencies: list[float] = []

            def on_prediction(p):
                now = time.perf_counter()
                end = int(round(p.t_s * RATE_HZ))
                for total, t in arrivals:  # first write that completed the window
                    if total >= end:
                        latencies.append((now - t) * 1000)
                        break

            monitor.add_callback(on_prediction)
            monitor.listen(None)
            player = threading.Thread(target=lambda: [server.play(speech_wav, timeout_s=seconds + 30)
                                                      for _ in range(max(1, int(seconds // 10)))])
            player.start()
            player.join()
            monitor.stop()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    lat = stats(latencies[2:])  # the very first windows include stream start-up
    # A window is due the moment its last sample arrives, so this is all latency beyond the hop.
    return {"latency_ms": lat, "hop_s": model.hop_s}


# -- 3: start-up ------------------------------------------------------------------------------------
def _first_line_s(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    proc.kill()
    proc.wait()
    if not line:
        raise RuntimeError(f"{' '.join(cmd)} printed nothing")
    return elapsed


def _drop_page_cache() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def bench_startup(one_second_wav: Path, reps: int) -> dict:
    cmd = [sys.executable, "-m", "ser_live", "--print", "--json", "--input", str(one_second_wav), *MODEL_ARGS]
    env = dict(os.environ)
    warm = [_first_line_s(cmd, env) for _ in range(reps)]
    cold, method = [], "page cache dropped before each run"
    for _ in range(max(1, reps // 2)):
        if not _drop_page_cache():
            # Without root, the nearest thing to a fresh install: no compiled bytecode anywhere.
            method = "fresh bytecode cache (page cache could not be dropped)"
            env = {**os.environ, "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix="ser-live-pyc-")}
        cold.append(_first_line_s(cmd, env))
    return {"warm_s": stats(warm), "cold_s": stats(cold), "cold_method": method}


# -- 4: steady state --------------------------------------------------------------------------------
def _cpu_over(proc: subprocess.Popen, seconds: float) -> dict:
    """CPU (user + system, children included) of a running process over ``seconds``, and its peak memory."""
    import psutil

    if proc.poll() is not None:
        raise RuntimeError(f"process exited early with status {proc.returncode}")
    p = psutil.Process(proc.pid)
    procs = [p, *p.children(recursive=True)]
    cpu0 = sum(sum(q.cpu_times()[:2]) for q in procs)
    t0 = time.monotonic()
    peak = 0
    while time.monotonic() - t0 < seconds:
        peak = max(peak, sum(q.memory_info().rss for q in procs))
        time.sleep(0.5)
    cpu1 = sum(sum(q.cpu_times()[:2]) for q in procs)
    elapsed = time.monotonic() - t0
    return {"cpu_pct_of_one_core": 100.0 * (cpu1 - cpu0) / elapsed, "peak_rss_mb": peak / 2**20, "seconds": elapsed}


def _measure_process(proc: subprocess.Popen, warmup_s: float, seconds: float) -> dict:
    time.sleep(warmup_s)
    return _cpu_over(proc, seconds)


class _Speaker:
    """Plays a recording into the virtual microphone over and over, until paused (its ``paplay`` stopped at once)."""

    def __init__(self, server, wav: Path) -> None:
        self.server, self.wav = server, wav
        self.speaking, self.stopped = threading.Event(), threading.Event()
        self.speaking.set()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            if not self.speaking.wait(timeout=0.1):
                continue
            player = self.server.play(self.wav, wait=False)
            while player.poll() is None:
                if self.stopped.is_set() or not self.speaking.is_set():
                    player.terminate()
                self.stopped.wait(0.1)
            player.wait()

    def __enter__(self) -> _Speaker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self._thread.join(timeout=10)


def bench_steady(speech_wav: Path, seconds: float, tmp: Path) -> dict:
    from ser_live.audio.virtual_microphone import PulseServer

    out = {}
    with PulseServer() as server, _Speaker(server, speech_wav) as speaker:
        cmd = [sys.executable, "-m", "ser_live", "--print", *MODEL_ARGS]
        proc = subprocess.Popen(cmd, env=server.client_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            out["print"] = _measure_process(proc, 5.0, seconds)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        out["gui"] = _bench_gui(server, speaker, seconds, tmp)
    return out


#: How long after the speech stops the GUI is measured as silent: the window's SILENT_AFTER_S, the last window
#: and a margin.
_SILENT_AFTER_S = 9.0


def _bench_gui(server, speaker: _Speaker, seconds: float, tmp: Path) -> dict:
    """The window's CPU while speech is heard, then while nobody speaks, then with the window unmapped (as a
    window manager minimises it), both while nobody speaks and while speech is heard (the analysis goes on)."""
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        return {"skipped": "Xvfb or xdotool is not installed"}
    display = ":97"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        env = server.client_env(DISPLAY=display, XDG_DATA_HOME=str(tmp / "gui-data"))
        env.pop("QT_QPA_PLATFORM", None)
        proc = subprocess.Popen([sys.executable, "-m", "ser_live", *MODEL_ARGS], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            return _gui_phases(proc, speaker, seconds, display)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)


def _gui_phases(proc: subprocess.Popen, speaker: _Speaker, seconds: float, display: str) -> dict:
    speaker.speaking.set()
    out = _measure_process(proc, 8.0, seconds)  # the headline figure: speech heard, window in sight
    speaker.speaking.clear()
    out["silent"] = _measure_process(proc, _SILENT_AFTER_S, seconds)
    xdotool = {**os.environ, "DISPLAY": display}
    windows = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(proc.pid)], env=xdotool,
                             capture_output=True, text=True).stdout.split()
    for window in windows:
        subprocess.run(["xdotool", "windowunmap", "--sync", window], env=xdotool, check=True)
    out["minimised_silent"] = _measure_process(proc, 2.0, seconds)
    speaker.speaking.set()
    out["minimised_speech"] = _measure_process(proc, 4.0, seconds)
    out["windows_unmapped"] = len(windows)
    return out


# -- 5 and 6: batch throughput -------------------------------------------------------------------------
def bench_classify(speech: np.ndarray, n_files: int, tmp: Path, reps: int) -> dict:
    """Wall time of whole ``ser-live --classify`` runs (start-up included), ``reps`` runs per worker count."""
    folder = _clip_folder(speech, n_files, tmp / "classify")
    audio_s = 3.0 * n_files
    out = {"files": n_files, "audio_s": audio_s, "runs": reps}
    for workers in (1, 2):
        walls = []
        for _ in range(reps):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ser_live", "--classify", str(folder), "--json", "--workers",
                            str(workers), *MODEL_ARGS], check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
        wall = stats(walls)
        t0 = time.perf_counter()
        _classic_batch(sorted(folder.glob("*.wav")), workers)
        classic_wall = time.perf_counter() - t0
        out[f"{workers}_workers"] = {
            "wall_s": wall, "files_per_s": n_files / wall["median"], "audio_s_per_s": audio_s / wall["median"],
            "audio_s_per_s_at_p95_wall": audio_s / wall["p95"],
            "classic_audio_s_per_s": audio_s / classic_wall,
            "ratio_ours_over_classic": (audio_s / wall["median"]) / (audio_s / classic_wall),
        }
    return out


_ENGINE_RUN = """
import json, sys, time
from ser_live.app.runtime import prepare_process
prepare_process()  # as the ser-live command starts
from ser_live.engine.batch import classify_batch
folder, model, workers, scheduler = json.loads(sys.argv[1])
t0 = time.perf_counter()
batch = classify_batch([folder], model=model, workers=workers, scheduler=scheduler)
t1 = time.perf_counter()
n = sum(1 for item in batch if item.error is None)
t2 = time.perf_counter()
print(json.dumps({"files": n, "audio_s": batch.totals.audio_s, "start_s": t1 - t0, "run_s": t2 - t1}))
"""
#: The engines compared, as ``--classify`` options: (name, workers, scheduler).
ENGINES = (("local pool, 2 workers", 2, None), ("Dask local:1", 0, "local:1"), ("Dask local:2", 0, "local:2"))


def bench_cluster(speech: np.ndarray, n_files: int, tmp: Path, reps: int, listing_files: tuple[int, ...]) -> dict:
    """The batch engines in one run on the same files: start-up (model loaded, cluster up) apart from throughput;
    and the client's peak memory on archives of many (hard-linked) files, which must not grow with their number."""
    folder = _clip_folder(speech, n_files, tmp / "cluster")
    model = MODEL_ARGS[1]
    out: dict = {"files": n_files, "runs": reps, "engines": {}}
    for name, workers, scheduler in ENGINES:
        runs = []
        for _ in range(reps):
            proc = subprocess.run([sys.executable, "-c", _ENGINE_RUN, json.dumps(
                [str(folder), model, workers, scheduler])],
                check=True, capture_output=True, text=True, cwd=str(REPO))
            runs.append(json.loads(proc.stdout))
        run_s = stats([r["run_s"] for r in runs])
        out["engines"][name] = {"start_s": stats([r["start_s"] for r in runs]), "run_s": run_s,
                                "audio_s_per_s": runs[0]["audio_s"] / run_s["median"]}
    pool, dask = out["engines"]["local pool, 2 workers"], out["engines"]["Dask local:2"]
    out["cluster_overhead_pct"] = 100.0 * (dask["run_s"]["median"] / pool["run_s"]["median"] - 1.0)
    out["listing"] = {str(n): _client_peak_rss_mb(tmp / f"links{n}", n) for n in listing_files}
    return out


def _client_peak_rss_mb(folder: Path, n_files: int) -> dict:
    """Peak RSS of the ``--classify`` process alone (not its workers) over ``n_files`` links to one 0.3 s clip."""
    import psutil

    folder.mkdir()
    clip = np.zeros(int(0.3 * RATE_HZ), np.float32) + 0.01
    for i in range(n_files):
        if i % 50_000 == 0:  # a new file now and then: ext4 allows 65,000 links to one
            first = write_wav(folder / f"clip{i:07d}.wav", clip)
        else:
            os.link(first, folder / f"clip{i:07d}.wav")
    proc = subprocess.Popen([sys.executable, "-m", "ser_live", "--classify", str(folder), "--model", "light",
                             "--workers", "2", "--out", str(folder.with_suffix(".csv"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, client.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    shutil.rmtree(folder)
    return {"files": n_files, "client_peak_rss_mb": peak / 2**20}


def _clip_folder(speech: np.ndarray, n_files: int, folder: Path) -> Path:
    """``n_files`` 3 s clips cut from ``speech`` at spread offsets."""
    folder.mkdir()
    n = 3 * RATE_HZ
    for i in range(n_files):
        start = (i * 7919) % (speech.size - n)
        write_wav(folder / f"clip{i:03d}.wav", speech[start : start + n])
    return folder


def _classic_one(path: str):
    from ser_live.audio.files import read_audio
    from ser_live.training.classic import classic_features

    return classic_features(read_audio(path, sample_rate_hz=RATE_HZ), sample_rate_hz=RATE_HZ)


def _classic_batch(paths: list[Path], workers: int) -> None:
    """The classic recipe over the same files: read, whole-utterance librosa features, MLP(300,)."""
    from concurrent.futures import ProcessPoolExecutor

    from ser_live.training.jit_cache import import_librosa

    import_librosa()  # compile numba kernels once, before any worker exists
    classic = _classic_estimator()
    if workers == 1:
        feats = [_classic_one(str(p)) for p in paths]
    else:
        with ProcessPoolExecutor(workers) as pool:
            feats = list(pool.map(_classic_one, map(str, paths), chunksize=8))
    classic.predict_proba(np.array(feats))


# -- the encoder's runtimes side by side --------------------------------------------------------------------------
def bench_encoder_runtimes(model: EmotionModel, speech: np.ndarray, reps: int) -> dict:
    """The default model's encoder blocks on a 2 s window, run by numpy and by ONNX Runtime in turn (same windows,
    same process), and the largest difference of their pooled features relative to the features' spread."""
    from ser_live.features.encoder import WhisperEncoder, whisper_log_mel

    n_blocks = max(model.extractor.blocks) + 1
    n = 2 * RATE_HZ
    mels = [whisper_log_mel(speech[s : s + n]) for s in np.linspace(0, speech.size - n, reps).astype(int)]
    out: dict = {}
    pooled: dict = {}
    for runtime in ("numpy", "onnxruntime"):
        encoder = WhisperEncoder(n_blocks, runtime=runtime)
        for mel in mels[:3]:
            encoder.hidden_states(mel)
        times, states = [], []
        for mel in mels:
            t0 = time.perf_counter()
            last = encoder.hidden_states(mel)[-1]
            times.append((time.perf_counter() - t0) * 1000)
            states.append(np.concatenate([last.mean(axis=0), last.std(axis=0)]))
        out[runtime] = stats(times)
        pooled[runtime] = np.array(states)
    spread = pooled["numpy"].std(axis=0).mean()
    out["ratio_numpy_over_onnxruntime"] = out["numpy"]["median"] / out["onnxruntime"]["median"]
    out["max_difference_over_spread"] = float(np.abs(pooled["numpy"] - pooled["onnxruntime"]).max() / spread)
    return out


def cpu_features() -> list[str]:
    """The vector-instruction families of this CPU that matrix kernels choose between (from /proc/cpuinfo)."""
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return [flag for flag in wanted if flag in flags.split()]


# -- report ---------------------------------------------------------------------------------------------
def _row(name: str, value: str, target: str = "", ok: bool | None = None) -> str:
    verdict = "" if ok is None else ("ok" if ok else "MISSED")
    return f"| {name} | {value} | {target} | {verdict} |"


#: The window's phases after speech (scripts/bench.py's steady part): (key, row, target key or None).
_GUI_PHASES = (("silent", "GUI CPU, nobody speaking", "gui_silent_cpu_pct"),
               ("minimised_silent", "GUI CPU, minimised, nobody speaking", "gui_minimised_cpu_pct"),
               ("minimised_speech", "GUI CPU, minimised, speech heard (the analysis goes on)", None))


def _gui_phase_rows(gui: dict | None, t: dict) -> list[str]:
    rows = []
    for key, name, target in _GUI_PHASES:
        phase = gui.get(key) if isinstance(gui, dict) else None
        if isinstance(phase, dict):
            pct = phase["cpu_pct_of_one_core"]
            rows.append(_row(name, f"{pct:.1f} % of one core", f"≤ {t[target]:g} %" if target else "",
                             pct <= t[target] if target else None))
    return rows


def _window_rows(windows: dict, t: dict) -> list[str]:
    rows = []
    for key, w in windows.items():
        o, c = w["ours_ms"], w["classic_ms"]
        ok = None
        if key == "2s":
            ok = o["median"] <= t["window_2s_median_ms"] and o["p95"] <= t["window_2s_p95_ms"]
        rows.append(_row(f"{key} window: gate+features+model", f"{o['median']:.2f} ms ({o['p95']:.2f})",
                         f"≤ {t['window_2s_median_ms']:g} ms (≤ {t['window_2s_p95_ms']:g})" if key == "2s" else "", ok))
        rtf_target = t["window_2s_median_ms"] / 2000
        rows.append(_row(f"{key} window: real-time factor", f"{w['real_time_factor']:.4f}",
                         f"≤ {rtf_target:g}" if key == "2s" else "",
                         w["real_time_factor"] <= rtf_target if key == "2s" else None))
        rows.append(_row(f"{key} window: classic recipe", f"{c['median']:.2f} ms ({c['p95']:.2f})",
                         f"ours/classic = {w['ratio_ours_over_classic']:.2f}"))
    return rows


def _latency_and_startup_rows(lat: dict | None, st: dict | None, t: dict) -> list[str]:
    rows = []
    if isinstance(lat, dict) and "latency_ms" in lat:
        v = lat["latency_ms"]
        rows.append(_row("end-to-end latency beyond the hop (real PortAudio capture)",
                         f"{v['median']:.1f} ms ({v['p95']:.1f})", f"≤ {t['latency_beyond_hop_ms']:g} ms",
                         v["p95"] <= t["latency_beyond_hop_ms"]))
    if isinstance(st, dict) and "warm_s" in st:
        warm, cold = st["warm_s"], st["cold_s"]
        rows.append(_row("start-up to first prediction, warm", f"{warm['median']:.2f} s ({warm['p95']:.2f})",
                         f"≤ {t['startup_warm_s']:g} s", warm["median"] <= t["startup_warm_s"]))
        rows.append(_row(f"start-up, cold ({st['cold_method']})", f"{cold['median']:.2f} s ({cold['p95']:.2f})",
                         f"≤ {t['startup_cold_s']:g} s", cold["median"] <= t["startup_cold_s"]))
    return rows


def _steady_rows(steady: dict | None, t: dict) -> list[str]:
    if not isinstance(steady, dict):
        return []
    rows = []
    for name, target_cpu in (("print", t["print_cpu_pct"]), ("gui", t["gui_cpu_pct"])):
        s = steady.get(name)
        if isinstance(s, dict) and "cpu_pct_of_one_core" in s:
            rows.append(_row("`--print` steady CPU" if name == "print" else "GUI steady CPU",
                             f"{s['cpu_pct_of_one_core']:.1f} % of one core", f"≤ {target_cpu:g} %",
                             s["cpu_pct_of_one_core"] <= target_cpu))
            rows.append(_row(f"{name} peak RSS", f"{s['peak_rss_mb']:.0f} MB",
                             f"≤ {t['print_peak_rss_mb']:g} MB" if name == "print" else "",
                             s["peak_rss_mb"] <= t["print_peak_rss_mb"] if name == "print" else None))
    return rows + _gui_phase_rows(steady.get("gui"), t)


def _classify_rows(cl: dict | None, t: dict) -> list[str]:
    if not isinstance(cl, dict):
        return []
    rows = []
    goal = t["classify_audio_s_per_s_2workers"]
    for workers in (1, 2):
        c = cl.get(f"{workers}_workers")
        if c:
            rows.append(_row(f"--classify {cl['files']} x 3 s files, {workers} worker(s), {cl.get('runs', 1)} runs",
                             f"{c['files_per_s']:.1f} files/s, {c['audio_s_per_s']:.0f} audio-s/s "
                             f"({c.get('audio_s_per_s_at_p95_wall', c['audio_s_per_s']):.0f} at the p95 wall time)",
                             f"≥ {goal:g} audio-s/s" if workers == 2 else "",
                             c["audio_s_per_s"] >= goal if workers == 2 else None))
            rows.append(_row(f"classic recipe, {workers} worker(s)", f"{c['classic_audio_s_per_s']:.0f} audio-s/s",
                             f"ours/classic = {c['ratio_ours_over_classic']:.1f}"))
    return rows


def table(r: dict, targets: dict) -> str:
    rows = ["| measure | median (p95) | target | |", "|---|---|---|---|"]
    rows += _window_rows(r.get("window_compute", {}), targets)
    rows += _runtime_rows(r.get("encoder_runtimes"))
    rows += _latency_and_startup_rows(r.get("latency"), r.get("startup"), targets)
    rows += _steady_rows(r.get("steady"), targets)
    rows += _classify_rows(r.get("classify"), targets)
    rows += _cluster_rows(r.get("cluster"))
    for key in ("latency", "startup", "steady", "classify", "cluster"):
        if isinstance(r.get(key), dict) and "skipped" in r[key]:
            rows.append(_row(key, "skipped: " + r[key]["skipped"]))
    return "\n".join(rows)


def accuracy_table(name: str) -> str | None:
    """Issue 19's accuracy targets and issue 32's confidence targets, read from the shipped model's metrics.json (None
    for another model)."""
    from ser_live.model.emotion_model import SHIPPED_MODELS

    if name not in BEFORE_ISSUE_19:
        return None
    metrics = json.loads(((REPO / "models" / SHIPPED_MODELS[name]).parent / "metrics.json").read_text())
    before = BEFORE_ISSUE_19[name]
    cv = metrics["summary"]["ours"]["utterance"]["overall"]["uar"]
    rows = ["| measure (utterance UAR, speaker-independent) | now | target | |", "|---|---|---|---|",
            _row("within-corpus CV", f"{cv:.3f}", f"≥ {before['cv_uar'] - 0.01:.3f} (before − 0.01)",
                 cv >= before["cv_uar"] - 0.01 - 1e-9)]
    loco = metrics.get("leave_one_corpus_out")
    if loco:
        mean = loco["mean_utterance_uar"]
        goal = before["loco_uar"] + 0.05
        rows.append(_row("leave-one-corpus-out mean", f"{mean:.3f}", f"≥ {goal:.3f} (before + 0.05)",
                         mean >= goal - 1e-9))
    for label, groups in metrics.get("robustness", {}).get("rows", {}).items():
        row = groups["overall"]
        gap = row["clean_uar"] - row["uar"]
        goal = ROOM_10DB_GAP[name] if label.startswith("room, 10 dB") else None
        rows.append(_row(label, f"{row['uar']:.3f} (clean {row['clean_uar']:.3f}, gap {gap:.3f})",
                         f"gap ≤ {goal:g}" if goal is not None else "", gap <= goal if goal is not None else None))
    return "\n".join(rows + _calibration_rows(metrics.get("calibration"), MAX_UNHEARD_ECE[name]))


def _calibration_rows(calibration: dict | None, max_ece: float) -> list[str]:
    """Issue 32's confidence targets on each corpus never heard, or held out of the recipe's training in turn for a
    model that heard them all (tempered by the temperature of the others)."""
    rows = []
    role = "held out" if (calibration or {}).get("corpora_were") == "held out" else "never heard"
    for corpus, v in (calibration or {}).get("per_corpus", {}).items():
        after = v["after"]["window"]
        right = after["confident_accuracy"]
        rows += [_row(f"{corpus} ({role}): calibration error per window", f"{after['ece']:.3f} "
                      f"(untempered {v['before']['window']['ece']:.3f})", f"≤ {max_ece:g}", after["ece"] <= max_ece),
                 _row(f"{corpus} ({role}): answers shown at ≥ 80 % right",
                      "none shown" if right is None else f"{right:.0%} of {after['confident_share']:.1%} of windows",
                      "≥ 80 %", right is None or right >= 0.8)]
    return rows


def _runtime_rows(runtimes: dict | None) -> list[str]:
    if not isinstance(runtimes, dict) or "onnxruntime" not in runtimes:
        return [_row("encoder runtimes", runtimes["skipped"])] if isinstance(runtimes, dict) else []
    numpy_ms, onnx_ms = runtimes["numpy"], runtimes["onnxruntime"]
    return [_row("2s window: encoder blocks on numpy (before)", f"{numpy_ms['median']:.2f} ms ({numpy_ms['p95']:.2f})"),
            _row("2s window: encoder blocks on onnxruntime (now)", f"{onnx_ms['median']:.2f} ms ({onnx_ms['p95']:.2f})",
                 f"numpy/onnxruntime = {runtimes['ratio_numpy_over_onnxruntime']:.2f}; features differ by at most "
                 f"{runtimes['max_difference_over_spread']:.1e} of their spread")]


def _cluster_rows(cl: dict | None) -> list[str]:
    if not isinstance(cl, dict) or "engines" not in cl:
        return []
    rows = [_row(f"--classify {cl['files']} x 3 s files, {name} ({cl['runs']} runs)",
                 f"{e['audio_s_per_s']:.0f} audio-s/s after a start of {e['start_s']['median']:.1f} s")
            for name, e in cl["engines"].items()]
    rows.append(_row("Dask local:2 against the local pool", f"{cl['cluster_overhead_pct']:+.1f} % run time",
                     "≤ +10 %", cl["cluster_overhead_pct"] <= 10.0))
    rows += [_row(f"--classify client memory, {m['files']:,} files", f"{m['client_peak_rss_mb']:.0f} MB peak RSS")
             for m in cl.get("listing", {}).values()]
    return rows


def _batch_sizes(*, heavy: bool, smoke: bool) -> tuple[int, int, tuple[int, ...]]:
    """Files and runs of the batch parts, and the archive sizes of the listing's memory (measured once, with the
    light model: it does not depend on the model)."""
    if smoke:
        return 20, 1, () if heavy else (200, 2000)
    return (60, 3, ()) if heavy else (200, 7, (10_000, 100_000))


def _bench_model(name: str, model: EmotionModel, parts: set[str], smoke: bool, speech: np.ndarray, speech_wav: Path,
                 one_s: Path, tmp: Path) -> dict:
    """Every part for one model; the encoder model's batch runs are fewer (each takes ~30x longer)."""
    n_files, runs, listing = _batch_sizes(heavy=model.extractor.kind != "handcrafted", smoke=smoke)
    steps = {
        "window": ("window_compute", lambda: bench_window_compute(model, speech, 20 if smoke else 300)),
        "runtime": ("encoder_runtimes", lambda: bench_encoder_runtimes(model, speech, 10 if smoke else 100)),
        "latency": ("latency", lambda: bench_latency(model, speech_wav, 10 if smoke else 30)),
        "startup": ("startup", lambda: bench_startup(one_s, 2 if smoke else 10)),
        "steady": ("steady", lambda: bench_steady(speech_wav, 5 if smoke else 60, tmp)),
        "classify": ("classify", lambda: bench_classify(speech, n_files, tmp / name, runs)),
        "cluster": ("cluster", lambda: bench_cluster(speech, n_files, tmp / name, 1 if smoke else 3, listing)),
    }
    results: dict = {"extractor": model.extractor.to_record()["kind"], "targets": TARGETS_BY_MODEL.get(name, TARGETS)}
    chosen = parts - ({"runtime"} if model.extractor.kind == "handcrafted" else set())  # nothing to choose there
    for part, (key, run) in steps.items():
        if part in chosen:
            print(f"bench: {name} model: {key} ...", file=sys.stderr, flush=True)
            results[key] = _measured(run)
    return results


def _measured(run) -> dict:
    """What a part measured, or why it could not (no microphone path, no display, a missing package)."""
    try:
        return run()
    except (ImportError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return {"skipped": f"{type(exc).__name__}: {exc}"}


#: What the bench can measure (``--only``); "runtime" is the encoder's numpy and ONNX Runtime paths side by side.
PARTS = ["window", "runtime", "latency", "startup", "steady", "classify", "cluster"]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a quick run that only checks the script works")
    parser.add_argument("--out", default=str(REPO / "bench" / "results.json"), help="where to write the results")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    parser.add_argument("--models", nargs="+", default=["default", "light"], metavar="NAME",
                        help="shipped models to measure (default: default light)")
    parser.add_argument("--model", help="benchmark another model file instead")
    return parser.parse_args(argv)


def _load_models(names: list[str]) -> dict[str, EmotionModel] | None:
    """The models by name, or None after one line on stderr."""
    models = {}
    for name in names:
        try:
            models[name] = EmotionModel.load(name)
        except Exception as exc:  # noqa: BLE001 - one line for the user, as everywhere
            print(f"bench: cannot load the model {name}: {exc}", file=sys.stderr)
            return None
    return models


def _print_results(results: dict, models: dict[str, EmotionModel], out: Path) -> None:
    print(f"CPU: {os.cpu_count()} cores; vector instructions {', '.join(results['machine']['cpu_features']) or '?'}")
    for name, r in results["models"].items():
        print(f"\n## {name} model ({r['extractor']} features, {models[name].extractor.runs_on or 'numpy'})\n")
        print(table(r, r["targets"]))
        accuracy = accuracy_table(name)
        if accuracy:
            print(f"\naccuracy and confidence (the model's metrics.json; issue 19's and 32's targets):\n{accuracy}")
    print(f"\nresults written to {out}" + (" (smoke run: figures are not meaningful)" if results["smoke"] else ""))


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    smoke = args.smoke
    import compileall

    # Byte-compile the package as pip does when it installs it, so start-up is measured as users
    # get it even where PYTHONDONTWRITEBYTECODE is set (as on this project's machines).
    compileall.compile_dir(str(REPO / "ser_live"), quiet=1)

    from ser_live.app.runtime import prepare_process

    prepare_process()  # as the ser-live command does at start, so in-process figures are the product's
    parts = set(args.only or PARTS)
    models = _load_models([args.model] if args.model else args.models)
    if models is None:
        return 1
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "cpu_features": cpu_features()},
        "smoke": smoke, "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="ser-live-bench-") as tmpdir:
        tmp = Path(tmpdir)
        speech = speech_signal(60.0, tmp)
        speech_wav = write_wav(tmp / "speech60.wav", speech[: int((10 if smoke else 30) * RATE_HZ)])
        one_s = write_wav(tmp / "one_second.wav", speech[: RATE_HZ])
        for name, model in models.items():
            MODEL_ARGS[:] = ["--model", str(Path(args.model).resolve()) if args.model else name]
            (tmp / name).mkdir(parents=True, exist_ok=True)
            results["models"][name] = _bench_model(name, model, parts, smoke, speech, speech_wav, one_s, tmp)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    _print_results(results, models, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
