"""Engine creation and migrations, applied on start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL mode, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite has one writer at a time, and writers that collide back off
        # by sleeping. Queuing transactions in the pool instead keeps latency flat under load.
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    return create_async_engine(url, poolclass=NullPool)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


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


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def schema_revision(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """(current revision, newest revision)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)
