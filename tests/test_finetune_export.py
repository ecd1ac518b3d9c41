"""`frontdesk export finetune`: OpenAI chat fine-tuning JSONL from the bot replies reviewers
approved or corrected, through the real service, its API and its command line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import Login, ServiceCli, open_conversation, say

from frontdesk.adapters.store import people
from frontdesk.adapters.store.data_rights import purge_conversation_texts
from frontdesk.adapters.store.tables import UserRow
from frontdesk.learning import finetune
from frontdesk.learning.finetune import NothingToExport, export_finetune
from frontdesk.pipeline.prompt import system_prompt
from frontdesk.service import Frontdesk

CORRECTION = "We don't price match, but we do run seasonal sales."


def read(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def check_shape(example: dict[str, Any], fd: Frontdesk) -> list[dict[str, str]]:
    assert list(example) == ["messages"]
    messages: list[dict[str, str]] = example["messages"]
    assert all(set(m) == {"role", "content"} for m in messages)
    assert {m["role"] for m in messages} <= {"system", "user", "assistant"}
    # The instructions and the knowledge the reply was given, in one system message as a
    # served request has them; then the turns only.
    system = messages[0]["content"]
    assert messages[0]["role"] == "system" and system.startswith(system_prompt(fd.guidelines))
    assert "\n\nKnowledge passages" in system
    assert [m["role"] for m in messages[1:]].count("system") == 0
    assert messages[-2]["role"] == "user" and messages[-1]["role"] == "assistant"
    return messages


async def review(
    rita: httpx.AsyncClient, message_id: str, rating: str, correction: str | None = None
) -> None:
    body: dict[str, Any] = {"message_id": message_id, "rating": rating}
    if correction is not None:
        body["correction"] = correction
    saved = await rita.post("/api/console/reviews", json=body)
    assert saved.status_code == 201, saved.text


async def first_reply(customer: httpx.AsyncClient, cid: str, text: str) -> dict[str, Any]:
    reply: dict[str, Any] = (await say(customer, cid, text))["replies"][0]
    return reply


async def test_that_approved_and_corrected_replies_are_exported_and_nothing_else(
    frontdesk: Frontdesk, login: Login, customer: httpx.AsyncClient, tmp_path: Path
) -> None:
    rita = await login("rita@example.com")
    cid = await open_conversation(customer)
    shipping = await first_reply(customer, cid, "do you ship to Canada?")
    price = await first_reply(customer, cid, "do you price match other stores?")
    await review(rita, shipping["id"], "good")
    await review(rita, price["id"], "wrong", CORRECTION)

    unreviewed = await open_conversation(customer)
    await first_reply(customer, unreviewed, "what is your return policy?")
    outdated = await open_conversation(customer)
    stale = await first_reply(customer, outdated, "how long does delivery take?")
    await review(rita, stale["id"], "outdated")  # no correction: nothing to learn from
    legacy = await open_conversation(customer)
    wrong = await first_reply(customer, legacy, "can I pay with a gift card?")

    def add_wrong_without_correction(session: Any) -> None:
        reviewer = session.execute(select(UserRow.id).where(UserRow.role == "reviewer"))
        people.add_review(session, wrong["id"], legacy, reviewer.scalar_one(), "wrong", None)

    await frontdesk.db.run(add_wrong_without_correction)
    purged = await open_conversation(customer)
    await review(rita, (await first_reply(customer, purged, "do you sell tents?"))["id"], "good")
    await frontdesk.db.run(lambda s: purge_conversation_texts(s, [purged]))  # retention

    report = await export_finetune(frontdesk, tmp_path / "out", validation=0)
    assert (report.examples, report.approved, report.corrected) == (2, 1, 1)
    assert (report.conversations, report.train, report.validation) == (1, 2, 0)
    assert report.skipped == {
        "message_erased": 1,
        "not_a_bot_reply": 0,
        "no_customer_message": 0,
        "no_correction": 2,
    }
    assert (tmp_path / "out" / "validation.jsonl").read_text(encoding="utf-8") == ""
    first, second = (check_shape(e, frontdesk) for e in read(tmp_path / "out" / "train.jsonl"))
    assert "[international-orders-and-customs]" in first[0]["content"]  # the turn's passages
    assert first[1:] == [
        {"role": "user", "content": "do you ship to Canada?"},
        {"role": "assistant", "content": shipping["text"]},
    ]
    # The earlier turns come before the customer's message; the correction is the answer.
    assert second[1:] == [
        {"role": "user", "content": "do you ship to Canada?"},
        {"role": "assistant", "content": shipping["text"]},
        {"role": "user", "content": "do you price match other stores?"},
        {"role": "assistant", "content": CORRECTION},
    ]
    said = " ".join(m["content"] for m in first + second if m["role"] != "system")
    for left_out in ("return policy", "delivery take", "gift card", "tents"):
        assert left_out not in said

    # --history bounds the earlier turns; 0 keeps only the question and its answer.
    short = await export_finetune(frontdesk, tmp_path / "short", validation=0, history=0)
    assert short.examples == 2
    last = read(tmp_path / "short" / "train.jsonl")[1]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant"]
    assert last[-1]["content"] == CORRECTION


async def test_that_personal_data_leaves_only_as_tokens_or_placeholders(
    frontdesk: Frontdesk, login: Login, customer: httpx.AsyncClient, tmp_path: Path
) -> None:
    rita = await login("rita@example.com")
    cid = await open_conversation(customer)
    asked = await first_reply(
        customer,
        cid,
        "Hi, my name is Dana Whitfield and my email is dana.whitfield@example.com. "
        "Do you ship to Canada?",
    )
    followed = await first_reply(customer, cid, "and do you price match other stores?")
    await review(rita, asked["id"], "good")
    # A reviewer types the customer's real address into the correction: the console refuses
    # it now; a review stored before that check (written here directly) is the export's case.
    raw = "No price matching, but we sent the details to dana.whitfield@example.com."
    refused = await rita.post(
        "/api/console/reviews",
        json={"message_id": followed["id"], "rating": "incomplete", "correction": raw},
    )
    assert refused.status_code == 422
    rita_id = await frontdesk.db.run(
        lambda s: s.execute(select(UserRow.id).where(UserRow.name == "Rita")).scalar_one()
    )
    await frontdesk.db.run(
        lambda s: people.add_review(s, followed["id"], cid, rita_id, "incomplete", raw)
    )

    report = await export_finetune(frontdesk, tmp_path / "out", validation=0)
    assert report.examples == 2 and report.corrected == 1
    assert report.placeholders.get("EMAIL") == 1
    text = (tmp_path / "out" / "train.jsonl").read_text(encoding="utf-8")
    for raw in ("dana.whitfield@example.com", "Whitfield", "Dana"):
        assert raw not in text
    examples = [check_shape(e, frontdesk) for e in read(tmp_path / "out" / "train.jsonl")]
    question = examples[0][-2]["content"]
    assert "<EMAIL_1>" in question and "<PERSON_1>" in question
    assert examples[1][-1]["content"] == ("No price matching, but we sent the details to <EMAIL>.")


QUESTIONS = [
    ("do you ship to Canada?", "do you price match other stores?"),
    ("what is your return policy?", "can I pay with a gift card?"),
    ("how long does delivery take?", "do you have a store in Chicago?"),
    ("can I exchange a jacket for another size?", "what are your opening hours?"),
    ("do you sell gift cards?", "is shipping free over 75 dollars?"),
    ("how do I track my order?", "do you offer student discounts?"),
]


async def test_that_the_split_keeps_conversations_together_and_is_reproducible(
    frontdesk: Frontdesk, login: Login, customer: httpx.AsyncClient, tmp_path: Path
) -> None:
    rita = await login("rita@example.com")
    conversation_of: dict[str, int] = {}
    for index, pair in enumerate(QUESTIONS):
        cid = await open_conversation(customer)
        for question in pair:
            await review(rita, (await first_reply(customer, cid, question))["id"], "good")
            conversation_of[question] = index

    def assignment(folder: Path) -> dict[str, set[int]]:
        return {
            name: {
                conversation_of[e["messages"][-2]["content"]]
                for e in read(folder / f"{name}.jsonl")
            }
            for name in ("train", "validation")
        }

    one = await export_finetune(frontdesk, tmp_path / "a", validation=0.5, seed=7)
    again = await export_finetune(frontdesk, tmp_path / "b", validation=0.5, seed=7)
    assert (one.examples, one.conversations) == (12, 6)
    assert (one.validation_conversations, one.train_conversations) == (3, 3)
    assert (one.train, one.validation) == (6, 6)
    for name in ("train.jsonl", "validation.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    split = assignment(tmp_path / "a")
    assert split["train"].isdisjoint(split["validation"])
    assert split["train"] | split["validation"] == set(range(6))
    assert again.public() | {"files": {}} == one.public() | {"files": {}}

    seen = set()
    for seed in range(8):
        await export_finetune(frontdesk, tmp_path / f"s{seed}", validation=0.5, seed=seed)
        seen.add(frozenset(assignment(tmp_path / f"s{seed}")["validation"]))
    assert len(seen) > 1  # the seed decides


def test_the_split_rules() -> None:
    ids = [f"c{i}" for i in range(10)]
    assert finetune.split(ids, 0, 0) == set()
    assert len(finetune.split(ids, 0.1, 0)) == 1
    assert len(finetune.split(ids, 0.01, 0)) == 1  # a fraction above 0 holds one out
    assert len(finetune.split(["only"], 0.5, 0)) == 0  # never every conversation
    assert finetune.split(ids, 0.3, 3) == finetune.split(list(reversed(ids)), 0.3, 3)
    with pytest.raises(finetune.ExportError):
        finetune.split(ids, 1.0, 0)


def test_that_a_failed_write_leaves_no_half_written_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "train.jsonl").write_text("old\n", encoding="utf-8")
    calls = 0
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk full")
        real_fsync(fd)

    monkeypatch.setattr(finetune.os, "fsync", failing_fsync)
    files = {tmp_path / "train.jsonl": "new\n", tmp_path / "validation.jsonl": "new\n"}
    with pytest.raises(OSError, match="disk full"):
        finetune.write_atomically(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]
    assert (tmp_path / "train.jsonl").read_text(encoding="utf-8") == "old\n"


async def test_the_command_line_reports_and_fails_when_there_is_nothing_to_export(
    frontdesk: Frontdesk,
    login: Login,
    customer: httpx.AsyncClient,
    service_cli: ServiceCli,
    tmp_path: Path,
) -> None:
    async def cli(*args: str) -> Any:
        return await service_cli("export", "finetune", *args)

    out = tmp_path / "finetune"
    cid = await open_conversation(customer)
    reply = await first_reply(customer, cid, "do you ship to Canada?")
    empty = await cli("--out", str(out))
    assert empty.exit_code == 1, empty.output
    assert "nothing to export" in empty.output
    assert not out.exists()
    with pytest.raises(NothingToExport):
        await export_finetune(frontdesk, out)

    await review(await login("rita@example.com"), reply["id"], "good")
    as_json = await cli("--out", str(out), "--json")
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert (report["examples"], report["approved"], report["train"]) == (1, 1, 1)
    assert report["validation"] == 0 and report["skipped_total"] == 0
    assert report["files"]["train"] == str(out / "train.jsonl")
    (example,) = read(out / "train.jsonl")
    assert check_shape(example, frontdesk)[-1]["content"] == reply["text"]

    table = await cli("--out", str(tmp_path / "table"), "--history", "2", "--seed", "3")
    assert table.exit_code == 0, table.output
    assert "examples" in table.stdout and "approved (rated good)" in table.stdout
    assert (tmp_path / "table" / "train.jsonl").exists()

    a_file = tmp_path / "a-file"
    a_file.write_text("", encoding="utf-8")
    refused = await cli("--out", str(a_file))
    assert refused.exit_code == 1 and "is a file" in refused.output
    bad = await cli("--out", str(out), "--validation", "1")
    assert bad.exit_code == 2
