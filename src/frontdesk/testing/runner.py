"""Run conversation test suites through the real pipeline on a scratch copy of the data.

A workspace is made once per run: a temporary data folder, a SQLite database with the
company's knowledge ingested and its store data imported, and the intent model (the
configured one copied from the registry, or one trained from the company's
``intents/train.csv``). Each conversation then runs on its own copy of that database, so no
conversation sees another's changes, and nothing touches the company's real database.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from frontdesk.actions.conversations import do_create_conversation, do_receive_customer_message
from frontdesk.actions.vault import restore_for_customer
from frontdesk.adapters.store import shop as shop_repo
from frontdesk.adapters.store.tables import EventRow, LeadRow, MessageRow
from frontdesk.config import Settings
from frontdesk.core.ports import Embedder
from frontdesk.service import Frontdesk
from frontdesk.testing.suites import Conversation, DatabaseExpectation, Expect

SUITE_MODEL = "suite"


@dataclass(slots=True)
class Outcome:
    """What one turn did, as the checks see it."""

    said: str
    reply: str
    citations: list[str]
    intent: str | None
    entities: list[str]
    flow: str | None
    action: str | None
    reason: str | None
    tool_calls: list[dict[str, Any]]
    handoff: bool

    @property
    def steered_by_intent(self) -> bool:
        """Whether the intent model's label chose this reply: a knowledge answer, small talk,
        a flow it started, a person it asked for. Not when a flow read the message as an
        answer, nor when a rule (a sensitive topic, a flow's transfer) decided."""
        reason = self.reason or ""
        if self.intent is None:
            return False
        if self.action == "flow":
            return reason.startswith(("flow_started", "flow_switched"))
        if self.action == "handoff":
            return reason in ("customer_request", "accepted_offer")
        return True

    def key(self) -> tuple[Any, ...]:
        """The outcome the counterfactual checks compare. The intent counts where it decides
        the reply; a message that answers a flow's question is read by the flow, not by the
        intent model."""
        return (
            self.intent if self.steered_by_intent else None,
            self.action,
            self.handoff,
            tuple(c["tool"] for c in self.tool_calls if c.get("ok")),
        )


@dataclass(frozen=True, slots=True)
class Failure:
    turn: int  # 1-based
    said: str
    check: str
    expected: Any
    actual: Any

    def line(self) -> str:
        return (
            f"turn {self.turn} ({self.said!r}): {self.check}: expected {self.expected!r}, "
            f"got {self.actual!r}"
        )


@dataclass(slots=True)
class CaseResult:
    file: str
    name: str
    failures: list[Failure] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None


def _contains(haystack: str, needle: str) -> bool:
    return needle.lower() in haystack.lower()


def check_turn(number: int, expect: Expect, outcome: Outcome) -> list[Failure]:
    failures: list[Failure] = []

    def fail(check: str, expected: Any, actual: Any) -> None:
        failures.append(Failure(number, outcome.said, check, expected, actual))

    if expect.intent is not None and outcome.intent != expect.intent:
        fail("intent", expect.intent, outcome.intent)
    missing = [e for e in expect.entities if e not in outcome.entities]
    if missing:
        fail("entities", expect.entities, outcome.entities)
    if expect.flow != "__any__" and outcome.flow != expect.flow:
        fail("flow", expect.flow, outcome.flow)
    if expect.action is not None and outcome.action != expect.action:
        fail("action", expect.action, outcome.action)
    if expect.reason is not None and outcome.reason != expect.reason:
        fail("reason", expect.reason, outcome.reason)
    for text in expect.reply_contains:
        if not _contains(outcome.reply, text):
            fail("reply contains", text, outcome.reply)
    for text in expect.reply_not_contains:
        if _contains(outcome.reply, text):
            fail("reply does not contain", text, outcome.reply)
    if expect.citation != "__any__":
        if expect.citation is None and outcome.citations:
            fail("no citation", None, outcome.citations)
        elif expect.citation is not None and expect.citation not in outcome.citations:
            fail("citation", expect.citation, outcome.citations)
    if expect.tool_call is not None:
        wanted = expect.tool_call
        calls = [c for c in outcome.tool_calls if c.get("tool") == wanted.name]
        matching = [
            c
            for c in calls
            if bool(c.get("ok")) == wanted.ok
            and all(c.get("args", {}).get(k) == v for k, v in wanted.args.items())
        ]
        if not matching:
            fail("tool call", wanted.model_dump(), outcome.tool_calls)
    ran = [c["tool"] for c in outcome.tool_calls if c.get("ok")]
    for name in expect.no_tool_call:
        if name in ran:
            fail("no tool call", name, ran)
    if expect.handoff is not None and outcome.handoff != expect.handoff:
        fail("handoff", expect.handoff, outcome.handoff)
    if expect.handoff_reason is not None and (
        not outcome.handoff or outcome.reason != expect.handoff_reason
    ):
        fail("handoff reason", expect.handoff_reason, outcome.reason if outcome.handoff else None)
    return failures


def _database_facts(
    session: Session, fd: Frontdesk, checks: Sequence[DatabaseExpectation]
) -> list[Any]:
    facts: list[Any] = []
    for check in checks:
        if check.order is not None:
            order = shop_repo.order(session, fd.sealer, check.order)
            facts.append(order.status if order else None)
        elif check.event is not None:
            facts.append(
                session.execute(
                    select(func.count()).select_from(EventRow).where(EventRow.type == check.event)
                ).scalar_one()
            )
        else:
            facts.append(session.execute(select(func.count()).select_from(LeadRow)).scalar_one())
    return facts


def _reply_meta(session: Session, message_id: str) -> dict[str, Any]:
    meta = session.execute(select(MessageRow.meta).where(MessageRow.id == message_id)).scalar()
    return dict(meta or {})


class Workspace:
    """The scratch data every conversation of a run starts from."""

    def __init__(self, settings: Settings, embedder: Embedder, folder: Path) -> None:
        self.base = settings
        self.embedder = embedder
        self.folder = folder
        self.template = folder / "template.db"

    @classmethod
    async def prepare(
        cls,
        settings: Settings,
        embedder: Embedder,
        say: Callable[[str], None] = lambda _: None,
    ) -> Workspace:
        folder = Path(tempfile.mkdtemp(prefix="frontdesk-test-"))
        company = settings.company_dir
        intent_model = await asyncio.to_thread(_intent_model, settings, embedder, folder, say)
        scratch = settings.model_copy(
            update={
                "data_dir": folder,
                "database_url": f"sqlite+aiosqlite:///{folder / 'template.db'}",
                "intent_model": intent_model,
                "knowledge_refresh_seconds": 0,
                "secret_key": "frontdesk-test-run",
                "encryption_keys": None,
                "key_file": folder / "keys.json",
            }
        )
        fd = Frontdesk(scratch, embedder=embedder)
        await fd.start(load_knowledge=False)
        try:
            if company is not None and (company / "knowledge").is_dir():
                report = await fd.ingest(company / "knowledge")
                say(f"knowledge: {report.articles} articles, {report.chunks} chunks")
                for problem in fd.intent_article_problems():
                    say(f"notice: guidelines intents.articles names {problem}")
            accepted = settings.data_dir / "knowledge"  # accepted knowledge gaps
            if accepted.is_dir():
                report = await fd.ingest(accepted)
                say(f"accepted knowledge gaps: {report.articles} entries")
            copied = await _copy_approved_answers(settings, fd)
            if copied:
                say(f"approved answers: {copied} from the live database")
        finally:
            await fd.close()
        workspace = cls(scratch, embedder, folder)
        return workspace

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    async def run_case(
        self, path: Path, case: Conversation, texts: Sequence[str] | None = None
    ) -> CaseResult:
        """Run one conversation (with ``texts`` instead of its own words, for the
        counterfactual checks) on a fresh copy of the template database."""
        result = CaseResult(str(path), case.name)
        started = time.perf_counter()
        copy = self.folder / f"case-{time.monotonic_ns()}.db"
        shutil.copy(self.template, copy)
        settings = self.base.model_copy(update={"database_url": f"sqlite+aiosqlite:///{copy}"})
        fd = Frontdesk(settings, embedder=self.embedder)
        try:
            await fd.start()
            conversation = await do_create_conversation(fd, "test")
            for number, turn in enumerate(case.turns, start=1):
                said = texts[number - 1] if texts is not None else turn.say
                outcome = await _run_turn(fd, conversation.id, said)
                result.outcomes.append(outcome)
                result.failures += check_turn(number, turn.expect, outcome)
                if turn.expect.database:
                    result.failures += await _check_database(fd, number, said, turn.expect)
        except Exception as error:  # a crash is a failed case, with its message
            result.error = f"{type(error).__name__}: {error}"
        finally:
            await fd.close()
            copy.unlink(missing_ok=True)
            result.seconds = time.perf_counter() - started
        return result


async def _copy_approved_answers(live: Settings, fd: Frontdesk) -> int:
    """The reviewers' active approved answers of the live database, copied into the scratch
    one: they answer before the help centre, so the suite runs with them (none when the live
    database does not exist yet)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from frontdesk.adapters import crypto
    from frontdesk.adapters.store import people
    from frontdesk.adapters.store.database import Database
    from frontdesk.adapters.store.tables import ApprovedAnswerRow

    url = make_url(live.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not url.database or not await asyncio.to_thread(path.exists):
            return 0
    listed = live.encryption_keys
    try:  # the live keys open its approved answers; without them there are none to copy
        keyring = crypto.load_keyring(
            live.resolved_secret_key(),
            live.resolved_key_file,
            listed.get_secret_value() if listed else None,
            create=False,
        )
    except (crypto.KeyringError, OSError):
        return 0
    database = Database(live.resolved_database_url, keyring=keyring)
    try:
        rows = await database.run(
            lambda s: [
                {
                    "key": r.key,
                    "question": r.question,
                    "answer": r.answer,
                    "version": r.version,
                    "active": True,
                    "embedder": r.embedder,
                    "embedding": r.embedding,
                    "review_id": None,
                    "created_by": r.created_by,
                    "created_at": r.created_at,
                }
                for r in people.approved_answers(s, active_only=True)
            ]
        )
    except (SQLAlchemyError, OSError, crypto.SealError):  # older, unreachable: none
        return 0
    finally:
        await database.dispose()
    if rows:
        await fd.db.run(lambda s: s.execute(insert(ApprovedAnswerRow), rows))
    return len(rows)


async def _check_database(fd: Frontdesk, number: int, said: str, expect: Expect) -> list[Failure]:
    checks = expect.database
    facts = await fd.db.run(lambda s: _database_facts(s, fd, checks))
    failures = []
    for check, fact in zip(checks, facts, strict=True):
        wanted: str | int | None
        if check.order is not None:
            what, wanted = f"order {check.order} status", check.status
        elif check.event is not None:
            what, wanted = f"{check.event} events", check.count
        else:
            what, wanted = "leads", check.leads
        if fact != wanted:
            failures.append(Failure(number, said, what, wanted, fact))
    return failures


async def _run_turn(fd: Frontdesk, conversation_id: str, said: str) -> Outcome:
    from frontdesk.core.types import ConversationId

    turn = await do_receive_customer_message(fd, ConversationId(conversation_id), said, None)
    # What the customer is shown: their own values restored where the stored texts hold tokens.
    shown = await restore_for_customer(fd, conversation_id, [m.public() for m in turn.replies])
    reply = "\n".join(m["text"] for m in shown)
    citations = [x for m in turn.replies for c in m.citations for x in (c.id, c.title)]
    meta = await fd.db.run(lambda s: _reply_meta(s, turn.replies[-1].id)) if turn.replies else {}
    return Outcome(
        said=said,
        reply=reply,
        citations=citations,
        intent=meta.get("intent"),
        entities=[f"{e['kind']}={e['value']}" for e in meta.get("entities", [])],
        flow=meta.get("flow"),
        action=meta.get("action"),
        reason=meta.get("reason"),
        tool_calls=list(meta.get("tool_calls", [])),
        handoff=turn.handoff,
    )


def _intent_model(
    settings: Settings, embedder: Embedder, folder: Path, say: Callable[[str], None]
) -> str | None:
    """The configured intent model, copied into the workspace; or one trained now from the
    company's intents/train.csv; or none."""
    from frontdesk.learning.datasets import load_labelled
    from frontdesk.learning.registry import ModelRegistry
    from frontdesk.learning.workflow import KIND, train_intents

    target = ModelRegistry(folder / "models")
    if settings.intent_model:
        source = ModelRegistry(settings.data_dir / "models")
        if source.active_version(KIND, settings.intent_model) is not None:
            shutil.copytree(settings.data_dir / "models", folder / "models", dirs_exist_ok=True)
            say(f"intent model: {settings.intent_model} (active version)")
            return settings.intent_model
    company = settings.company_dir
    data = company / "intents" / "train.csv" if company is not None else None
    if data is not None and data.exists():
        trained = train_intents(target, embedder, load_labelled(data), SUITE_MODEL)
        say(f"intent model: trained for this run from {data} ({trained.seconds:.0f} s)")
        return SUITE_MODEL
    say("intent model: none")
    return None


def junit(results: Sequence[CaseResult], path: Path) -> None:
    """Write the results as JUnit XML (one testcase per conversation)."""
    failures = sum(1 for r in results if r.failures)
    errors = sum(1 for r in results if r.error)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="frontdesk conversations",
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for result in results:
        case = ET.SubElement(
            suite, "testcase", classname=result.file, name=result.name, time=f"{result.seconds:.3f}"
        )
        if result.error:
            ET.SubElement(case, "error", message=result.error).text = result.error
        elif result.failures:
            first = result.failures[0]
            node = ET.SubElement(case, "failure", message=first.line()[:500])
            node.text = "\n".join(f.line() for f in result.failures)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
