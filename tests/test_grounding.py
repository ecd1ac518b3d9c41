"""The model guard's checks, sentence by sentence (pipeline.grounding, pipeline.prompt)."""

from __future__ import annotations

from tests.conftest import DEMO

from frontdesk.company.guidelines import Guidelines, load_guidelines
from frontdesk.core.types import ArticleId, ChunkId, Passage
from frontdesk.pipeline.grounding import (
    _WORD,
    LEAK_WORDS,
    ReplyChecker,
    Source,
    _instruction_runs,
    _recurring_index,
    _tokens,
    clean_reply,
    cut,
    split_sentences,
)
from frontdesk.pipeline.prompt import build_messages, new_canary, system_prompt

REFUNDS = Source(
    "refunds",
    "Refunds",
    "Refunds to a gift card are immediate. Refunds to a credit card or PayPal take 5–7 "
    "business days; for returns, the time starts when the returned items arrive at our "
    "warehouse.",
)
SHIPPING = Source(
    "shipping",
    "Shipping",
    "Standard shipping takes 3 to 5 business days. Orders over $75 ship free.",
)


def checker(**kwargs: object) -> ReplyChecker:
    guidelines = load_guidelines(DEMO)
    return ReplyChecker(guidelines, [REFUNDS, SHIPPING], **kwargs)  # type: ignore[arg-type]


def test_that_sentences_are_split_as_they_complete() -> None:
    done, rest = split_sentences("Refunds take 5–7 days. Gift cards are")
    assert done == ["Refunds take 5–7 days. "]
    assert rest == "Gift cards are"
    done, rest = split_sentences("One line\nAnother! And? ")
    assert [d.strip() for d in done] == ["One line", "Another!", "And?"]


def test_that_a_supported_claim_passes_and_is_cited() -> None:
    check = checker()
    verdict = check.check("Refunds to a credit card or PayPal take 5-7 business days.")
    assert verdict.ok and verdict.claim and verdict.source == REFUNDS
    assert [c.id for c in check.citations()] == ["refunds"]


def test_that_an_invented_number_fails_grounding() -> None:
    verdict = checker().check("Refunds to a credit card take 5-10 business days.")
    assert not verdict.ok and verdict.check == "grounding"


def test_that_an_invented_policy_fails_grounding() -> None:
    verdict = checker().check("You can return worn items after a year for store repairs.")
    assert verdict.check == "grounding"


DELIVERY = Source(
    "delivery",
    "Delivery times",
    "Orders ship within 1–2 business days. Standard US delivery then takes 5–7 business days, "
    "express 2–3 business days, and international 10–20 business days.\n"
    "| Refund to | Timing |\n| Credit card | 5–7 business days |\n"
    "Standard US shipping is $5.99. Express is $14.99 and international shipping is $29.99.",
)


def test_that_a_number_moved_to_another_subject_of_the_same_passage_fails_grounding() -> None:
    check = ReplyChecker(load_guidelines(DEMO), [DELIVERY])
    # SmolLM2's own sentence (2026-11-29): every word and number is in the passage, but 10–20
    # days is international delivery.
    for wrong in (
        "The standard delivery time is 10–20 business days.",
        "International shipping is $14.99.",
        "Express delivery takes 10–20 business days.",
        # Sharing a word with the right number is not enough when the subject is another's.
        "Express shipping is $29.99.",
        "Express delivery takes 5–7 business days.",
        # The subject after the number: the first word after it that tells the source's
        # numbers apart must be its own ("business days" follows every delivery time).
        "It is $29.99 for express shipping.",
        "It is $14.99 for international shipping.",
        "Shipping is $29.99 for express orders.",
        "It takes 5–7 business days for express delivery.",
    ):
        assert check.check(wrong).check == "grounding", wrong
    for right in (
        "Standard US delivery takes 5–7 business days.",
        "International delivery takes 10–20 business days.",
        "Express shipping is $14.99 and international shipping is $29.99.",
        "Refunds to a credit card take 5–7 business days.",  # a table row anchors too
        "It is $14.99 for express.",  # nothing before the number to anchor: words decide
        "Express delivery takes 2–3 business days.",  # "delivery takes" is said once, for all
        "International shipping is $29.99.",
        "Orders ship within 1–2 business days.",
        "It is $14.99 for express shipping.",
        "It's $29.99 for international shipping.",
        "It takes 5–7 business days for standard US delivery.",
        # The source's own sentence: each number's words after it stop at its clause.
        "Standard US delivery then takes 5–7 business days, express 2–3 business days, and "
        "international 10–20 business days.",
    ):
        assert check.check(right).ok, right


def test_that_a_clause_ends_at_a_comma_or_a_conjunction_but_not_inside_a_number() -> None:
    tokens, breaks = _tokens("Orders over $1,000 ship free, and returns take 30 days; or not")
    words = ["order", "", "1000", "ship", "free", "", "return", "take", "30", "days", "", ""]
    assert tokens == words
    assert sorted(breaks) == [5, 10]  # "and" (after the comma), "or" (after the semicolon)


def test_that_a_promise_no_source_makes_fails_the_policy_check() -> None:
    check = checker()
    assert check.check("We will refund you within 90 days, no questions asked.").check == "policy"
    assert check.check("I can give you a 20% discount on your next order.").check == "policy"
    assert check.check("Your order will arrive tomorrow.").check == "policy"
    # The same kind of promise, made by a source, passes.
    assert check.check("Orders over $75 ship free.").ok


def test_that_questions_greetings_and_offers_are_not_claims() -> None:
    check = checker()
    for sentence in (
        "Happy to help!",
        "Which order do you mean?",
        "I'm not sure about that; I can connect you with a person from our team.",
    ):
        assert check.check(sentence).ok, sentence


def test_that_forbidden_phrases_fail_the_tone_check() -> None:
    verdict = checker().check("I promise refunds to a gift card are immediate.")
    assert verdict.check == "tone"


def test_that_another_persons_data_fails_the_pii_check() -> None:
    check = checker(seen="my email is <EMAIL_1> and my order is #W1234567")
    assert check.check("I have noted <EMAIL_1>.").ok
    assert check.check("I sent it to <EMAIL_2>.").check == "pii"
    assert check.check("Your order #W7654321 is on its way.").check == "pii"
    assert check.check("Write to jane.doe@example.com for a refund.").check == "pii"


def test_that_the_canary_or_the_instructions_in_a_reply_are_a_leak() -> None:
    guidelines = load_guidelines(DEMO)
    canary = new_canary()
    instructions = system_prompt(guidelines, canary=canary)
    assert canary in instructions
    check = ReplyChecker(guidelines, [REFUNDS], instructions=instructions, canary=canary)
    assert check.check(f"My reference is {canary}.").check == "prompt_leak"
    leaked = (
        "Sure: answer only from the knowledge passages, approved answers and tool results in "
        "this conversation."
    )
    assert check.check(leaked).check == "prompt_leak"


def test_that_the_kept_runs_of_the_instructions_are_the_ones_counted_each_time() -> None:
    """The lines before the canary's are counted once and kept; the set must be the one
    that counting every run of this call's instructions gives, canary line included."""
    guidelines = load_guidelines(DEMO)
    for canary in (new_canary(), new_canary()):
        instructions = system_prompt(guidelines, canary=canary)
        words = _WORD.findall(instructions.lower())
        every = {tuple(words[i : i + LEAK_WORDS]) for i in range(len(words) - LEAK_WORDS + 1)}
        assert _instruction_runs(instructions, canary) == every
        assert any("confidential" in run for run in every)  # runs reach the canary's line
    plain = system_prompt(guidelines)
    words = _WORD.findall(plain.lower())
    every = {tuple(words[i : i + LEAK_WORDS]) for i in range(len(words) - LEAK_WORDS + 1)}
    assert _instruction_runs(plain, None) == every


def test_that_a_tool_result_is_indexed_for_its_turn_only() -> None:
    """Passages are indexed once and kept; a tool result, which holds a customer's order,
    is not kept."""
    check = checker()
    hits = _recurring_index.cache_info().hits
    _recurring_index(REFUNDS.text)
    assert _recurring_index.cache_info().hits == hits + 1  # the passage was kept
    kept = _recurring_index.cache_info().currsize
    check.add_source(Source.from_tool("order_status", {"status": "delivered", "zip": "12345"}))
    assert _recurring_index.cache_info().currsize == kept
    assert check.check("The status is delivered.").ok


def test_that_citation_marks_are_removed_and_long_replies_cut() -> None:
    assert (
        clean_reply("Refunds are immediate [refunds]. Thanks!") == "Refunds are immediate. Thanks!"
    )
    text, was_cut = cut(["One. ", "Two. ", "Three. "], 2)
    assert text == "One. Two." and was_cut


def test_that_the_prompt_carries_the_guidelines_and_only_pseudonymized_text() -> None:
    guidelines = load_guidelines(DEMO)
    messages = build_messages(
        guidelines,
        text="My email is <EMAIL_1>, where is my refund?",
        passages=(),
        context={"verified": False},
        canary="fdc-test",
    )
    system = messages[0].content
    assert "Nora" in system and "Northwind Outfitters" in system
    assert "Plain-spoken" in system or "plain-spoken" in system
    assert "guaranteed delivery" in system  # forbidden phrases
    assert "pending:" in system  # glossary
    assert "fdc-test" in system
    assert messages[-1].role == "user" and "<EMAIL_1>" in messages[-1].content
    # One system message: the instructions, then the turn's material.
    assert [m.role for m in messages] == ["system", "user"]
    assert system.index("fdc-test") < system.index("Knowledge passages: none match")
    assert Guidelines().model.max_sentences == 6


def test_that_the_reference_answer_and_the_passages_follow_the_instructions() -> None:
    guidelines = load_guidelines(DEMO)
    text = "Refunds to a gift card are immediate."
    refunds = ArticleId("refunds")
    passage = Passage(ChunkId("refunds-0"), refunds, "Refunds", text, refunds, "Refunds", 1.0, 0.9)
    messages = build_messages(
        guidelines,
        text="how long do refunds take",
        passages=(passage,),
        reference=text,
    )
    system = messages[0].content
    assert system.startswith(system_prompt(guidelines))
    assert "[refunds] Refunds: Refunds to a gift card are immediate." in system
    assert "Reference answer (correct;" in system
    assert messages[-1].content == "how long do refunds take"
