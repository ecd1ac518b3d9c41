"""Cost of the built-in sentence encoder (all-MiniLM-L6-v2 int8 ONNX) on this machine.

    .venv/bin/python benchmarks/encoder.py

Embeds the customer questions of benchmarks/questions.txt one at a time, one at a time with
10 ms of idle time before each (as a service sees a lone customer's question), and as one
batch, with 1 and 2 onnxruntime threads, and prints milliseconds of wall time and of CPU time
per sentence. Both graphs of the file are timed: the one Frontdesk runs, whose int8 weights
are multiplied as integers, and the file's own graph, which turns them into floats first (the
encoder before 2026-11-30). The last line says how close their vectors are.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from frontdesk.adapters.models.onnx_embedder import OnnxEmbedder

QUESTIONS = Path(__file__).with_name("questions.txt")
GAP_S = 0.01


def _time(
    encoder: OnnxEmbedder, questions: list[str], mode: str, repeat: int
) -> tuple[float, float]:
    """Wall and CPU milliseconds per sentence; the idle gaps are not counted."""
    wall = cpu = 0.0
    for _ in range(repeat):
        batches = [questions] if mode == "batch" else [[q] for q in questions]
        for batch in batches:
            if mode == "spaced":
                time.sleep(GAP_S)
            w, c = time.perf_counter(), time.process_time()
            encoder.embed(batch)
            wall += time.perf_counter() - w
            cpu += time.process_time() - c
    count = len(questions) * repeat
    return wall * 1000 / count, cpu * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="passes over the questions")
    args = parser.parse_args()
    questions = [
        line.strip()
        for line in QUESTIONS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    print(f"{len(questions)} questions, {os.cpu_count()} CPUs\n")
    print(f"{'graph':>8} {'threads':>7} {'mode':>8} {'wall ms':>8} {'CPU ms':>8}   (per sentence)")
    vectors = {}
    for integer in (True, False):
        graph = "integer" if integer else "float"
        for threads in (1, 2):
            encoder = OnnxEmbedder(threads=threads, integer=integer)
            vectors[graph] = encoder.embed(questions)  # also the warm-up
            for mode in ("single", "spaced", "batch"):
                wall_ms, cpu_ms = _time(encoder, questions, mode, args.repeat)
                print(f"{graph:>8} {threads:>7} {mode:>8} {wall_ms:8.2f} {cpu_ms:8.2f}")
            encoder.close()
    cosines = np.sum(vectors["integer"] * vectors["float"], axis=1)
    print(
        f"\ncosine of the two graphs' vectors: mean {cosines.mean():.5f}, "
        f"lowest {cosines.min():.5f}"
    )


if __name__ == "__main__":
    main()
