"""Which help-centre article answers each message of the demo store's held-out intent file,
with and without the intent's articles (``intents.articles`` in the guidelines).

    .venv/bin/python benchmarks/answers.py [--data-dir DIR] [--changed]

Every message of examples/demo-store/intents/test.csv goes through the whole turn, alone in a
new conversation, on the demo store (its intent model, trained if missing, and its help
centre): once as the demo's guidelines are, once with ``intents.articles`` emptied. Each reply
is counted by its first citation against the articles that the guidelines give the message's
*labelled* intent: one of them ("right article"), another article, or no citation (a flow's
question, a clarifying question, a handoff). Messages labelled out of scope should get no
citation at all.

The reference is the guidelines' own list of articles per intent, so "right article" says the
reply comes from where the company says that intent is answered, not that the passage chosen
is the best one; ``--changed`` prints every message whose reply changed, to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from frontdesk.actions.conversations import do_create_conversation, do_receive_customer_message
from frontdesk.demo import demo_settings, demo_store_dir, ensure_demo_intents
from frontdesk.service import Frontdesk

TEST = demo_store_dir() / "intents" / "test.csv"


@dataclass(frozen=True)
class Reply:
    text: str
    cited: str | None  # the first citation's article id


async def _replies(fd: Frontdesk, messages: list[str]) -> list[Reply]:
    out = []
    for message in messages:
        conversation = await do_create_conversation(fd, "benchmark")
        result = await do_receive_customer_message(fd, conversation.id, message, None)
        reply = result.replies[0]
        out.append(Reply(reply.text, reply.citations[0].id if reply.citations else None))
    return out


def _tally(
    labels: list[str], replies: list[Reply], articles: dict[str, tuple[str, ...]]
) -> Counter[str]:
    counts: Counter[str] = Counter()
    for label, reply in zip(labels, replies, strict=True):
        if label == "oos":
            counts["oos: cited" if reply.cited else "oos: no citation"] += 1
        elif label not in articles:
            continue
        elif reply.cited is None:
            counts["no citation"] += 1
        elif reply.cited in articles[label]:
            counts["right article"] += 1
        else:
            counts["another article"] += 1
    return counts


async def run(data_dir: Path, show_changed: bool) -> None:
    settings = demo_settings(data_dir)
    ensure_demo_intents(settings)
    fd = Frontdesk(settings)
    await fd.start(load_knowledge=False)
    try:
        await fd.ingest(demo_store_dir() / "knowledge")
        with TEST.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        messages = [row["text"] for row in rows]
        labels = [row["label"] for row in rows]
        articles = dict(fd.guidelines.intents.articles)
        with_articles = await _replies(fd, messages)
        intents = fd.guidelines.intents.model_copy(update={"articles": {}})
        fd.guidelines = fd.guidelines.model_copy(update={"intents": intents})
        without = await _replies(fd, messages)
    finally:
        await fd.close()

    known = sum(1 for label in labels if label in articles)
    print(
        f"{len(rows)} held-out messages; {known} of them labelled with an intent that has "
        f"articles ({len(articles)} intents), {labels.count('oos')} out of scope"
    )
    before, after = _tally(labels, without, articles), _tally(labels, with_articles, articles)
    print(f"{'':24}{'without':>10}{'with':>10}   (the intent's articles)")
    for key in ("right article", "another article", "no citation", "oos: cited"):
        print(f"{key:24}{before[key]:>10}{after[key]:>10}")
    changed = [
        (label, message, old, new)
        for label, message, old, new in zip(labels, messages, without, with_articles, strict=True)
        if old != new
    ]
    print(f"replies changed: {len(changed)} of {len(rows)}")
    if show_changed:
        for label, message, old, new in changed:
            print(f"\n[{label}] {message}")
            print(f"  without ({old.cited}): {old.text[:160]!r}")
            print(f"  with    ({new.cited}): {new.text[:160]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="reuse a data folder (default: a new one)")
    parser.add_argument("--changed", action="store_true", help="print every changed reply")
    args = parser.parse_args()
    if args.data_dir is not None:
        asyncio.run(run(args.data_dir, args.changed))
        return
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(Path(folder), args.changed))


if __name__ == "__main__":
    main()
