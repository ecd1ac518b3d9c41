"""Sealed columns: what customers typed is encrypted in the database, transparently.

A column typed ``SealedText(label)`` or ``SealedJSON(label)`` is sealed when written and opened
when read, with the keyring of the transaction that runs the statement: ``Database.run`` puts
its keyring in a context variable for the length of each transaction. Statements outside such
a transaction cannot read or write these columns (and say so). Sealing uses a random nonce, so
SQL can neither compare nor search these columns: filter in Python after reading.

A sealed JSON column holds a JSON string, ``"<key id>:<base64>"``, so its column type stays
JSON on every database. A few columns are sealed by their own code instead (``info={"sealed":
label}``: the vault, the store's profiles and addresses, leads' contacts).

Below the types: raw access to every sealed column, with no keyring involved, for the keys
commands (counting values per key, re-sealing under the active key) and for the start-up step
that seals values written in clear before a column was sealed (listed in ``sealing_pending`` by
the migration that sealed it). Every raw write is a compare-and-set: a row is only changed if
its value is still the one read, so a concurrent write by a running service is never lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    CursorResult,
    Text,
    TypeDecorator,
    and_,
    bindparam,
    column,
    delete,
    func,
    select,
    table,
    tuple_,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import TableClause

from frontdesk.adapters.crypto import Keyring, SealError

log = logging.getLogger("frontdesk")

_KEYRING: ContextVar[Keyring | None] = ContextVar("frontdesk_keyring", default=None)


@contextmanager
def keyring_in_use(keyring: Keyring | None) -> Iterator[None]:
    """Seal and open the sealed columns with ``keyring`` inside this block."""
    token = _KEYRING.set(keyring)
    try:
        yield
    finally:
        _KEYRING.reset(token)


def current_keyring() -> Keyring:
    keyring = _KEYRING.get()
    if keyring is None:
        raise SealError(
            "a sealed column was read or written outside a transaction of a database opened "
            "with a keyring: use Database(url, keyring=...).run(...)"
        )
    return keyring


class SealedText(TypeDecorator[str]):
    """Text, sealed under the label (table.column) with the transaction's keyring."""

    impl = Text
    cache_ok = True

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else current_keyring().seal(value, self.label)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else current_keyring().open(value, self.label)


class SealedJSON(TypeDecorator[Any]):
    """A JSON value, stored as the JSON string of its sealed text."""

    impl = JSON
    cache_ok = True

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return current_keyring().seal(json.dumps(value, separators=(",", ":")), self.label)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise SealError(f"{self.label}: the value is not sealed (plain JSON)")
        return current_keyring().open_json(value, self.label)


# --- every sealed column, raw ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealedColumn:
    table: str
    column: str
    label: str
    json: bool  # stored as a JSON string
    primary_key: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


@cache
def sealed_columns() -> tuple[SealedColumn, ...]:
    """Every sealed column of the schema: typed ``Sealed*`` or marked ``info["sealed"]``."""
    from frontdesk.adapters.store.tables import Base

    found = []
    for table_ in Base.metadata.sorted_tables:
        keys = tuple(c.name for c in table_.primary_key.columns)
        for col in table_.columns:
            if isinstance(col.type, SealedText | SealedJSON):
                label, is_json = col.type.label, isinstance(col.type, SealedJSON)
            elif "sealed" in col.info:
                label, is_json = str(col.info["sealed"]), False
            else:
                continue
            found.append(SealedColumn(table_.name, col.name, label, is_json, keys))
    return tuple(found)


def column_named(name: str) -> SealedColumn:
    for sealed in sealed_columns():
        if sealed.name == name:
            return sealed
    raise KeyError(name)


def _clause(sealed: SealedColumn) -> tuple[TableClause, ColumnElement[Any], list[Any]]:
    """The table without types (values as stored), its raw value as text, its key columns."""
    names = (*sealed.primary_key, sealed.column)
    clause = table(sealed.table, *(column(n) for n in dict.fromkeys(names)))
    value = clause.c[sealed.column]
    raw = sql_cast(value, Text) if sealed.json else value
    return clause, raw, [clause.c[n] for n in sealed.primary_key]


def _present(sealed: SealedColumn, raw: ColumnElement[Any]) -> ColumnElement[bool]:
    """Rows that hold a value (JSON columns store None as the JSON null)."""
    if sealed.json:
        return and_(raw.is_not(None), raw != "null")
    return raw.is_not(None)


def prefix(sealed: SealedColumn, key_id: str) -> str:
    """How a value sealed under ``key_id`` starts, as stored (key ids have no LIKE wildcard)."""
    return ('"' if sealed.json else "") + key_id + ":"


def count_by_key(session: Session, sealed: SealedColumn, key_ids: Sequence[str]) -> dict[str, int]:
    """How many values each key seals; ``""``: values under no key of ``key_ids`` (another
    key, or not sealed)."""
    clause, raw, _ = _clause(sealed)
    total = session.execute(
        select(func.count()).select_from(clause).where(_present(sealed, raw))
    ).scalar_one()
    counts = {
        key_id: int(
            session.execute(
                select(func.count())
                .select_from(clause)
                .where(raw.like(prefix(sealed, key_id) + "%"))
            ).scalar_one()
        )
        for key_id in key_ids
    }
    counts[""] = int(total) - sum(counts.values())
    return counts


def count_not_under(session: Session, sealed: SealedColumn, key_id: str) -> int:
    """How many values are not sealed under ``key_id``."""
    clause, raw, _ = _clause(sealed)
    return int(
        session.execute(
            select(func.count())
            .select_from(clause)
            .where(_present(sealed, raw), raw.not_like(prefix(sealed, key_id) + "%"))
        ).scalar_one()
    )


def sampled_key_ids(session: Session) -> dict[str, list[str]]:
    """The keys named by the first and the last value of each sealed column (a cheap check
    that the database goes with the keys): key id -> columns."""
    found: dict[str, list[str]] = {}
    for sealed in sealed_columns():
        clause, raw, keys = _clause(sealed)
        for order in (keys, [k.desc() for k in keys]):
            value = session.execute(
                select(raw)
                .select_from(clause)
                .where(_present(sealed, raw))
                .order_by(*order)
                .limit(1)
            ).scalar()
            if value is None:
                break
            if sealed.json:
                with contextlib.suppress(json.JSONDecodeError):
                    value = json.loads(value)
            key_id = Keyring.key_of(value) if isinstance(value, str) else None
            if key_id is not None and sealed.name not in found.setdefault(key_id, []):
                found[key_id].append(sealed.name)
    return found


Row = tuple[tuple[Any, ...], str]


def read_batch(
    session: Session,
    sealed: SealedColumn,
    after: tuple[Any, ...] | None,
    limit: int,
    *,
    not_under: str | None = None,
) -> list[Row]:
    """Up to ``limit`` (primary key, raw value) pairs after ``after``, in key order; with
    ``not_under``, only values not sealed under that key."""
    clause, raw, keys = _clause(sealed)
    query = select(*keys, raw).select_from(clause).where(_present(sealed, raw))
    if not_under is not None:
        query = query.where(raw.not_like(prefix(sealed, not_under) + "%"))
    if after is not None:
        query = query.where(
            keys[0] > after[0] if len(keys) == 1 else tuple_(*keys) > tuple_(*after)
        )
    rows = session.execute(query.order_by(*keys).limit(limit)).tuples()
    return [(tuple(row[:-1]), str(row[-1])) for row in rows]


def compare_and_set(
    session: Session, sealed: SealedColumn, key: tuple[Any, ...], old: str, new: str
) -> bool:
    """Write ``new`` (raw) where the row still holds ``old``. True if it did."""
    clause, raw, keys = _clause(sealed)
    value: Any = bindparam("new", new, type_=Text)
    if sealed.json and session.get_bind().dialect.name == "postgresql":
        value = sql_cast(value, JSON)
    statement = (
        update(clause)
        .where(*(k == v for k, v in zip(keys, key, strict=True)), raw == old)
        .values({sealed.column: value})
    )
    return cast("CursorResult[Any]", session.execute(statement)).rowcount == 1


def open_raw(keyring: Keyring, sealed: SealedColumn, raw: str) -> str:
    """The plain text of a raw sealed value (SealError if it does not open)."""
    if sealed.json:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as error:
            raise SealError(f"{sealed.name}: not JSON") from error
        if not isinstance(value, str):
            raise SealError(f"{sealed.name}: the value is not sealed (plain JSON)")
        return keyring.open(value, sealed.label)
    return keyring.open(raw, sealed.label)


def seal_raw(keyring: Keyring, sealed: SealedColumn, plain: str) -> str:
    """A plain text sealed under the active key, as the column stores it."""
    value = keyring.seal(plain, sealed.label)
    return json.dumps(value) if sealed.json else value


def reseal(keyring: Keyring, sealed: SealedColumn, raw: str) -> str:
    """A raw value sealed under any key of the ring, sealed again under the active key."""
    return seal_raw(keyring, sealed, open_raw(keyring, sealed, raw))


def seal_if_plain(keyring: Keyring, sealed: SealedColumn, raw: str) -> str | None:
    """The sealed form of a value written in clear; None when it is sealed already (also
    under a key the ring lacks: sealing it again would hide that key's loss)."""
    value = json.loads(raw) if sealed.json else raw
    if isinstance(value, str) and keyring.looks_sealed(value):
        try:
            keyring.open(value, sealed.label)
            return None
        except SealError:
            if not keyring.holds(keyring.key_of(value) or ""):
                log.warning("%s holds a value sealed under a key this service lacks", sealed.name)
                return None
    if sealed.json:
        return seal_raw(keyring, sealed, json.dumps(value, separators=(",", ":")))
    return seal_raw(keyring, sealed, raw)


# --- columns sealed after values were written in clear --------------------------------------

PENDING = table("sealing_pending", column("table_name"), column("column_name"))


def pending(session: Session) -> list[SealedColumn]:
    """The sealed columns that may still hold values written in clear."""
    rows = session.execute(select(PENDING.c.table_name, PENDING.c.column_name)).tuples()
    known = {(s.table, s.column): s for s in sealed_columns()}
    return [known[(t, c)] for t, c in rows if (t, c) in known]


def mark_sealed(session: Session, sealed: SealedColumn) -> None:
    session.execute(
        delete(PENDING).where(
            PENDING.c.table_name == sealed.table, PENDING.c.column_name == sealed.column
        )
    )
