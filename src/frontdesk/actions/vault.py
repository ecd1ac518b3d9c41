"""The vault behind the tokens: the only way back from ``<EMAIL_1>`` to the value.

Three readers, and no others:
- a tool call that needs a raw value (an email to look a customer up, the address to ship to)
  opens the tokens in its arguments inside the call (``open_tokens``); what is recorded of the
  call keeps the tokens;
- delivery to the customer restores their own values in what they are shown
  (``restore_for_customer``): the customer sees the email they typed, not ``<EMAIL_1>``;
- an agent with permission reveals a conversation's values in the console, and each reveal is
  audited (``frontdesk.actions.console.reveal``).

A token is only ever opened within its own conversation: ``<EMAIL_1>`` of one conversation
names nothing in another.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from frontdesk.adapters.crypto import SealError
from frontdesk.adapters.store import repository as repo
from frontdesk.pipeline import privacy
from frontdesk.service import Frontdesk

T = TypeVar("T")
VAULT_LABEL = "vault"


def tokens_in(text: str) -> set[tuple[str, int]]:
    return {(m.group(1), int(m.group(2))) for m in privacy.TOKEN_RE.finditer(text)}


def _substitute(text: str, values: Mapping[tuple[str, int], str]) -> str:
    def one(match: re.Match[str]) -> str:
        return values.get((match.group(1), int(match.group(2))), match.group())

    return privacy.TOKEN_RE.sub(one, text)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    return []


def _replace_all(value: Any, values: Mapping[tuple[str, int], str]) -> Any:
    if isinstance(value, str):
        return _substitute(value, values)
    if isinstance(value, Mapping):
        return {key: _replace_all(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_all(item, values) for item in value]
    if isinstance(value, tuple):
        return tuple(_replace_all(item, values) for item in value)
    return value


def opened(
    session: Session, fd: Frontdesk, conversation_id: str, wanted: set[tuple[str, int]]
) -> dict[tuple[str, int], str]:
    """The raw values behind ``wanted`` tokens of one conversation. A token with no vault
    entry (unknown, or its value purged by retention) stays a token."""
    if not wanted:
        return {}
    sealed = repo.vault_entries(session, conversation_id)
    values: dict[tuple[str, int], str] = {}
    for key in wanted:
        entry = sealed.get(key)
        if entry is None:
            continue
        try:
            values[key] = fd.sealer.open(entry, VAULT_LABEL)
        except SealError:
            continue
    return values


def open_tokens(session: Session, fd: Frontdesk, conversation_id: str, value: T) -> T:
    """``value`` (a string, or dicts and lists of them) with every token of the conversation
    replaced by its raw value: for a tool call, inside its transaction."""
    wanted = {key for text in _strings(value) for key in tokens_in(text)}
    if not wanted:
        return value
    result: T = _replace_all(value, opened(session, fd, conversation_id, wanted))
    return result


async def restore_for_customer(
    fd: Frontdesk, conversation_id: str, messages: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Public messages as their customer is shown them: their own values instead of tokens.
    Costs nothing when no message holds a token."""
    wanted = {key for m in messages for key in tokens_in(str(m.get("text") or ""))}
    if not wanted:
        return list(messages)
    values = await fd.db.run(lambda s: opened(s, fd, conversation_id, wanted))
    return [
        {**m, "text": _substitute(m["text"], values)} if m.get("text") else dict(m)
        for m in messages
    ]


def reveal_values(session: Session, fd: Frontdesk, conversation_id: str) -> dict[str, str]:
    """Every token of the conversation with its raw value (for an authorised agent)."""
    values = opened(session, fd, conversation_id, set(repo.vault_entries(session, conversation_id)))
    return {privacy.token(kind, number): value for (kind, number), value in values.items()}
