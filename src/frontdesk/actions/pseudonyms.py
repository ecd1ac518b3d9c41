"""Pseudonymizing text someone typed into a conversation (a customer, an agent), in two parts:
``find`` runs before the transaction (detection, keyed digests, sealing the raw values for the
vault), ``apply`` inside it (the conversation's token numbers, the replaced text)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from frontdesk.adapters.store import repository as repo
from frontdesk.pipeline import privacy
from frontdesk.service import Frontdesk


@dataclass(frozen=True, slots=True)
class Found:
    spans: tuple[privacy.Span, ...]
    keys: tuple[tuple[str, str], ...]  # (kind, digest) per span
    vault: dict[tuple[str, str], str]  # (kind, digest) -> sealed raw value


def find(fd: Frontdesk, text: str, own_name: str = "") -> Found:
    """``own_name``: the writer's own name (an agent introducing themself), which is not
    taken for personal data to hide."""
    own = _words(own_name)
    spans = tuple(
        span
        for span in privacy.in_context(text, fd.detector.detect(text))
        if not (own and span.kind == privacy.PERSON and _words(span.value) <= own)
    )
    keys = tuple((s.kind, privacy.digest(fd.secret, s.kind, s.value)) for s in spans)
    # The raw values go to the vault sealed: a tool that needs one (an email for a lead) opens
    # it there; nothing else ever sees it.
    vault = {key: fd.sealer.seal(s.value, "vault") for s, key in zip(spans, keys, strict=True)}
    return Found(spans, keys, vault)


_BARE_NAME = re.compile(r"[^\W\d_][\w'’-]*(?:\s+[^\W\d_][\w'’-]*){0,3}")


def could_be_name(text: str) -> bool:
    """One to four words and nothing else: the shape of a bare name."""
    return _BARE_NAME.fullmatch(text.strip(" .!\t\n")) is not None


def answering(fd: Frontdesk, text: str, found: Found, slot_type: str | None) -> Found:
    """``found``, plus the whole message as a PERSON when it answers "What's your name?" with
    a bare name ("Dana Fox"): no cue word says it is one, the question does."""
    if slot_type != "person_name" or any(s.kind == privacy.PERSON for s in found.spans):
        return found
    stripped = text.strip(" .!\t\n")
    start = text.find(stripped)
    if (
        not could_be_name(stripped)
        or _words(stripped) & (privacy.NOT_NAMES | privacy.SHOP_WORDS)
        or any(start < s.end and s.start < start + len(stripped) for s in found.spans)
    ):
        return found
    span = privacy.Span(privacy.PERSON, start, start + len(stripped), stripped)
    key = (span.kind, privacy.digest(fd.secret, span.kind, span.value))
    pairs = sorted(
        [*zip(found.spans, found.keys, strict=True), (span, key)], key=lambda p: p[0].start
    )
    return Found(
        tuple(p[0] for p in pairs),
        tuple(p[1] for p in pairs),
        {**found.vault, key: fd.sealer.seal(span.value, "vault")},
    )


def _words(value: str) -> set[str]:
    return {word.casefold() for word in value.split()}


def apply(
    session: repo.Handle, conversation_id: str, text: str, found: Found
) -> privacy.Pseudonymized:
    numbers = repo.pseudonym_numbers(session, conversation_id, list(found.keys), found.vault)
    tokens = {
        span: privacy.token(span.kind, numbers[key])
        for span, key in zip(found.spans, found.keys, strict=True)
    }
    return privacy.replace(text, found.spans, tokens)
