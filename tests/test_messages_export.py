"""`frontdesk export messages`: the customers' messages, pseudonymized, as the unlabelled file
that `frontdesk train intents --unlabelled` reads; through the real service and its CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import ServiceCli, open_conversation, say

from frontdesk.adapters.store.tables import MessageRow
from frontdesk.learning.datasets import load_unlabelled
from frontdesk.learning.finetune import ExportError
from frontdesk.learning.messages import NoMessages, export_messages
from frontdesk.service import Frontdesk


def rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


async def test_that_the_customers_distinct_messages_are_exported_pseudonymized(
    frontdesk: Frontdesk, customer: httpx.AsyncClient, tmp_path: Path
) -> None:
    out = tmp_path / "messages.csv"
    with pytest.raises(NoMessages, match="no customer message to export"):
        await export_messages(frontdesk, out)
    assert not out.exists()

    first = await open_conversation(customer)
    await say(customer, first, "do you ship to Canada?")
    await say(customer, first, "my email is jane.doe@example.com, where is my order?")
    second = await open_conversation(customer)
    await say(customer, second, "Do you ship to  canada?")  # the same, typed differently
    await say(customer, second, "how long do refunds take?")

    # A raw value that reached the database anyway (as data stored before a detector change).
    def plant(session: Any) -> None:
        row = (
            session.execute(
                select(MessageRow)
                .where(MessageRow.conversation_id == second, MessageRow.role == "customer")
                .order_by(MessageRow.seq)
            )
            .scalars()
            .all()[-1]
        )
        row.text = "how long do refunds take? call me on 415-555-0134"

    await frontdesk.db.run(plant)
    report = await export_messages(frontdesk, out)
    table = rows(out)
    assert table[0] == ["text"]
    texts = [row[0] for row in table[1:]]
    assert texts == [
        "do you ship to Canada?",
        "my email is <EMAIL_1>, where is my order?",
        "how long do refunds take? call me on <PHONE>",
    ]
    assert report.public() == {
        "messages": 4,
        "written": 3,
        "duplicates": 1,
        "placeholders": {"PHONE": 1},
        "file": str(out),
    }
    assert out.stat().st_mode & 0o777 == 0o600
    assert "jane" not in out.read_text(encoding="utf-8")
    assert load_unlabelled(out).texts == tuple(texts)  # what --unlabelled reads

    with pytest.raises(ExportError, match="is a folder"):
        await export_messages(frontdesk, tmp_path)
    with pytest.raises(ExportError, match="more than 0 days"):
        await export_messages(frontdesk, out, since_days=0)


async def test_the_command_line_writes_the_file_and_refuses_bad_places(
    customer: httpx.AsyncClient, service_cli: ServiceCli, tmp_path: Path
) -> None:
    async def cli(*args: str) -> Any:
        return await service_cli("export", "messages", *args)

    out = tmp_path / "m.csv"
    empty = await cli("--out", str(out))
    assert empty.exit_code == 1 and "no customer message to export" in empty.output
    cid = await open_conversation(customer)
    await say(customer, cid, "can I return shoes I wore once?")
    done = await cli("--out", str(out), "--since", "1")
    assert done.exit_code == 0, done.output
    assert f"wrote 1 distinct messages of 1 to {out}" in " ".join(done.output.split())
    assert rows(out) == [["text"], ["can I return shoes I wore once?"]]
    as_json = await cli("--out", str(out), "--json")
    assert json.loads(as_json.stdout)["written"] == 1
    folder = await cli("--out", str(tmp_path))
    assert folder.exit_code == 1 and "is a folder" in folder.output
    nowhere = await cli("--out", str(tmp_path / "no" / "m.csv"))
    assert nowhere.exit_code == 1 and "is not a folder" in nowhere.output
