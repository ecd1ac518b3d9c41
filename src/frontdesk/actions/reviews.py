"""The review loop: which bot replies are most worth a look, and what a review does.

A reviewer rates a bot reply good, wrong, outdated or incomplete, and may write the corrected
answer. A correction becomes (1) an approved answer for that question, used before retrieval
when a customer asks the same question again, and (2) a curated training example. Both are
versioned with who and when: a second correction of the same question is version 2, and only
the newest version answers."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.store import people
from frontdesk.adapters.store.tables import ChunkRow, MessageRow, ReviewRow
from frontdesk.service import Frontdesk
from frontdesk.testing.regressions import REVIEW_HEADER, review_conversation, save_conversation

RATINGS = ("good", "wrong", "outdated", "incomplete")


class ReviewError(ValueError):
    """The review cannot be saved (unknown message, not a bot reply, bad rating)."""


def question_key(question: str) -> str:
    """Questions that differ only in case, spacing and punctuation share a key."""
    normal = " ".join(re.findall(r"[a-z0-9<>_]+", question.lower()))
    return hashlib.sha256(normal.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ReviewItem:
    message_id: str
    conversation_id: str
    question: str
    answer: str
    confidence: float
    reasons: tuple[str, ...]
    score: float

    def public(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "conversation_id": self.conversation_id,
            "question": self.question,
            "answer": self.answer,
            "confidence": self.confidence,
            "reasons": list(self.reasons),
            "score": round(self.score, 3),
        }


def rank(
    rows: list[MessageRow], reviewed: set[str], threshold: float, limit: int = 50
) -> list[ReviewItem]:
    """Unreviewed bot replies with a reason to look, most worth it first: low confidence,
    negative feedback (the customer's next message is negative or frustrated), a handoff soon
    after (within the next two replies)."""
    by_conversation: dict[str, list[MessageRow]] = defaultdict(list)
    for row in rows:
        by_conversation[row.conversation_id].append(row)
    items = []
    for messages in by_conversation.values():
        texts = {m.id: m.text for m in messages}
        bots = [m for m in messages if m.role == "bot"]
        for index, bot in enumerate(bots):
            meta = bot.meta or {}
            if bot.id in reviewed or meta.get("action") in (None, "handoff", "greet"):
                continue
            later = bots[index + 1 : index + 3]
            confidence = float(meta.get("confidence", 0.0))
            reasons = []
            score = 0.0
            if meta.get("action") in ("answer", "rephrase", "offer_human") and (
                confidence < threshold + 0.1
            ):
                reasons.append("low_confidence")
                score += 0.5 * (1 - confidence)
            if later and (
                float(later[0].meta.get("sentiment", 0)) <= -0.3
                or float(later[0].meta.get("frustration", 0)) >= 0.5
            ):
                reasons.append("negative_feedback")
                score += 0.3
            if any(m.meta.get("action") == "handoff" for m in later):
                reasons.append("handoff_after")
                score += 0.4
            if reasons:
                items.append(
                    ReviewItem(
                        bot.id,
                        bot.conversation_id,
                        texts.get(bot.reply_to or "", ""),
                        bot.text,
                        confidence,
                        tuple(reasons),
                        score,
                    )
                )
    items.sort(key=lambda i: (-i.score, i.message_id))
    return items[:limit]


async def review_queue(fd: Frontdesk) -> list[ReviewItem]:
    def work(session: Session) -> tuple[list[MessageRow], set[str]]:
        return people.recent_bot_messages(session, 300), people.reviewed_message_ids(session)

    rows, reviewed = await fd.db.run(work)
    return rank(rows, reviewed, fd.settings.answer_threshold)


async def do_review(
    fd: Frontdesk,
    user: people.User,
    message_id: str,
    rating: str,
    correction: str | None,
    *,
    save_test: bool = False,
) -> dict[str, Any]:
    if rating not in RATINGS:
        raise ReviewError(f"rating must be one of {', '.join(RATINGS)}")
    correction = (correction or "").strip() or None
    if rating == "wrong" and correction is None:
        raise ReviewError("a wrong answer needs the corrected answer")
    if save_test and correction is None:
        raise ReviewError("only a correction can be saved as a regression test")
    if correction is not None:
        await _refuse_personal_data(fd, correction)

    def find(session: Session) -> tuple[MessageRow, MessageRow | None]:
        bot = session.get(MessageRow, message_id)
        if bot is None or bot.role != "bot":
            raise ReviewError(f"no bot reply with id {message_id!r}")
        question = session.get(MessageRow, bot.reply_to) if bot.reply_to else None
        return bot, question

    bot, question_row = await fd.db.run(find)
    question = question_row.text if question_row is not None else ""
    vector = None
    if correction and question:
        vector = await fd.embedder.embed_one(question)

    def work(session: Session) -> dict[str, Any]:
        review = people.add_review(
            session, message_id, bot.conversation_id, user.id, rating, correction
        )
        result: dict[str, Any] = {
            "review": {"id": review.id, "rating": rating, "at": review.created_at.isoformat()}
        }
        if correction and question and vector is not None:
            approved = people.add_approved_answer(
                session,
                key=question_key(question),
                question=question,
                answer=correction,
                embedder=fd.embedder.name,
                embedding=np.asarray(vector, dtype=np.float32).tobytes(),
                review_id=review.id,
                created_by=user.id,
            )
            people.add_training_example(
                session, question, (bot.meta or {}).get("intent"), correction, review.id, user.id
            )
            result["approved_answer"] = {"id": approved.id, "version": approved.version}
        people.audit(
            session,
            user.id,
            "review",
            bot.conversation_id,
            {"message": message_id, "rating": rating},
        )
        return result

    result = await fd.db.run(work)
    if "approved_answer" in result:
        await fd.load_approved_answers()
        if save_test:
            saved = await do_save_review_test(fd, result["review"]["id"])
            result["regression_test"] = str(saved)
    return result


async def _refuse_personal_data(fd: Frontdesk, correction: str) -> None:
    """A correction becomes an approved answer, sent to every customer who asks the question
    and given to a model backend as a source: it may hold no personal data except the company's
    own (an address or phone number its help centre or guidelines publish)."""
    spans = fd.detector.detect(correction)
    if not spans:
        return
    published = fd.guidelines.model_dump_json()

    def company_values(session: Session) -> set[str]:
        found = set()
        for value in {span.value for span in spans}:
            hit = session.execute(
                select(ChunkRow.id).where(ChunkRow.text.contains(value, autoescape=True)).limit(1)
            ).first()
            if hit is not None or value in published:
                found.add(value)
        return found

    known = await fd.db.run(company_values)
    kinds = sorted({span.kind for span in spans if span.value not in known})
    if kinds:
        raise ReviewError(
            f"the correction holds personal data ({', '.join(kinds)}) that the help centre "
            "does not publish: an approved answer is sent to every customer who asks this "
            "question, so write it without"
        )


def default_tests_path(fd: Frontdesk) -> Path:
    return fd.settings.data_dir / "tests" / "reviews.yaml"


async def do_save_review_test(fd: Frontdesk, review_id: int, path: Path | None = None) -> Path:
    """Save a reviewer's correction as a regression test: the customer's question must now
    get the approved answer (``frontdesk test`` runs with the live approved answers)."""

    def find(session: Session) -> tuple[str, str]:
        review = session.get(ReviewRow, review_id)
        if review is None or not review.correction:
            raise ReviewError(f"no review with a correction has the id {review_id}")
        bot = session.get(MessageRow, review.message_id)
        question = session.get(MessageRow, bot.reply_to) if bot and bot.reply_to else None
        if question is None:
            raise ReviewError(f"review {review_id}: the customer's question is gone")
        return question.text, review.correction

    question, answer = await fd.db.run(find)
    target = path or default_tests_path(fd)
    conversation = review_conversation(review_id, question, answer)
    return await asyncio.to_thread(save_conversation, target, conversation, REVIEW_HEADER)
