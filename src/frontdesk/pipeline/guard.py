"""Guard stage: the last check on every reply before a customer sees it.

Extractive answers must be a passage of the cited article, word for word (grounding); no reply
may contain a forbidden phrase from the guidelines (tone) or personal data (privacy); replies
are capped in length. A failed check replaces the reply with the fallback text and is recorded
as an intervention."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from frontdesk.company.guidelines import Guidelines
from frontdesk.pipeline import privacy
from frontdesk.pipeline.respond import Draft

MAX_REPLY_CHARS = 1500
# The kinds that no reply has a reason to show: numbers that identify or pay. Names, street
# addresses and dates are left out: replies name products and agents, a flow's prompt shows an
# example address, and a verified customer is shown the address of their own order.
REPLY_CHECK = privacy.PatternDetector(
    {
        privacy.EMAIL,
        privacy.PHONE,
        privacy.CARD,
        privacy.IBAN,
        privacy.SSN,
        privacy.IP,
        privacy.PASSPORT,
    }
)


@lru_cache(maxsize=4096)
def _recurring_spans(text: str) -> tuple[privacy.Span, ...]:
    """REPLY_CHECK's spans in a reply that recurs (a help-centre passage, an approved answer):
    the same passages answer many questions, and checking one again cost 0.1-0.5 ms. Only
    such replies are kept here: never a model's reply (each is new) nor a flow's, which can
    hold a customer's order details."""
    return tuple(REPLY_CHECK.detect(text))


@dataclass(frozen=True, slots=True)
class Guarded:
    draft: Draft
    interventions: tuple[str, ...]


def _fallback(draft: Draft, guidelines: Guidelines) -> Draft:
    return Draft(text=guidelines.texts.fallback, citations=(), handoff=draft.handoff)


def guard(
    draft: Draft,
    guidelines: Guidelines,
    max_chars: int = MAX_REPLY_CHARS,
    *,
    recurring: bool = False,
) -> Guarded:
    """``recurring``: the draft is the extractive answer or an approved answer, text that
    answers many questions word for word (its personal-data spans are remembered)."""
    interventions: list[str] = []
    if not draft.text.strip():
        interventions.append("empty")
        draft = _fallback(draft, guidelines)
    cited = draft.text if draft.cited_text is None else draft.cited_text
    if draft.citations and (
        draft.grounded_in is None or cited not in draft.grounded_in or cited not in draft.text
    ):
        interventions.append("grounding")
        draft = _fallback(draft, guidelines)
    lowered = draft.text.lower()
    if any(phrase.lower() in lowered for phrase in guidelines.forbidden_phrases):
        interventions.append("tone")
        draft = _fallback(draft, guidelines)
    # Personal data in a reply is someone's: the company's own details quoted from the cited
    # article (a returns address, a support number) are not.
    source = draft.grounded_in or ""
    spans = _recurring_spans(draft.text) if recurring else REPLY_CHECK.detect(draft.text)
    if any(span.value not in source for span in spans):
        interventions.append("pii")
        draft = _fallback(draft, guidelines)
    if len(draft.text) > max_chars:
        interventions.append("length")
        cut = draft.text[:max_chars]
        sentence_end = max(cut.rfind(". "), cut.rfind(".\n"))
        text = cut[: sentence_end + 1] if sentence_end > max_chars // 2 else cut.rstrip() + "…"
        draft = replace(draft, text=re.sub(r"\s+$", "", text))
    return Guarded(draft, tuple(interventions))
