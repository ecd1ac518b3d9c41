"""Pseudonymizing text someone typed into a conversation (a customer, an agent), in two parts:
``find`` runs before the transaction (detection, keyed digests, sealing the raw values for the
vault), ``apply`` inside it (the conversation's token numbers, the replaced text)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from frontdesk.adapters.store import repository as repo
from frontdesk.pipeline import privacy
from frontdesk.service import Frontdesk


@dataclass(frozen=True, slots=True)
class Found:
    spans: tuple[privacy.Span, ...]
    keys: tuple[tuple[str, str], ...]  # (kind, digest) per span
    vault: dict[tuple[str, str], str]  # (kind, digest) -> sealed raw value


def find(fd: Frontdesk, text: str) -> Found:
    spans = tuple(privacy.detect(text))
    keys = tuple((s.kind, privacy.digest(fd.secret, s.kind, s.value)) for s in spans)
    # The raw values go to the vault sealed: a tool that needs one (an email for a lead) opens
    # it there; nothing else ever sees it.
    vault = {key: fd.sealer.seal(s.value, "vault") for s, key in zip(spans, keys, strict=True)}
    return Found(spans, keys, vault)


def apply(session: Session, conversation_id: str, text: str, found: Found) -> privacy.Pseudonymized:
    numbers = repo.pseudonym_numbers(session, conversation_id, list(found.keys), found.vault)
    tokens = {
        span: privacy.token(span.kind, numbers[key])
        for span, key in zip(found.spans, found.keys, strict=True)
    }
    return privacy.replace(text, found.spans, tokens)
