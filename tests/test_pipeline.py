"""The decide and guard stages on their own (typed input, typed output)."""

from __future__ import annotations

from dataclasses import replace

from frontdesk.company.guidelines import Guidelines, parse_guidelines
from frontdesk.core.types import (
    ArticleId,
    ChunkId,
    Citation,
    Conversation,
    ConversationId,
    Mode,
    Passage,
    Status,
    utcnow,
)
from frontdesk.pipeline.context import Context
from frontdesk.pipeline.decide import Action, decide
from frontdesk.pipeline.guard import guard
from frontdesk.pipeline.respond import Draft, respond
from frontdesk.pipeline.understand import understand

GUIDELINES = Guidelines()
PASSAGE = Passage(
    chunk_id=ChunkId("refunds#0"),
    article_id=ArticleId("refunds"),
    title="Refunds",
    text="Refunds take **5-7 business days**.",
    cite_id=ArticleId("refunds"),
    cite_title="Refunds",
    score=0.9,
    similarity=0.8,
)


def _context(state: dict[str, object] | None = None) -> Context:
    now = utcnow()
    conversation = Conversation(
        ConversationId("c"), "web", Mode.BOT, Status.OPEN, now, now, state=dict(state or {})
    )
    return Context(conversation=conversation, history=(), state=dict(state or {}))


def test_that_a_confident_match_is_answered_extractively_with_its_citation() -> None:
    understanding = understand("how long do refunds take", [PASSAGE], GUIDELINES)
    decision = decide(_context(), understanding, GUIDELINES, threshold=0.5)
    assert decision.action is Action.ANSWER
    draft = respond(decision, understanding, GUIDELINES, open_now=True)
    assert draft.text == "Refunds take 5-7 business days."
    assert draft.citations == (Citation(ArticleId("refunds"), "Refunds"),)
    assert guard(draft, GUIDELINES).interventions == ()


def test_that_low_confidence_asks_to_rephrase_then_offers_a_person() -> None:
    weak = replace(PASSAGE, similarity=0.1)
    understanding = understand("blorp", [weak], GUIDELINES)
    first = decide(_context(), understanding, GUIDELINES, threshold=0.5)
    assert first.action is Action.REPHRASE
    second = decide(_context(first.state), understanding, GUIDELINES, threshold=0.5)
    assert second.action is Action.OFFER_HUMAN
    accepted = decide(
        _context(second.state), understand("yes please", [weak], GUIDELINES), GUIDELINES, 0.5
    )
    assert accepted.action is Action.HANDOFF and accepted.reason == "accepted_offer"


def test_that_a_passage_at_the_sure_bar_answers_what_the_intents_call_out_of_scope() -> None:
    from frontdesk.learning.intents import Prediction

    outside = Prediction("oos", 0.64, out_of_scope=True)
    for similarity, text, action in (
        (0.77, "What does pending mean?", Action.ANSWER),
        (0.69, "What does pending mean?", Action.REPHRASE),  # under the sure bar
        (0.77, "What's Amazon's return policy?", Action.REPHRASE),  # another company's
        (0.77, "Does Walmart deliver on Sundays?", Action.REPHRASE),
    ):
        passage = replace(PASSAGE, similarity=similarity)
        understanding = understand(text, [passage], GUIDELINES, intent=outside)
        decision = decide(_context(), understanding, GUIDELINES, 0.42, text, sure=0.7)
        assert decision.action is action, text
    # Without a sure bar (the default), out of scope stays out of scope.
    understanding = understand("What does pending mean?", [PASSAGE], GUIDELINES, intent=outside)
    assert decide(_context(), understanding, GUIDELINES, 0.42).action is Action.REPHRASE


def test_that_the_offer_threshold_comes_from_the_guidelines() -> None:
    patient = parse_guidelines("escalation: {low_confidence_turns: 3}")
    understanding = understand("blorp", [], patient)
    state: dict[str, object] = {}
    actions = []
    for _ in range(3):
        decision = decide(_context(state), understanding, patient, threshold=0.5)
        actions.append(decision.action)
        state = decision.state
    assert actions == [Action.REPHRASE, Action.REPHRASE, Action.OFFER_HUMAN]


def test_that_asking_for_a_person_is_recognised_in_many_phrasings() -> None:
    for text in (
        "can I talk to a person?",
        "I want to speak with a human",
        "real person please",
        "agent",
        "connect me to someone from support",
    ):
        assert understand(text, [], GUIDELINES).wants_human, text
    for text in ("is this a personal item?", "my agent code is 5", "humane traps for mice"):
        assert not understand(text, [], GUIDELINES).wants_human, text


def test_that_asking_whether_it_is_a_bot_gets_the_truth_and_the_offer_of_a_person() -> None:
    # It got "I'm not sure I understood" (the demo's intent model reads it as out of scope).
    # ("Are you a real person?" hands over at once: "real person" asks for one.)
    for text in (
        "are you a bot?",
        "hi, r u a bot",
        "is this an AI?",
        "am I chatting with a machine",
        "Just answer me. Are you a bot?",  # a short remark in front, as for a greeting
    ):
        understanding = understand(text, [replace(PASSAGE, similarity=0.1)], GUIDELINES)
        decision = decide(_context(), understanding, GUIDELINES, threshold=0.5)
        assert decision.action is Action.IDENTITY, text
        draft = respond(decision, understanding, GUIDELINES, open_now=True)
        assert draft.text == GUIDELINES.texts.identity and "not a person" in draft.text
    accepted = decide(
        _context(decision.state), understand("yes", [], GUIDELINES), GUIDELINES, threshold=0.5
    )
    assert accepted.action is Action.HANDOFF and accepted.reason == "accepted_offer"
    for text in ("are you open on sundays?", "is this a good backpack?", "are you able to help"):
        assert not understand(text, [], GUIDELINES).identity, text


def test_that_a_handoff_outside_working_hours_says_so() -> None:
    decision = decide(_context(), understand("human please", [], GUIDELINES), GUIDELINES, 0.5)
    closed = respond(decision, understand("x", [], GUIDELINES), GUIDELINES, open_now=False)
    assert closed.handoff and closed.text == GUIDELINES.texts.handoff_closed


def test_that_the_guard_replaces_forbidden_phrases_ungrounded_text_and_personal_data() -> None:
    strict = parse_guidelines("forbidden_phrases: ['I promise']")
    citation = (Citation(ArticleId("refunds"), "Refunds"),)
    promised = Draft("I promise it arrives tomorrow.", (), handoff=False)
    assert guard(promised, strict).interventions == ("tone",)
    assert guard(promised, strict).draft.text == strict.texts.fallback
    invented = Draft("Refunds take one hour.", citation, False, grounded_in="Refunds take 5 days.")
    checked = guard(invented, strict)
    assert checked.interventions == ("grounding",) and checked.draft.citations == ()
    leaking = Draft("Write to jane@example.com", (), handoff=False)
    assert guard(leaking, strict).interventions == ("pii",)
    # A reply citing the help centre may quote the company's own address from its passage, and
    # no other; checked twice, as the same passage answers many questions.
    ours = "Write to returns@shop.example for a label."
    quoted = Draft(ours, citation, False, grounded_in=ours)
    more = f"{ours} Or to jane@example.com."
    other = Draft(more, citation, False, grounded_in=ours, cited_text=ours)
    # The same words where the passage does hold that address pass: what is remembered of a
    # text is what it holds, not the verdict.
    sourced = Draft(more, citation, False, grounded_in=more)
    for _ in range(2):
        for recurring in (False, True):
            assert guard(quoted, strict, recurring=recurring).interventions == ()
            assert guard(other, strict, recurring=recurring).interventions == ("pii",)
            assert guard(sourced, strict, recurring=recurring).interventions == ()


def test_that_the_guard_shortens_overlong_replies_at_a_sentence() -> None:
    text = "This is a sentence. " * 100
    checked = guard(Draft(text, (), handoff=False), GUIDELINES, max_chars=200)
    assert checked.interventions == ("length",)
    assert len(checked.draft.text) <= 200 and checked.draft.text.endswith(".")
