"""Intent accuracy on BANKING77, next to the published results.

    .venv/bin/python benchmarks/banking77.py [--data DIR] [--json PATH]

Trains Frontdesk's intent model (the built-in encoder plus its two heads, no fine-tuning) on
the full training set and on 10 examples per intent (5 seeds), and evaluates each on the
3,080 test queries. Encoder vectors are cached in benchmarks/.cache so reruns skip the
encoding. Also reports training time and the latency of classifying one message.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from frontdesk.adapters.models.onnx_embedder import OnnxEmbedder
from frontdesk.learning.datasets import Labelled, load_labelled
from frontdesk.learning.evaluation import evaluate
from frontdesk.learning.intents import train

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "datasets" / "banking77"
PUBLISHED_FULL = {"BERT (fine-tuned)": 93.66, "USE+ConveRT": 93.36}
PUBLISHED_10 = {"USE+ConveRT": 85.19, "DNNC": 86.71, "CPFT": 87.20, "ICDA": 89.79}
TARGET_FULL, TARGET_10 = 94.0, 88.0


def vectors(encoder: OnnxEmbedder, data: Labelled) -> tuple[np.ndarray, float | None]:
    """The encoder's vectors of ``data`` and the seconds it took (None: from the cache)."""
    key = hashlib.sha256((encoder.name + data.digest()).encode()).hexdigest()[:16]
    cache = HERE / ".cache" / f"banking77-{key}.npy"
    if cache.exists():
        return np.load(cache), None
    started = time.perf_counter()
    result = np.vstack(
        [encoder.embed(list(data.texts[i : i + 256])) for i in range(0, len(data), 256)]
    )
    print(f"  encoded {len(data)} texts in {time.perf_counter() - started:.0f} s")
    cache.parent.mkdir(exist_ok=True)
    np.save(cache, result)
    return result, time.perf_counter() - started


def run(data_dir: Path) -> dict[str, Any]:
    train_set = load_labelled(data_dir / "train.csv", label_column="category")
    test_set = load_labelled(data_dir / "test.csv", label_column="category")
    encoder = OnnxEmbedder(threads=2)
    print(
        f"BANKING77: {len(train_set)} train, {len(test_set)} test, {len(train_set.classes)} intents"
    )
    train_vectors, encode_train_s = vectors(encoder, train_set)
    test_vectors, _ = vectors(encoder, test_set)
    index = {text: i for i, text in enumerate(train_set.texts)}

    def fit_and_score(subset: Labelled, seed: int) -> tuple[float, float, float]:
        rows = [index[t] for t in subset.texts]
        began = time.perf_counter()
        model = train(
            list(subset.texts), train_vectors[rows], list(subset.labels),
            encoder=encoder.name, seed=seed,
        )  # fmt: skip
        seconds = time.perf_counter() - began
        report = evaluate(
            model.predict(list(test_set.texts), test_vectors), list(test_set.labels), "oos"
        )
        return 100 * report["accuracy"], 100 * report["macro_f1"], seconds

    full_acc, full_f1, full_s = fit_and_score(train_set, 0)
    print(f"  full: accuracy {full_acc:.2f}, macro-F1 {full_f1:.2f}, heads {full_s:.0f} s")
    shots: list[tuple[float, float, float]] = []
    for seed in range(5):
        shots.append(fit_and_score(train_set.sample(10, seed), seed))
        print(f"  10-shot seed {seed}: accuracy {shots[-1][0]:.2f}")
    model = train(
        list(train_set.texts), train_vectors, list(train_set.labels), encoder=encoder.name
    )
    latencies = []
    for text in test_set.texts[:300]:
        began = time.perf_counter()
        model.predict_one(text, encoder.embed([text]))
        latencies.append((time.perf_counter() - began) * 1000)
    latencies.sort()
    encoder.close()
    accuracies = [s[0] for s in shots]
    encode_s = None if encode_train_s is None else round(encode_train_s, 1)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "full": {"accuracy": round(full_acc, 2), "macro_f1": round(full_f1, 2),
                 "encode_seconds": encode_s, "head_seconds": round(full_s, 1)},
        "ten_shot": {"accuracy_mean": round(statistics.mean(accuracies), 2),
                     "accuracy_std": round(statistics.pstdev(accuracies), 2),
                     "per_seed": [round(a, 2) for a in accuracies],
                     "head_seconds_mean": round(statistics.mean(s[2] for s in shots), 1)},
        "latency_ms": {"p50": round(latencies[len(latencies) // 2], 2),
                       "p95": round(latencies[int(len(latencies) * 0.95)], 2)},
    }  # fmt: skip


def report(result: dict[str, Any]) -> None:
    full, ten = result["full"], result["ten_shot"]
    print("\nBANKING77 test accuracy (%)")
    print(f"{'system':34} {'full data':>10} {'10-shot':>10}")
    print(f"{'Frontdesk (MiniLM int8 + heads)':34} {full['accuracy']:>10.2f} "
          f"{ten['accuracy_mean']:>7.2f}±{ten['accuracy_std']:.2f}")  # fmt: skip
    for name in sorted(set(PUBLISHED_FULL) | set(PUBLISHED_10)):
        full_ref = f"{PUBLISHED_FULL[name]:.2f}" if name in PUBLISHED_FULL else "-"
        ten_ref = f"{PUBLISHED_10[name]:.2f}" if name in PUBLISHED_10 else "-"
        print(f"{name:34} {full_ref:>10} {ten_ref:>10}")
    full_ok = "met" if full["accuracy"] >= TARGET_FULL else "MISSED"
    ten_ok = "met" if ten["accuracy_mean"] >= TARGET_10 else "MISSED"
    print(f"\ntarget: full >= {TARGET_FULL} ({full_ok}), 10-shot >= {TARGET_10} ({ten_ok})")
    print(
        f"training: encoding {full['encode_seconds'] or 'cached,'} s + heads "
        f"{full['head_seconds']} s (full);"
        f" heads {ten['head_seconds_mean']} s (10-shot)"
    )
    lat = result["latency_ms"]
    print(f"one message (encoder + heads): p50 {lat['p50']} ms, p95 {lat['p95']} ms "
          f"(target p50 <= 10 ms: {'met' if lat['p50'] <= 10 else 'MISSED'})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BANKING77 folder")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = run(args.data)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
