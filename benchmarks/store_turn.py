"""The Python cost of a turn's two transactions, on an ORM session and on a Core connection.

    .venv/bin/python benchmarks/store_turn.py [--turns 2000] [--history 3]

A customer's turn writes twice (``actions/conversations.py``): transaction 1 takes a message
number, stores the message and its event and reads the recent turns; transaction 2 takes a
number with the carried state, stores the reply and its events. This runs the same repository
functions both ways on a fresh SQLite file, in this thread (no event loop), and prints the CPU
time per turn: ``Database.run`` gives them an ORM ``Session``, ``Database.run_core`` (what a
turn uses) a Core ``Connection``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frontdesk.adapters.crypto import Keyring
from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store.database import Database
from frontdesk.core.types import Role


def turns(db: Database, how: str, count: int, history: int) -> float:
    """CPU milliseconds per turn."""
    # SQLite: the transactions that db.run and db.run_core hand to the database's thread,
    # run in this thread instead.
    run: Callable[[Callable[[Any], Any]], Any] = (
        db._transaction if how == "session" else db._core_transaction
    )

    conversation = run(lambda h: repo.create_conversation(h, "web"))

    def receive(handle: Any) -> None:
        _, seq = repo.claim_seq(handle, conversation.id)
        repo.insert_message(handle, conversation.id, seq, Role.CUSTOMER, "where is my parcel?")
        repo.append_event(handle, "message_received", {"seq": seq, "pii": []}, conversation.id)
        repo.recent_messages(handle, conversation.id, history)

    def store_reply(handle: Any) -> None:
        _, seq = repo.claim_seq(handle, conversation.id, state={"low_confidence_streak": 0})
        repo.insert_message(
            handle, conversation.id, seq, Role.BOT, "It is on its way.", meta={"action": "answer"}
        )
        repo.append_events(handle, [("reply_sent", {"seq": seq})], conversation.id)

    for _ in range(200):  # warm the statement caches
        run(receive)
        run(store_reply)
    started = time.process_time()
    for _ in range(count):
        run(receive)
        run(store_reply)
    return (time.process_time() - started) * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=2000, help="turns timed each way")
    parser.add_argument("--history", type=int, default=3, help="recent messages read back")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Database(
            f"sqlite:///{Path(folder) / 'store.db'}", keyring=Keyring({"k": b"k" * 32}, "k")
        )
        asyncio.run(db.migrate())
        results = {how: turns(db, how, args.turns, args.history) for how in ("session", "core")}
        results["session again"] = turns(db, "session", args.turns, args.history)
        results["core again"] = turns(db, "core", args.turns, args.history)
        asyncio.run(db.dispose())
    print(f"CPU per turn, two transactions ({args.turns} turns, SQLite):")
    for how, ms in results.items():
        print(f"  {how:14s} {ms:.3f} ms")


if __name__ == "__main__":
    main()
