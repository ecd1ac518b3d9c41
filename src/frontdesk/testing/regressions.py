"""Regression tests written from what people teach the bot: a reviewer's correction, an
accepted knowledge gap. Each is a conversation test added to (or replaced in) a test file, in
the format ``frontdesk test`` runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from frontdesk.testing.suites import parse_suite


def save_conversation(path: Path, conversation: dict[str, Any], header: str) -> Path:
    """Add the conversation to the test file at ``path`` (one of the same name is replaced).
    A file that is not a valid test file is refused, never rewritten."""
    conversations: list[Any] = []
    if path.exists():
        text = path.read_text(encoding="utf-8")
        parse_suite(text, str(path))
        conversations = list((yaml.safe_load(text) or {}).get("conversations") or [])
    conversations = [c for c in conversations if c.get("name") != conversation["name"]]
    conversations.append(conversation)
    body = yaml.safe_dump({"conversations": conversations}, sort_keys=False, allow_unicode=True)
    parse_suite(body, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + body, encoding="utf-8")
    return path


def key_phrase(answer: str, limit: int = 80) -> str:
    """A distinctive part of an answer for ``reply_contains``: its first sentence, cut at a
    word boundary."""
    first = re.split(r"(?<=[.!?])\s+", answer.strip(), maxsplit=1)[0]
    if len(first) <= limit:
        return first.rstrip(".!? ")
    cut = first[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;: ")


REVIEW_HEADER = (
    "# Answers reviewers corrected: the bot must now give the approved answer. Written by\n"
    "# Frontdesk (`frontdesk reviews save-test`, or the console's review form).\n"
)


def review_conversation(review_id: int, question: str, answer: str) -> dict[str, Any]:
    return {
        "name": f"reviewed answer {review_id}: {question[:80]}",
        "tags": ["review"],
        "turns": [{"say": question, "expect": {"reply_contains": [key_phrase(answer)]}}],
    }
