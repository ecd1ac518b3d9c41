"""PII detection: precision, recall and F2 per kind, and latency, for both detectors.

    .venv/bin/python benchmarks/pii.py [--json out.json] [--split test] [--errors]

Runs ``build_detector("patterns")`` and ``build_detector("spacy")`` over the labelled
customer messages of ``benchmarks/data/pii/corpus.jsonl`` (written by ``make_corpus.py`` in
the same folder) and prints, per kind and overall (micro-averaged):

* exact match: a found span counts only with the labelled kind, start and end;
* overlap match: the same kind and at least one character in common (one to one).

F2 weighs recall twice as much as precision (a missed value is stored in clear, a false one
only costs a token). Presidio's published F2 on its own synthetic data (0.618 out of the box,
0.845 customised) is printed beside it for scale: not the same data, not comparable point for
point. Latency is per message, on one core: ``detect`` alone, and the whole pseudonymization
(``detect``, a keyed digest per value, numbering, ``privacy.replace``); for spacy mode also the
same replacement done by presidio-anonymizer's ``AnonymizerEngine``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frontdesk.adapters.pii import PiiBackendMissing, build_detector
from frontdesk.pipeline import privacy

CORPUS = Path(__file__).with_name("data") / "pii" / "corpus.jsonl"
PRESIDIO_F2 = {"out of the box": 0.618, "customised": 0.845}
TARGETS = {"recall": 0.99, "f2": 0.85, "patterns_p50_ms": 2.0, "spacy_p50_ms": 15.0}
STRICT_KINDS = (privacy.EMAIL, privacy.PHONE, privacy.CARD, privacy.IBAN, privacy.SSN, privacy.IP)
KEY = b"benchmark-key"

Gold = tuple[str, int, int]


def load(split: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if split == "all" or line["split"] == split]


def f_beta(precision: float, recall: float, beta: float = 2.0) -> float:
    if precision == 0 and recall == 0:
        return 0.0
    return (1 + beta**2) * precision * recall / (beta**2 * precision + recall)


def score(
    found: list[set[Gold]], gold: list[set[Gold]], overlap: bool
) -> dict[str, dict[str, float]]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for predicted, expected in zip(found, gold, strict=True):
        unmatched = set(expected)
        for kind, start, end in sorted(predicted):
            if overlap:
                match = next(
                    (g for g in sorted(unmatched) if g[0] == kind and g[1] < end and start < g[2]),
                    None,
                )
            else:
                match = (kind, start, end) if (kind, start, end) in unmatched else None
            if match is None:
                fp[kind] += 1
            else:
                tp[kind] += 1
                unmatched.discard(match)
        for kind, _, _ in unmatched:
            fn[kind] += 1
    table: dict[str, dict[str, float]] = {}
    for kind in [*privacy.KINDS, "overall"]:
        if kind == "overall":
            t, p, n = sum(tp.values()), sum(fp.values()), sum(fn.values())
        else:
            t, p, n = tp[kind], fp[kind], fn[kind]
        precision = t / (t + p) if t + p else 1.0
        recall = t / (t + n) if t + n else 1.0
        table[kind] = {
            "precision": precision,
            "recall": recall,
            "f2": f_beta(precision, recall),
            "support": t + n,
            "found": t + p,
        }
    return table


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(function: Callable[[str], object], texts: list[str], repeat: int) -> list[float]:
    for text in texts[:20]:
        function(text)  # warm up
    times: list[float] = []
    for _ in range(repeat):
        for text in texts:
            start = time.perf_counter()
            function(text)
            times.append((time.perf_counter() - start) * 1000)
    return times


def tokens_for(spans: list[privacy.Span]) -> dict[privacy.Span, str]:
    """Number the values as the action layer does: by keyed digest, per kind."""
    numbers: dict[tuple[str, str], int] = {}
    tokens: dict[privacy.Span, str] = {}
    for span in spans:
        key = (span.kind, privacy.digest(KEY, span.kind, span.value))
        number = numbers.setdefault(key, sum(1 for k in numbers if k[0] == span.kind) + 1)
        tokens[span] = privacy.token(span.kind, number)
    return tokens


def pseudonymize(detector: privacy.Detector) -> Callable[[str], privacy.Pseudonymized]:
    """What the privacy stage does to a message: detect, digest, number, replace."""

    def run(text: str) -> privacy.Pseudonymized:
        spans = detector.detect(text)
        return privacy.replace(text, spans, tokens_for(spans))

    return run


def evaluate(mode: str, detector: privacy.Detector, lines: list[dict[str, Any]]) -> dict[str, Any]:
    gold = [{(s["kind"], s["start"], s["end"]) for s in line["spans"]} for line in lines]
    found = [{(s.kind, s.start, s.end) for s in detector.detect(line["text"])} for line in lines]
    negatives = [i for i, line in enumerate(lines) if not line["spans"]]
    errors = [
        {
            "text": line["text"],
            "missed": sorted((k, line["text"][a:b]) for k, a, b in gold[i] - found[i]),
            "wrong": sorted((k, line["text"][a:b]) for k, a, b in found[i] - gold[i]),
        }
        for i, line in enumerate(lines)
        if gold[i] != found[i]
    ]
    return {
        "mode": mode,
        "messages": len(lines),
        "exact": score(found, gold, overlap=False),
        "overlap": score(found, gold, overlap=True),
        "messages_without_pii": len(negatives),
        "false_spans_in_messages_without_pii": sum(len(found[i]) for i in negatives),
        "errors": errors,
    }


def latency(detector: privacy.Detector, texts: list[str], repeat: int, mode: str) -> dict[str, Any]:
    runs: dict[str, tuple[Callable[[str], object], list[str]]] = {
        "detect": (detector.detect, texts),
        "pseudonymize (detect, digest, replace)": (pseudonymize(detector), texts),
    }
    if mode == "spacy":
        from frontdesk.adapters.pii.presidio import PresidioDetector, anonymize, may_hold_name

        assert isinstance(detector, PresidioDetector)
        with_names = [text for text in texts if may_hold_name(text, detector.not_names)]
        runs[f"detect, the {len(with_names)} messages that run NER"] = (detector.detect, with_names)
    prepared = {text: (spans := detector.detect(text), tokens_for(spans)) for text in texts}
    runs["replace only: privacy.replace"] = (
        lambda text: privacy.replace(text, *prepared[text]),
        texts,
    )
    if mode == "spacy":
        runs["replace only: presidio AnonymizerEngine"] = (
            lambda text: anonymize(text, *prepared[text]),
            texts,
        )
    result: dict[str, Any] = {}
    for name, (function, subset) in runs.items():
        times = timed(function, subset, repeat)
        result[name] = {
            "messages": len(subset),
            "p50_ms": statistics.median(times),
            "p95_ms": percentile(times, 0.95),
            "mean_ms": statistics.fmean(times),
        }
    return result


def print_report(report: dict[str, Any], show_errors: bool) -> None:
    for run in report["runs"]:
        mode = run["mode"]
        print(f"\n== {mode}: build {run['build_s']:.2f} s ==")
        for split, result in run["quality"].items():
            exact, overlap = result["exact"], result["overlap"]
            print(
                f"\n{split} split, {result['messages']} messages "
                f"({result['messages_without_pii']} without PII: "
                f"{result['false_spans_in_messages_without_pii']} false spans)"
            )
            print(
                f"{'kind':<9} {'support':>7} {'found':>6}  {'P':>6} {'R':>6} {'F2':>6}"
                f"   overlap: {'P':>6} {'R':>6} {'F2':>6}"
            )
            for kind in [*privacy.KINDS, "overall"]:
                e, o = exact[kind], overlap[kind]
                print(
                    f"{kind:<9} {e['support']:>7} {e['found']:>6}  {e['precision']:6.3f} "
                    f"{e['recall']:6.3f} {e['f2']:6.3f}            {o['precision']:6.3f} "
                    f"{o['recall']:6.3f} {o['f2']:6.3f}"
                )
            if show_errors:
                for error in result["errors"]:
                    print(
                        f"  {error['text']!r}\n     missed {error['missed']} wrong {error['wrong']}"
                    )
        print(f"\nlatency per message ({run['latency_messages']} messages x {run['repeat']}):")
        for name, value in run["latency"].items():
            print(f"  {name:<44} p50 {value['p50_ms']:7.3f} ms   p95 {value['p95_ms']:7.3f} ms")
    print("\nOverall F2, exact match (test split | all messages):")
    for run in report["runs"]:
        test, everything = run["quality"].get("test"), run["quality"].get("all")
        cells = [f"{r['exact']['overall']['f2']:.3f}" if r else "-" for r in (test, everything)]
        print(f"  Frontdesk {run['mode']:<10} {cells[0]} | {cells[1]}")
    for name, value in PRESIDIO_F2.items():
        print(f"  Presidio, {name:<15} {value:.3f} (published, on Presidio's own synthetic data)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--modes", default="patterns,spacy", help="comma-separated modes")
    parser.add_argument("--split", choices=["dev", "test", "all"], help="only this split")
    parser.add_argument("--repeat", type=int, default=3, help="latency passes over the corpus")
    parser.add_argument("--errors", action="store_true", help="print every wrong message")
    args = parser.parse_args()
    splits = [args.split] if args.split else ["dev", "test", "all"]
    everything = load("all")
    texts = [line["text"] for line in everything]
    kinds = Counter(s["kind"] for line in everything for s in line["spans"])
    print(
        f"{CORPUS.name}: {len(everything)} messages, {sum(kinds.values())} labelled spans, "
        f"{len(kinds)} kinds"
    )
    report: dict[str, Any] = {"corpus": str(CORPUS), "targets": TARGETS, "runs": []}
    for mode in args.modes.split(","):
        start = time.perf_counter()
        try:
            detector = build_detector(mode)
        except PiiBackendMissing as error:
            print(f"\n== {mode}: skipped: {error} ==")
            continue
        build_s = time.perf_counter() - start
        quality = {split: evaluate(mode, detector, load(split)) for split in splits}
        run = {
            "mode": mode,
            "build_s": build_s,
            "quality": quality,
            "latency": latency(detector, texts, args.repeat, mode),
            "latency_messages": len(texts),
            "repeat": args.repeat,
        }
        report["runs"].append(run)
    print_report(report, args.errors)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
