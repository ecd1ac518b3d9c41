"""The customers' messages as a file of unlabelled texts (``frontdesk export messages``), for
``frontdesk train intents --unlabelled`` (docs/learning.md#learning-from-unlabelled-messages).

One CSV column, ``text``: every distinct message a customer sent (case and spacing ignored),
oldest first, optionally only those of the last DAYS days. Texts are as stored, that is
pseudonymized (``<EMAIL_1>``); as in the fine-tuning export, the service's PII detector reads
each one again and any raw value it still finds becomes a ``<KIND>`` placeholder, counted in
the report. The file is written atomically, readable by its owner only.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.store.tables import MessageRow
from frontdesk.core.types import Role, utcnow
from frontdesk.learning.finetune import ExportError, Scrubber, write_atomically

if TYPE_CHECKING:
    from frontdesk.service import Frontdesk


class NoMessages(ExportError):
    """No customer message to export."""


@dataclass
class MessagesReport:
    messages: int = 0
    written: int = 0
    placeholders: dict[str, int] = field(default_factory=dict)
    file: str = ""

    def public(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "written": self.written,
            "duplicates": self.messages - self.written,
            "placeholders": self.placeholders,
            "file": self.file,
        }


def customer_texts(session: Session, since: datetime | None = None) -> list[str]:
    """The text of every customer message (sent at or after ``since``), oldest first."""
    query = select(MessageRow.text).where(MessageRow.role == Role.CUSTOMER.value)
    if since is not None:
        query = query.where(MessageRow.created_at >= since)
    query = query.order_by(MessageRow.created_at, MessageRow.conversation_id, MessageRow.seq)
    return [text for text in session.execute(query).scalars() if text and text.strip()]


def to_csv(texts: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text"])
    writer.writerows([text] for text in texts)
    return buffer.getvalue()


def check_file(out: Path) -> None:
    """Refuse an ``--out`` that is a folder or lies in no folder, before any work."""
    if out.is_dir():
        raise ExportError(f"--out {out} is a folder; give a file name, e.g. messages.csv")
    if not out.parent.is_dir():
        raise ExportError(f"--out {out}: {out.parent} is not a folder")


async def export_messages(
    fd: Frontdesk, out: Path, *, since_days: float | None = None
) -> MessagesReport:
    """Write the customers' distinct messages to the CSV file ``out``. Raises ``NoMessages``
    when there is none (nothing is written), ``ExportError`` for a bad ``out``."""
    if since_days is not None and since_days <= 0:
        raise ExportError("--since must be more than 0 days")
    check_file(out)
    since = utcnow() - timedelta(days=since_days) if since_days is not None else None
    texts = await fd.db.run(lambda s: customer_texts(s, since))
    if not texts:
        raise NoMessages(
            "no customer message to export" + (f" in the last {since_days:g} days" if since else "")
        )
    guidelines = fd.guidelines
    scrub = Scrubber(fd.detector, (guidelines.assistant_name, guidelines.company_name))
    seen: set[str] = set()
    distinct: list[str] = []
    for text in texts:
        clean = " ".join(scrub(text).split())
        key = clean.casefold()
        if key not in seen:
            seen.add(key)
            distinct.append(clean)
    try:
        # Its temporary file is created 0600: the file is the owner's only.
        await asyncio.to_thread(write_atomically, {out: to_csv(distinct)})
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc}") from exc
    return MessagesReport(len(texts), len(distinct), dict(scrub.counts), str(out))
