"""The database: engines, migrations, and transactions run as one unit of work.

Every write and read is a plain function over a SQLAlchemy ``Session`` that runs as one
transaction: ``await db.run(fn)``. The two transactions of a customer's turn use no ORM feature
and run on a Core ``Connection`` instead (``await db.run_core(fn)``): an ORM session costs
about 0.3 ms of Python per transaction on top of its statements. On SQLite the function runs
on the database's own thread with the synchronous driver, so a whole transaction costs one hop
between threads instead of one per statement, and transactions queue there instead of
colliding on SQLite's single writer lock. On PostgreSQL it runs through the async engine
(asyncpg) with ``run_sync``.

On a SQLite file, ``run_core`` transactions (the turn's, a millisecond or two each) run on the
event loop's own thread, on a connection of their own. On the database's thread every call
into SQLite (each statement, each row fetched) let go of Python's interpreter lock and then
waited to take it back from the event loop, which holds it while turns are busy, and
switched threads: under 50 concurrent conversations that handing over cost more than the
work, and one worker served about a third fewer replies a second (docs/benchmarks.md). That
connection never waits for SQLite's write lock (``busy_timeout=0``): when another transaction
holds it (a rollup, an import, an agent's action on the database's thread), the transaction is
rolled back and run again on the database's thread, where it waits its turn without stopping
the event loop. Nor does it copy the write-ahead log into the database file when it commits
(``wal_autocheckpoint=0``), which syncs the disk: the database's thread does that after every
``CHECKPOINT_EVERY`` such commits.

Each transaction runs with the database's keyring in use, which seals and opens the sealed
columns (``sealed.py``). It is set inside the function that runs on the database's thread or
inside ``run_sync``: neither an executor nor a greenlet carries context variables over.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine.url import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from frontdesk.adapters.crypto import Keyring
from frontdesk.adapters.store.sealed import keyring_in_use

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
CHECKPOINT_EVERY = 200  # commits on the event loop's connection between two WAL checkpoints
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6

T = TypeVar("T")
Work = Callable[[Session], T]
CoreWork = Callable[[Connection], T]


class UnsupportedDatabase(ValueError):
    """The URL names a database Frontdesk does not support."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Deleted rows are overwritten with zeros, so that an erased customer's data cannot be
    # read back from free pages of the file (docs/operations.md, erasure).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _inline_pragmas(dbapi_connection: Any, record: Any) -> None:
    """The event loop's connection: never waits for the write lock, never checkpoints."""
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _locked(error: OperationalError) -> bool:
    """SQLite's write lock is held by another connection (or its snapshot is stale)."""
    orig = error.orig
    return isinstance(orig, sqlite3.OperationalError) and (
        getattr(orig, "sqlite_errorcode", 0) & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    )


class Database:
    """One database, SQLite or PostgreSQL, behind one way of running transactions."""

    def __init__(self, url: str, *, keyring: Keyring | None = None) -> None:
        parsed = make_url(url)
        self.keyring = keyring
        backend = parsed.get_backend_name()
        self.url: URL = parsed
        self.dialect = backend
        self._engine: Engine | None = None
        self._async_engine: AsyncEngine | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._inline: Engine | None = None  # SQLite file: run_core on the event loop's thread
        self._inline_commits = 0
        self._checkpoint: asyncio.Future[None] | None = None
        if backend == "sqlite":
            sync_url = parsed.set(drivername="sqlite")
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self._engine = sqlalchemy.create_engine(sync_url, pool_size=1, max_overflow=0)
            event.listen(self._engine, "connect", _sqlite_pragmas)
            self._sessions = sessionmaker(self._engine, expire_on_commit=False)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
            if parsed.database and parsed.database != ":memory:":
                self._inline = sqlalchemy.create_engine(sync_url, pool_size=1, max_overflow=0)
                event.listen(self._inline, "connect", _inline_pragmas)
        elif backend == "postgresql":
            if parsed.drivername != "postgresql+asyncpg":
                parsed = parsed.set(drivername="postgresql+asyncpg")
            self._async_engine = create_async_engine(
                parsed, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
            self._async_sessions = async_sessionmaker(self._async_engine, expire_on_commit=False)
        else:
            raise UnsupportedDatabase(
                f"unsupported database {backend!r}: use sqlite:///PATH or postgresql://..."
            )

    def _transaction(self, work: Work[T]) -> T:
        with keyring_in_use(self.keyring), self._sessions() as session, session.begin():
            return work(session)

    def _core_transaction(self, work: CoreWork[T], engine: Engine | None = None) -> T:
        """``work`` in one transaction on ``engine``: the database thread's by default, or the
        event loop's (``self._inline``)."""
        engine = engine or self._engine
        assert engine is not None
        with keyring_in_use(self.keyring), engine.begin() as connection:
            return work(connection)

    def _start_checkpoint(self) -> None:
        """Copy the write-ahead log into the database file on the database's thread (PASSIVE:
        it never waits for readers or writers), unless a checkpoint is running already."""
        if self._executor is None or (self._checkpoint and not self._checkpoint.done()):
            return
        engine = self._engine
        assert engine is not None

        def checkpoint() -> None:
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

        self._checkpoint = asyncio.get_running_loop().run_in_executor(self._executor, checkpoint)

    def _core_in_greenlet(self, work: CoreWork[T]) -> CoreWork[T]:
        def run(connection: Connection) -> T:
            with keyring_in_use(self.keyring):
                return work(connection)

        return run

    def _in_greenlet(self, work: Work[T]) -> Callable[[Session], T]:
        def run(session: Session) -> T:
            with keyring_in_use(self.keyring):
                result = work(session)
                session.flush()  # the commit runs outside: write what is pending in here
                return result

        return run

    async def run(self, work: Work[T]) -> T:
        """Run ``work(session)`` as one transaction: committed if it returns, rolled back if
        it raises."""
        if self._engine is None and self._async_engine is None:
            raise RuntimeError("the database is closed")
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._transaction, work)
        async with self._async_sessions() as session, session.begin():
            return await session.run_sync(self._in_greenlet(work))

    async def run_core(self, work: CoreWork[T]) -> T:
        """Run ``work(connection)`` as one transaction on a Core connection (statements only,
        no ORM objects): committed if it returns, rolled back if it raises."""
        if self._engine is None and self._async_engine is None:
            raise RuntimeError("the database is closed")
        if self._inline is not None:
            # Let tasks already scheduled take their next step first: this transaction holds
            # the loop's thread until it commits. Among them, the encoder's task hands a
            # turn's question to its thread (do_receive_customer_message).
            await asyncio.sleep(0)
            try:
                result = self._core_transaction(work, self._inline)
            except OperationalError as error:
                if not _locked(error):
                    raise
            else:
                self._inline_commits += 1
                if self._inline_commits % CHECKPOINT_EVERY == 0:
                    self._start_checkpoint()
                return result
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._core_transaction, work)
        assert self._async_engine is not None
        async with self._async_engine.begin() as connection:
            return await connection.run_sync(self._core_in_greenlet(work))

    async def _with_connection(self, work: Callable[[Connection], T]) -> T:
        if self._executor is not None:
            engine = self._engine
            assert engine is not None

            def run() -> T:
                with engine.begin() as connection:
                    return work(connection)

            return await asyncio.get_running_loop().run_in_executor(self._executor, run)
        assert self._async_engine is not None
        async with self._async_engine.begin() as connection:
            return await connection.run_sync(work)

    async def compact(self) -> None:
        """SQLite: rewrite the file without its free pages (where deleted or rewritten values
        linger) and empty the write-ahead log. Nothing on PostgreSQL (see docs/operations.md)."""
        engine = self._engine
        if engine is None or self._executor is None:
            return

        def run() -> None:
            with engine.connect() as connection:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.exec_driver_sql("VACUUM")
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

        await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        await self._with_connection(_upgrade)

    async def schema_revision(self) -> tuple[str | None, str | None]:
        """(current revision, newest revision)."""
        return await self._with_connection(_current)

    async def dispose(self) -> None:
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
            self._checkpoint = None
        if self._inline is not None:
            self._inline.dispose()
            self._inline = None
        if self._engine is not None:
            engine = self._engine
            if self._executor is not None:
                await asyncio.get_running_loop().run_in_executor(self._executor, engine.dispose)
                self._executor.shutdown(wait=True)
                self._executor = None
            self._engine = None
        if self._async_engine is not None:
            await self._async_engine.dispose()
            self._async_engine = None


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


def _current(connection: Connection) -> tuple[str | None, str | None]:
    head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    return MigrationContext.configure(connection).get_current_revision(), head
