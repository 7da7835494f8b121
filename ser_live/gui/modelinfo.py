"""What the window tells about the model: classes, training corpora and speaker-independent UAR from its metadata.

Model files record their provenance in a free-form ``metadata`` dictionary; older or hand-made
files may lack any of it. Everything here degrades to "not recorded" rather than failing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model.emotion_model import EmotionModel

__all__ = ["ModelInfo", "describe_model"]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """The facts about a model the window shows.

    Attributes
    ----------
    name : str
        File name (or "built-in" for a model without a file).
    classes : tuple of str
    corpora : tuple of str
        Training corpora as recorded (empty when the metadata does not say).
    uar : float or None
        Speaker-independent unweighted average recall, if the metadata records one.
    uar_where : str
        Which figure ``uar`` is (its key path in the metadata), for honesty.
    protocol : str
        How the evaluation was done, as the metadata says (empty if it does not).
    license : str
        The model's licence as recorded (empty if it is not).
    window_s, hop_s : float
    features : str
        What the model hears through (its feature extractor), in words.
    new_corpus_uar : float or None
        Mean UAR on a corpus left out of training (leave-one-corpus-out), when the metadata records it:
        the honest figure for another room, language or way of speaking, shown first.
    confidence : str
        How far the confidence shown can be trusted where the model has never been, in a line (from the
        calibration on corpora it never heard that the model file records; empty if it records none).
    """

    name: str
    classes: tuple[str, ...]
    corpora: tuple[str, ...]
    uar: float | None
    uar_where: str
    protocol: str
    license: str
    window_s: float
    hop_s: float
    features: str = ""
    new_corpus_uar: float | None = None
    confidence: str = ""

    @property
    def uar_name(self) -> str:
        """What the UAR figure is: speaker-independent, or (a model whose data named no speakers) a random split's,
        which the same voices flatter."""
        if self.protocol.startswith("random split"):
            return "Optimistic UAR (random split: the same voices in training)"
        return "Speaker-independent UAR"

    def summary_lines(self) -> list[str]:
        """The few lines the model panel shows (the rest is in :meth:`lines`, its tooltip)."""
        uar = f"{self.uar:.1%}" if self.uar is not None else "not recorded in the model file"
        corpora = ", ".join(self.corpora) if self.corpora else "not recorded in the model file"
        return [
            f"{self.name}" + (f": {self.features}" if self.features else ""),
            f"Classes: {', '.join(self.classes)}",
            f"Trained on: {corpora}",
            *self._new_corpus_lines(),
            f"{self.uar_name} {uar} on new speakers of those corpora" if self.new_corpus_uar is not None
            else f"{self.uar_name} {uar} (chance {1 / len(self.classes):.1%})",
            *([self.confidence] if self.confidence else []),
        ]

    def _new_corpus_lines(self) -> list[str]:
        if self.new_corpus_uar is None:
            return []
        return [f"On a corpus it never heard: UAR {self.new_corpus_uar:.1%} (chance {1 / len(self.classes):.1%})"]

    def lines(self) -> list[str]:
        """Plain-text lines for the model panel."""
        # "evaluation/ours/utterance/overall/uar" reads as "utterance, overall".
        where = [p for p in self.uar_where.split("/")[:-1] if p not in ("evaluation", "summary", "ours", "metrics")]
        if self.uar is None:
            uar = "not recorded in the model file"
        else:
            uar = f"{self.uar:.1%}" + (f" ({', '.join(where)})" if where else "")
        protocol = [f"Evaluation: {self.protocol}"] if self.protocol else []
        return [
            f"Model: {self.name}",
            *([f"Features: {self.features}"] if self.features else []),
            f"Classes: {', '.join(self.classes)}",
            f"Trained on: {', '.join(self.corpora) if self.corpora else 'not recorded in the model file'}",
            *self._new_corpus_lines(),
            f"{self.uar_name}: {uar}",
            *protocol,
            *([self.confidence] if self.confidence else []),
            f"Chance level: {1 / len(self.classes):.1%}",
            *([f"License: {self.license}"] if self.license else []),
        ]


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, str(key)), value
            yield from _walk(value, (*path, str(key)))


def _corpus_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, dict):
        return tuple(str(k) for k in value)
    if isinstance(value, (list, tuple)):
        names = []
        for item in value:
            if isinstance(item, dict):
                item = item.get("name") or item.get("corpus")
            if item:
                names.append(str(item))
        return tuple(names)
    return ()


def _uar_score(path: tuple[str, ...]) -> int:
    # Prefer the headline figure: this model's own (not a baseline's, not a random split's), speaker-
    # independent, over utterances, over all corpora.
    text = "/".join(path).lower()
    if any(word in text for word in ("classic", "baseline", "random", "ratio")):
        return -10
    return sum(word in text for word in ("ours", "speaker", "independent", "overall", "utterance"))


def describe_model(model: EmotionModel) -> ModelInfo:
    """Collect the model facts from its attributes and (tolerantly) from its metadata."""
    meta = model.metadata if isinstance(model.metadata, dict) else {}
    corpora, protocol, uar, where = _provenance(meta)
    return ModelInfo(
        name=model.path.name if model.path is not None else "built-in",
        classes=model.classes,
        corpora=corpora,
        uar=uar,
        uar_where=where,
        protocol=protocol,
        license=str(meta.get("license", "")) if isinstance(meta.get("license"), str) else "",
        window_s=model.window_s,
        hop_s=model.hop_s,
        features=_features(model),
        new_corpus_uar=_new_corpus_uar(meta),
        confidence=_confidence_line(meta),
    )


def _is_uar(key: str, value: Any) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return "uar" in key and number and math.isfinite(value) and 0.0 <= value <= 1.0


def _provenance(meta: dict[str, Any]) -> tuple[tuple[str, ...], str, float | None, str]:
    """The training corpora, the evaluation protocol, and the most honest UAR the metadata records (and where)."""
    corpora: tuple[str, ...] = ()
    protocol = ""
    uars: list[tuple[int, tuple[str, ...], float]] = []
    for path, value in _walk(meta):
        key = path[-1].lower()
        if key == "corpora" and not corpora:
            corpora = _corpus_names(value)
        elif key == "protocol" and isinstance(value, str) and _uar_score(path) >= 0 and not protocol:
            protocol = value
        elif _is_uar(key, value):
            uars.append((_uar_score(path), path, float(value)))
    if not uars:
        return corpora, protocol, None, ""
    _, best_path, uar = max(uars, key=lambda item: (item[0], -len(item[1])))
    return corpora, protocol, uar, "/".join(best_path)


def _new_corpus_uar(meta: dict[str, Any]) -> float | None:
    """The leave-one-corpus-out mean the training records in the model's evaluation summary, if any."""
    evaluation = meta.get("evaluation")
    loco = evaluation.get("leave_one_corpus_out") if isinstance(evaluation, dict) else None
    uar = loco.get("mean_utterance_uar") if isinstance(loco, dict) else None
    return float(uar) if _share(uar) else None


def _confidence_line(meta: dict[str, Any]) -> str:
    """How far the confidence can be trusted on the corpora the model never heard (from the ``calibration`` entry
    scripts/calibrate_model.py writes), in a line; empty when not recorded."""
    rows = _calibration_rows(meta)
    errors = [v["ece"] for v in rows.values() if _share(v.get("ece"))]
    if not errors:
        return ""
    points = [round(100 * e) for e in errors]
    off = f"{min(points)}" if len(points) == 1 else f"{min(points)}-{max(points)}"
    shown = _confident_answers(rows)
    calibration = meta["calibration"]
    where = ("on each corpus it learnt from, left out of its training in turn" if
             calibration.get("corpora_were") == "held out" else "for corpora it never heard")
    return f"Confidence: tempered {where} ({', '.join(rows)}), where it was off by {off} points on average; {shown}"


def _confident_answers(rows: dict[str, dict[str, Any]]) -> str:
    """How often the answers shown at 80 % or more were right, and on how many windows at most."""
    confident = [v for v in rows.values() if _share(v.get("confident_accuracy"))]
    if not confident:
        return "it never showed 80 % or more there"
    right = _spread([v["confident_accuracy"] for v in confident])
    shares = [v["confident_share"] for v in confident if _share(v.get("confident_share"))]
    often = f" (on at most {max(shares):.1%} of windows)" if shares else ""
    return f"answers shown at 80 % or more{often} were right {right} of the time"


def _spread(values: list[float]) -> str:
    return f"{min(values):.0%}" if len(values) == 1 else f"{min(values):.0%}-{max(values):.0%}"


def _calibration_rows(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    calibration = meta.get("calibration")
    per_corpus = calibration.get("per_corpus") if isinstance(calibration, dict) else None
    if not isinstance(per_corpus, dict):
        return {}
    return {str(k): v for k, v in per_corpus.items() if isinstance(v, dict)}


def _share(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def _features(model: EmotionModel) -> str:
    extractor = model.extractor
    if extractor.kind == "whisper-encoder":
        blocks = getattr(extractor, "blocks", ())
        on = getattr(extractor, "runtime_name", "")  # what runs it: onnxruntime, or numpy without it
        return (f"{getattr(extractor, 'weights', 'speech')} encoder, block {', '.join(map(str, blocks))}"
                + (f", on {on}" if on else ""))
    if extractor.kind == "handcrafted":
        return f"handcrafted (version {extractor.version})"
    return extractor.kind
