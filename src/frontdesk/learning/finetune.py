"""OpenAI chat fine-tuning data from human-reviewed conversations (``frontdesk export finetune``).

Only bot replies that a reviewer approved (rated good) or corrected (any rating with a corrected
answer) become examples; when a reply was reviewed more than once, the newest review decides.
Each example is one JSON line ``{"messages": [...]}``:

- ``system``: the assistant's standing instructions (``prompt.system_prompt``, no canary)
  followed by the knowledge passages the reply was given, as ``prompt.build_messages`` serves
  them;
- the conversation's turns before the customer's message, at most ``history`` of them, as
  ``prompt.build_messages`` gives them to a model (customer -> user, bot and agent ->
  assistant, agents' texts marked "(agent) ", system notes left out);
- ``user``: the customer's message the reply answered;
- ``assistant``: the approved reply, or the reviewer's correction.

Every text is as stored, that is pseudonymized (``<EMAIL_1>`` and the like): the vault is never
opened here. As a safety net each text also goes through the service's PII detector, and any
raw value it still finds (a reviewer may type an email into a correction) becomes a ``<KIND>``
placeholder, counted in the report.

The split into train and validation is by conversation (all of one conversation's examples go
to the same file), in an order fixed by the seed, and the files are written atomically.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.store.tables import ChunkRow, MessageRow, ReviewRow
from frontdesk.company.guidelines import Guidelines
from frontdesk.core.types import (
    ArticleId,
    ChunkId,
    ConversationId,
    Message,
    MessageId,
    Passage,
    Role,
    utcnow,
)
from frontdesk.pipeline import privacy
from frontdesk.pipeline.prompt import build_messages

if TYPE_CHECKING:
    from frontdesk.service import Frontdesk

TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
DEFAULT_HISTORY = 6
DEFAULT_VALIDATION = 0.1

# Why a reviewed reply gives no example.
SKIP_REASONS: dict[str, str] = {
    "message_erased": "reply erased or past retention",
    "not_a_bot_reply": "not a bot reply",
    "no_customer_message": "no customer message before it",
    "no_correction": "rated not good, no correction",
}

_TURN_ROLES = frozenset({Role.CUSTOMER, Role.BOT, Role.AGENT})
_CHUNK = 500


class ExportError(RuntimeError):
    """The export cannot be written (a bad --out, nothing to export, bad options)."""


class NothingToExport(ExportError):
    """No reviewed reply gives an example."""


@dataclass(frozen=True, slots=True)
class Reviewed:
    """One reviewed reply, its newest review and what the conversation said before it."""

    review_id: int
    message_id: str
    conversation_id: str
    rating: str
    correction: str | None
    reply: Message | None
    question: Message | None
    earlier: tuple[Message, ...]  # the conversation's messages before the question, in order
    # The knowledge passages the reply was given (those still in the knowledge base), so that
    # an example looks like a served request: instructions, passages, turns.
    passages: tuple[Passage, ...] = ()


@dataclass(frozen=True, slots=True)
class Example:
    conversation_id: str
    message_id: str
    source: Literal["approved", "corrected"]
    messages: tuple[dict[str, str], ...]

    def line(self) -> str:
        return json.dumps({"messages": list(self.messages)}, ensure_ascii=False)


@dataclass(slots=True)
class ExportReport:
    conversations: int = 0
    examples: int = 0
    train: int = 0
    validation: int = 0
    approved: int = 0
    corrected: int = 0
    train_conversations: int = 0
    validation_conversations: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    placeholders: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "examples": self.examples,
            "train": self.train,
            "validation": self.validation,
            "train_conversations": self.train_conversations,
            "validation_conversations": self.validation_conversations,
            "approved": self.approved,
            "corrected": self.corrected,
            "skipped": dict(self.skipped),
            "skipped_total": sum(self.skipped.values()),
            "placeholders": dict(sorted(self.placeholders.items())),
            "placeholders_total": sum(self.placeholders.values()),
            "files": dict(self.files),
        }


# --- reading ----------------------------------------------------------------------------------


def _message(row: MessageRow) -> Message:
    return Message(
        id=MessageId(row.id),
        conversation_id=ConversationId(row.conversation_id),
        seq=row.seq,
        role=Role(row.role),
        text=row.text,
        created_at=row.created_at,
        reply_to=MessageId(row.reply_to) if row.reply_to else None,
    )


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def load_reviewed(session: Session, since: datetime | None = None) -> list[Reviewed]:
    """Every reviewed message (reviewed at or after ``since``) with its newest review, the
    reply, the customer's message it answered and the conversation before that, decrypted."""
    query = select(ReviewRow).order_by(ReviewRow.id)
    if since is not None:
        query = query.where(ReviewRow.created_at >= since)
    newest: dict[str, ReviewRow] = {}
    for review in session.execute(query).scalars():
        newest[review.message_id] = review  # ordered by id: the last one is the newest
    conversation_ids = sorted({r.conversation_id for r in newest.values()})
    by_conversation: dict[str, list[Message]] = defaultdict(list)
    for part in _chunks(conversation_ids):
        rows = session.execute(
            select(MessageRow)
            .where(MessageRow.conversation_id.in_(part))
            .order_by(MessageRow.conversation_id, MessageRow.seq)
        ).scalars()
        for row in rows:
            by_conversation[row.conversation_id].append(_message(row))
    chunk_ids: dict[str, list[str]] = {}
    for message_id in newest:
        stored = session.get(MessageRow, message_id)
        listed = (stored.meta or {}).get("passages") if stored is not None else None
        if isinstance(listed, list):
            chunk_ids[message_id] = [str(c) for c in listed]
    wanted = sorted({c for ids in chunk_ids.values() for c in ids})
    chunks: dict[str, Passage] = {}
    for part in _chunks(wanted):
        for chunk in session.execute(select(ChunkRow).where(ChunkRow.id.in_(part))).scalars():
            chunks[chunk.id] = Passage(
                ChunkId(chunk.id),
                ArticleId(chunk.article_id),
                chunk.title,
                chunk.text,
                ArticleId(chunk.cite_id),
                chunk.cite_title,
                0.0,
                0.0,
            )
    found = []
    for message_id, review in newest.items():
        messages = by_conversation.get(review.conversation_id, [])
        by_id = {m.id: m for m in messages}
        reply = by_id.get(MessageId(message_id))
        question = by_id.get(reply.reply_to) if reply is not None and reply.reply_to else None
        earlier = tuple(m for m in messages if question is not None and m.seq < question.seq)
        found.append(
            Reviewed(
                review_id=review.id,
                message_id=message_id,
                conversation_id=review.conversation_id,
                rating=review.rating,
                correction=review.correction,
                reply=reply,
                question=question,
                earlier=earlier,
                passages=tuple(chunks[c] for c in chunk_ids.get(message_id, []) if c in chunks),
            )
        )
    found.sort(key=lambda r: (r.conversation_id, r.reply.seq if r.reply else -1, r.message_id))
    return found


# --- the safety net ---------------------------------------------------------------------------


class Scrubber:
    """Replaces raw personal data the detector still finds by ``<KIND>`` placeholders, leaving
    the pseudonymization's tokens (``<EMAIL_1>``) and the assistant's and company's own names
    alone. Counts each placeholder it puts into an example."""

    def __init__(self, detector: privacy.Detector, own_names: Iterable[str] = ()) -> None:
        self.detector = detector
        self.own = {word.casefold() for name in own_names for word in name.split()}
        self.counts: Counter[str] = Counter()
        self._memo: dict[str, tuple[str, tuple[str, ...]]] = {}

    def _clean(self, text: str) -> tuple[str, tuple[str, ...]]:
        tokens = [m.span() for m in privacy.TOKEN_RE.finditer(text)]
        spans = [
            span
            for span in self.detector.detect(text)
            if not any(span.start < end and start < span.end for start, end in tokens)
            and not (
                span.kind == privacy.PERSON
                and {w.casefold() for w in span.value.split()} <= self.own
            )
        ]
        if not spans:
            return text, ()
        spans.sort(key=lambda span: span.start)
        done = privacy.replace(text, spans, {span: f"<{span.kind}>" for span in spans})
        return done.text, done.kinds

    def __call__(self, text: str) -> str:
        if text not in self._memo:
            self._memo[text] = self._clean(text)
        clean, kinds = self._memo[text]
        self.counts.update(kinds)
        return clean


# --- building ---------------------------------------------------------------------------------


def build_examples(
    reviewed: Iterable[Reviewed],
    guidelines: Guidelines,
    scrub: Scrubber,
    *,
    history: int = DEFAULT_HISTORY,
    skipped: Counter[str] | None = None,
) -> list[Example]:
    """One example per approved or corrected reply; ``skipped`` counts the others by reason."""
    if history < 0:
        raise ExportError("--history must be 0 or more")
    skipped = skipped if skipped is not None else Counter()
    examples = []
    for item in reviewed:
        if item.reply is None:
            skipped["message_erased"] += 1
            continue
        if item.reply.role is not Role.BOT:
            skipped["not_a_bot_reply"] += 1
            continue
        correction = (item.correction or "").strip()
        if correction:
            source: Literal["approved", "corrected"] = "corrected"
            answer = correction
        elif item.rating == "good":
            source, answer = "approved", item.reply.text
        else:
            skipped["no_correction"] += 1
            continue
        if item.question is None or item.question.role is not Role.CUSTOMER:
            skipped["no_customer_message"] += 1
            continue
        turns = [m for m in item.earlier if m.role in _TURN_ROLES]
        window = turns[-history:] if history else []
        built = build_messages(
            guidelines, text=item.question.text, history=window, passages=item.passages
        )
        # As served: one system message with the instructions (without a canary) and the
        # turn's knowledge (the company's own text, not scrubbed: its support address is no
        # one's personal data), then the turns.
        messages = [{"role": "system", "content": built[0].content}]
        messages += [{"role": m.role, "content": scrub(m.content)} for m in built[1:]]
        messages.append({"role": "assistant", "content": scrub(answer)})
        examples.append(Example(item.conversation_id, item.message_id, source, tuple(messages)))
    return examples


def split(conversation_ids: Iterable[str], fraction: float, seed: int) -> set[str]:
    """The conversations that go to validation: ``fraction`` of them (at least one when the
    fraction is above 0 and there are two or more, never all), in an order fixed by ``seed``."""
    if not 0 <= fraction < 1:
        raise ExportError("--validation must be at least 0 and below 1")
    ordered = sorted(
        set(conversation_ids),
        key=lambda c: (hashlib.sha256(f"{seed}:{c}".encode()).hexdigest(), c),
    )
    count = round(len(ordered) * fraction)
    if fraction > 0:
        count = max(count, 1)
    count = min(count, max(len(ordered) - 1, 0))
    return set(ordered[:count])


# --- writing ----------------------------------------------------------------------------------


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that is a file or that cannot be written to, before any work."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; give a folder")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ExportError(f"--out {out}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ExportError(f"--out {out}: {existing} is not writable")


def write_atomically(files: dict[Path, str]) -> None:
    """Write every file to a temporary file next to it, then rename them all into place: a
    failure leaves no half-written file (and the temporary files are removed)."""
    written: list[tuple[Path, Path]] = []
    try:
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            written.append((Path(name), path))
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(content)
                stream.flush()
                os.fsync(stream.fileno())
        for temporary, path in written:
            os.replace(temporary, path)
    except BaseException:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)
        raise


def _jsonl(examples: Iterable[Example]) -> str:
    return "".join(example.line() + "\n" for example in examples)


async def export_finetune(
    fd: Frontdesk,
    out: Path,
    *,
    history: int = DEFAULT_HISTORY,
    validation: float = DEFAULT_VALIDATION,
    seed: int = 0,
    since_days: float | None = None,
) -> ExportReport:
    """Write ``train.jsonl`` and ``validation.jsonl`` into ``out`` from the reviewed replies
    (reviewed in the last ``since_days`` days if given). Raises ``NothingToExport`` when no
    reply gives an example (nothing is written), ``ExportError`` for a bad ``out``."""
    if history < 0:
        raise ExportError("--history must be 0 or more")
    if not 0 <= validation < 1:
        raise ExportError("--validation must be at least 0 and below 1")
    if since_days is not None and since_days <= 0:
        raise ExportError("--since must be more than 0 days")
    check_out(out)
    since = utcnow() - timedelta(days=since_days) if since_days is not None else None
    reviewed = await fd.db.run(lambda s: load_reviewed(s, since))
    guidelines = fd.guidelines
    scrub = Scrubber(fd.detector, (guidelines.assistant_name, guidelines.company_name))
    skipped: Counter[str] = Counter()
    examples = await asyncio.to_thread(
        build_examples, reviewed, guidelines, scrub, history=history, skipped=skipped
    )
    report = ExportReport()
    report.skipped.update(skipped)
    report.placeholders = dict(scrub.counts)
    if not examples:
        reasons = ", ".join(f"{count} {k}" for k, count in skipped.items() if count)
        raise NothingToExport(
            "nothing to export: no bot reply was rated good or corrected by a reviewer"
            + (f" (skipped: {reasons})" if reasons else "")
        )
    held_out = split((e.conversation_id for e in examples), validation, seed)
    train = [e for e in examples if e.conversation_id not in held_out]
    validate = [e for e in examples if e.conversation_id in held_out]
    paths = {out / TRAIN_FILE: _jsonl(train), out / VALIDATION_FILE: _jsonl(validate)}
    try:
        await asyncio.to_thread(write_atomically, paths)
    except OSError as exc:
        raise ExportError(f"cannot write to {out}: {exc}") from exc
    report.conversations = len({e.conversation_id for e in examples})
    report.examples = len(examples)
    report.train, report.validation = len(train), len(validate)
    report.train_conversations = len({e.conversation_id for e in train})
    report.validation_conversations = len(held_out)
    report.approved = sum(e.source == "approved" for e in examples)
    report.corrected = sum(e.source == "corrected" for e in examples)
    report.files = {"train": str(out / TRAIN_FILE), "validation": str(out / VALIDATION_FILE)}
    return report
