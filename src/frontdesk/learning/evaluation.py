"""Metrics of an intent model on a labelled set: accuracy, macro-F1, per-intent precision and
recall, the most confused pairs, and out-of-scope detection."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from frontdesk.learning.intents import Prediction


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def evaluate(
    predictions: Sequence[Prediction], gold: Sequence[str], oos_label: str
) -> dict[str, Any]:
    """``accuracy`` and the per-intent figures compare the predicted label with the gold one;
    out-of-scope figures count a message as predicted out of scope when the model says so
    (its out-of-scope label, or a confidence under its threshold)."""
    if len(predictions) != len(gold):
        raise ValueError("one prediction per gold label is needed")
    labels = sorted(set(gold) | {p.label for p in predictions})
    predicted = [p.label for p in predictions]
    correct = sum(p == g for p, g in zip(predicted, gold, strict=True))
    per_intent: dict[str, dict[str, float | int]] = {}
    f1s: list[float] = []
    for label in labels:
        tp = sum(p == label and g == label for p, g in zip(predicted, gold, strict=True))
        fp = sum(p == label and g != label for p, g in zip(predicted, gold, strict=True))
        fn = sum(p != label and g == label for p, g in zip(predicted, gold, strict=True))
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * precision * recall, precision + recall)
        if label in gold:
            f1s.append(f1)
            per_intent[label] = {
                "precision": round(precision, 4),
                "recall": round(recall, 4),
                "f1": round(f1, 4),
                "support": sum(g == label for g in gold),
            }
    confusions = Counter(
        (g, p) for p, g in zip(predicted, gold, strict=True) if p != g
    ).most_common(10)
    result: dict[str, Any] = {
        "examples": len(gold),
        "accuracy": round(_ratio(correct, len(gold)), 4),
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
        "per_intent": per_intent,
        "most_confused": [{"gold": g, "predicted": p, "count": n} for (g, p), n in confusions],
        "in_scope_accuracy": None,
        "oos_precision": None,
        "oos_recall": None,
        "oos_f1": None,
    }
    gold_oos = [g == oos_label for g in gold]
    in_scope = [not x for x in gold_oos]
    flagged = [p.out_of_scope for p in predictions]
    result["in_scope_accuracy"] = round(
        _ratio(
            sum(
                i and not f and p.label == g
                for i, f, p, g in zip(in_scope, flagged, predictions, gold, strict=True)
            ),
            sum(in_scope),
        ),
        4,
    )
    if any(gold_oos):
        tp = sum(f and o for f, o in zip(flagged, gold_oos, strict=True))
        precision = _ratio(tp, sum(flagged))
        recall = _ratio(tp, sum(gold_oos))
        result["oos_precision"] = round(precision, 4)
        result["oos_recall"] = round(recall, 4)
        result["oos_f1"] = round(_ratio(2 * precision * recall, precision + recall), 4)
    return result
