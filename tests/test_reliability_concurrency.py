"""The numba cache hazard: parallel and repeated first uses of librosa are safe; the live path never uses it."""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, tone, write_wav

from ser_live.training import jit_cache

PACKAGE = REPO / "ser_live"


def _py(code: str, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=str(REPO), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _fresh_env(tmp_path: Path) -> dict:
    import os

    cache = tmp_path / "numba-cache"
    return {**os.environ, "NUMBA_CACHE_DIR": str(cache), "SER_LIVE_TRUST_MODEL": "1"}


def _cache_files(env: dict) -> list[Path]:
    cache = Path(env["NUMBA_CACHE_DIR"])
    return [p for p in cache.rglob("*") if p.is_file() and p.name != ".compile.lock"] if cache.exists() else []


# -- the live path never touches librosa or numba -----------------------------------------------------------------
def test_live_path_imports_neither_librosa_nor_numba(tmp_path, tiny_model_path):
    wav, wav2 = write_wav(tmp_path / "a.wav", tone(150.0, 2.5)), write_wav(tmp_path / "b.wav", tone(200.0, 2.5))
    model = ["--model", str(tiny_model_path)]
    runs = [
        ["--classify", str(wav), "--workers", "1", *model],
        ["--classify", str(wav), str(wav2), "--workers", "2", *model],  # the worker pool too
        ["--print", "--input", str(wav), *model],
    ]
    code = (
        "import sys, json\n"
        "from ser_live.cli.main import main\n"
        f"codes = [main(args) for args in {runs!r}]\n"
        "import ser_live.gui.window\n"  # the window's modules too (imported without opening it)
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('librosa', 'numba'))\n"
        "print(json.dumps({'codes': codes, 'heavy': heavy}))\n"
    )
    env = _fresh_env(tmp_path)
    proc = _py(code, env)
    out, err = proc.communicate(timeout=180)
    report = json.loads(out.strip().splitlines()[-1])
    assert report == {"codes": [0, 0, 0], "heavy": []}, err
    assert _cache_files(env) == []  # and no worker compiled anything into the cache


def test_two_classify_runs_at_once_on_a_fresh_cache(tmp_path, tiny_model_path):
    wavs = [str(write_wav(tmp_path / f"{i}.wav", tone(120.0 + 30 * i, 2.5))) for i in range(3)]
    env = _fresh_env(tmp_path)
    cmd = [sys.executable, "-m", "ser_live", "--classify", *wavs, "--json", "--workers", "2",
           "--model", str(tiny_model_path)]
    procs = [subprocess.Popen(cmd, env=env, cwd=str(REPO), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    outputs = [sorted(out.splitlines()) for out, _ in results]
    assert outputs[0] == outputs[1] and len(outputs[0]) == 3
    assert _cache_files(env) == []  # nothing compiled, nothing to corrupt


# -- every librosa function ser-live calls is compiled under the lock ---------------------------------------------
def _librosa_calls(source: str) -> set[str]:
    """Dotted names called on librosa, e.g. ``feature.mfcc``, in one module's source."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            parts, target = [], node.func
            while isinstance(target, ast.Attribute):
                parts.append(target.attr)
                target = target.value
            root = target.id if isinstance(target, ast.Name) else (
                target.func.id if isinstance(target, ast.Call) and isinstance(target.func, ast.Name) else None
            )
            if root in ("librosa", "import_librosa"):
                found.add(".".join(reversed(parts)))
    return found


def test_every_librosa_call_in_ser_live_is_warmed_under_the_lock():
    used = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name != "jit_cache.py":
            used |= _librosa_calls(path.read_text())
    warmed = _librosa_calls(inspect.getsource(jit_cache._compile_kernels))
    assert used, "expected the training code to use librosa"
    assert used <= warmed, f"compile these in jit_cache._compile_kernels too: {sorted(used - warmed)}"


def test_librosa_is_imported_only_through_jit_cache():
    pattern = re.compile(r"^\s*(import librosa|from librosa)", re.MULTILINE)
    offenders = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py")
                 if p.name != "jit_cache.py" and pattern.search(p.read_text())]
    assert offenders == []


# -- a crash while compiling or a corrupt cache is detected, wiped and rebuilt --------------------------------------
def test_crash_while_building_the_cache_wipes_and_rebuilds(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "librosa_stale.nbi").write_bytes(b"corrupt index")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    runs = []

    def child(cache_dir, timeout_s):
        runs.append(sorted(p.name for p in cache_dir.iterdir()))
        return (-11, "Segmentation fault") if len(runs) == 2 else (0, "")  # the load-back check crashes once

    monkeypatch.setattr(jit_cache, "_run_kernels_in_child", child)
    monkeypatch.setattr(jit_cache, "compiled_here", False)
    assert jit_cache.ensure_warm_cache() == cache
    assert len(runs) == 4  # compile, check (crash), then after the wipe: compile, check
    assert "librosa_stale.nbi" in runs[0] and "librosa_stale.nbi" not in runs[2]
    assert jit_cache._warm_marker(cache).exists() and jit_cache.compiled_here
    runs.clear()
    jit_cache.ensure_warm_cache()  # warm now: no child runs at all
    assert runs == []


def test_cache_that_never_works_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(jit_cache, "_run_kernels_in_child", lambda cache_dir, timeout_s: (-11, ""))
    with pytest.raises(jit_cache.JitCacheError, match="killed by SIGSEGV") as info:
        jit_cache.ensure_warm_cache()
    assert "NUMBA_CACHE_DIR" in str(info.value) and "\n" not in str(info.value)
    assert not jit_cache._warm_marker(tmp_path / "cache").exists()


def test_waiting_too_long_for_another_compiler_is_a_clear_error(tmp_path, monkeypatch, caplog):
    from filelock import FileLock

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    holder = _py(
        "import sys, time; from filelock import FileLock\n"
        f"lock = FileLock({str(cache / '.compile.lock')!r}); lock.acquire(); print('held', flush=True); time.sleep(60)",
        env=None,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(jit_cache.JitCacheError, match="another process has been compiling"):
            jit_cache.ensure_warm_cache(lock_timeout_s=0.5)
        assert "waiting for another process" in caplog.text  # the wait is explained, not a silent hang
    finally:
        holder.kill()
        holder.wait()
    assert FileLock(str(cache / ".compile.lock")).acquire(timeout=10)


# -- the real thing: two first imports at once on a fresh cache ---------------------------------------------------
_FIRST_USE = (
    "import json, numpy as np\n"
    "from ser_live.training import jit_cache\n"
    "librosa = jit_cache.import_librosa()\n"
    "y = np.sin(np.arange(16000) * 0.05).astype(np.float32)\n"
    "m = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13)\n"
    "s = librosa.effects.time_stretch(y, rate=1.1)\n"
    "report = {'compiled_here': jit_cache.compiled_here, 'mfcc': m.shape, 'finite': bool(np.isfinite(s).all())}\n"
    "print(json.dumps(report))\n"
)


@pytest.mark.slow
def test_two_first_imports_at_once_then_a_third(tmp_path):
    env = _fresh_env(tmp_path)
    procs = [_py(_FIRST_USE, env) for _ in range(2)]
    results = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in results]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    assert sorted(r["compiled_here"] for r in reports) == [False, True]  # exactly one of them compiled
    assert all(r["finite"] and r["mfcc"][0] == 13 for r in reports)
    assert any(p.suffix == ".nbi" for p in _cache_files(env))  # the kernels really are cached there
    third = _py(_FIRST_USE, env)
    out, err = third.communicate(timeout=300)
    assert third.returncode == 0, err[-2000:]
    assert json.loads(out.strip().splitlines()[-1])["compiled_here"] is False
