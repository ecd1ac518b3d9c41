"""Cost of the built-in sentence encoder (all-MiniLM-L6-v2 int8 ONNX) on this machine.

    .venv/bin/python benchmarks/encoder.py

Embeds the customer questions of benchmarks/questions.txt one at a time and as one batch,
with 1 and 2 onnxruntime threads, and prints milliseconds of wall time and of CPU time per
sentence. The encoder is most of a turn's CPU, so this bounds the service's throughput.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from frontdesk.adapters.models.onnx_embedder import OnnxEmbedder

QUESTIONS = Path(__file__).with_name("questions.txt")


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
    print(f"{'threads':>7} {'mode':>8} {'wall ms':>8} {'CPU ms':>8}   (per sentence)")
    for threads in (1, 2):
        encoder = OnnxEmbedder(threads=threads)
        encoder.embed(questions[:8])  # warm up
        for mode in ("single", "batch"):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.repeat):
                if mode == "single":
                    for question in questions:
                        encoder.embed([question])
                else:
                    encoder.embed(questions)
            count = len(questions) * args.repeat
            wall_ms = (time.perf_counter() - wall) * 1000 / count
            cpu_ms = (time.process_time() - cpu) * 1000 / count
            print(f"{threads:>7} {mode:>8} {wall_ms:8.2f} {cpu_ms:8.2f}")
        encoder.close()


if __name__ == "__main__":
    main()
