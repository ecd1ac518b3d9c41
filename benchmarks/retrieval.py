"""Retrieval quality on the demo store: hit@1 and hit@5 of the right article.

    .venv/bin/python benchmarks/retrieval.py [--data-dir DIR]

The labelled questions are in examples/demo-store/evaluation/retrieval.csv (question,article).
A hit is the labelled article among the cited articles of the top passages (a FAQ entry cites
the article it summarises). Dense-only and BM25-only rankings are printed beside the hybrid one.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from frontdesk.demo import demo_settings, demo_store_dir
from frontdesk.knowledge.retrieval import Retriever
from frontdesk.service import Frontdesk

QUESTIONS = (
    Path(__file__).resolve().parents[1] / "examples" / "demo-store" / "evaluation" / "retrieval.csv"
)


def _cited(retriever: Retriever, order: Sequence[int]) -> list[str]:
    cited: list[str] = []
    for index in order:
        cite = retriever._chunks[index].cite_id
        if cite not in cited:
            cited.append(cite)
    return cited


async def run(data_dir: Path) -> dict[str, tuple[float, float]]:
    fd = Frontdesk(demo_settings(data_dir, intent_model=None))
    await fd.start(load_knowledge=False)
    await fd.ingest(demo_store_dir() / "knowledge")
    retriever = fd.retriever
    with QUESTIONS.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    vectors = fd.embedder.embed([row["question"] for row in rows])
    position = {chunk.id: i for i, chunk in enumerate(retriever._chunks)}

    rankings: dict[str, Callable[[str, np.ndarray], Sequence[int]]] = {
        "hybrid (Frontdesk)": lambda q, v: [
            position[p.chunk_id] for p in retriever.search_vector(q, v, top_k=20)
        ],
        "dense only": lambda q, v: list(np.argsort(-(retriever._vectors @ v))[:20]),
        "BM25 only": lambda q, v: list(np.argsort(-retriever.lexical(q))[:20]),
    }
    results: dict[str, tuple[float, float]] = {}
    for name, rank in rankings.items():
        hit1 = hit5 = 0
        for row, vector in zip(rows, vectors, strict=True):
            cited = _cited(retriever, rank(row["question"], vector))
            hit1 += cited[:1] == [row["article"]]
            hit5 += row["article"] in cited[:5]
        results[name] = (hit1 / len(rows), hit5 / len(rows))
    await fd.close()
    print(f"{len(rows)} labelled questions, {retriever.size} chunks\n")
    print(f"{'ranking':22} {'hit@1':>6} {'hit@5':>6}")
    for name, (h1, h5) in results.items():
        print(f"{name:22} {h1:6.2f} {h5:6.2f}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="reuse a data folder (skips re-embedding)")
    args = parser.parse_args()
    if args.data_dir:
        asyncio.run(run(args.data_dir))
    else:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(run(Path(folder)))


if __name__ == "__main__":
    main()
