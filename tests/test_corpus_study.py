"""scripts/corpus_study.py on five tiny generated corpora named as the five real ones name their files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import espeak

REPO = Path(__file__).resolve().parents[1]

#: Each corpus's file name for (speaker index, emotion, sentence), from its documented naming.
NAMES = {
    "ravdess": lambda s, e, n: f"03-01-{ {'angry': '05', 'happy': '03', 'sad': '04'}[e]}-01-0{n + 1}-01-0{s + 1}",
    "emovo": lambda s, e, n: f"{ {'angry': 'rab', 'happy': 'gio', 'sad': 'tri'}[e]}-{['f1', 'm1'][s]}-b{n + 1}",
    "ased": lambda s, e, n: f"{ {'angry': 'a5', 'happy': 'h3', 'sad': 's4'}[e]}-0{n + 1}-01-01-0{s + 1}",
    "nemo": lambda s, e, n: f"{['EB0', 'IC0'][s]}_{ {'angry': 'anger', 'happy': 'happiness', 'sad': 'sadness'}[e]}_{n}",
    "tess": lambda s, e, n: f"{['OAF', 'YAF'][s]}_{['back', 'bar'][n]}_{e}",
}
LINES = {"angry": "Stop that right now, I said stop!", "happy": "What a lovely, lovely day it is!",
         "sad": "I miss them so much, it is hard."}


def test_the_study_scores_each_corpus_held_out_and_writes_its_table(tmp_path):
    data = tmp_path / "data"
    for k, (corpus, name) in enumerate(NAMES.items()):
        for speaker, voice in enumerate((f"en+m{k + 1}", f"en+f{k + 1}")):
            for emotion, text in LINES.items():
                for n in range(2):
                    (data / corpus).mkdir(parents=True, exist_ok=True)
                    espeak(f"{text} {n}", data / corpus / f"{name(speaker, emotion, n)}.wav", voice=voice)
    out, figures = tmp_path / "study.md", tmp_path / "study.json"
    proc = subprocess.run([sys.executable, "scripts/corpus_study.py", "--model", "light", "--data", str(data),
                           "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--candidates", "shipped recipe",
                           "corpus weights", "--cv", "corpus weights", "--out", str(out), "--json", str(figures)],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(figures.read_text())
    assert list(results) == ["shipped recipe", "corpus weights"] and "cv" in results["corpus weights"]
    for result in results.values():
        assert set(result["per_corpus"]) == set(NAMES)  # every corpus held out once
        for corpus, v in result["per_corpus"].items():
            assert v["utterance"]["n"] == 12, corpus  # all its recordings scored, by a model that never heard it
            assert 0.0 <= v["utterance"]["uar"] <= 1.0 and v["temperature"] >= 1.0
            assert v["calibration"]["window"]["after"]["accuracy"] == v["calibration"]["window"]["before"]["accuracy"]
        assert abs(result["mean_uar"] - sum(v["utterance"]["uar"] for v in result["per_corpus"].values()) / 5) < 1e-9
    text = out.read_text()
    assert text.startswith("# Five corpora, each held out in turn") and "| corpus weights |" in text
    assert "Made by `python scripts/corpus_study.py --model light" in text
