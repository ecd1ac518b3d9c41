"""Conversation test suites, counterfactual variants, evaluation reports and spelling."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from tests.conftest import DEMO

from frontdesk.config import Settings
from frontdesk.pipeline.spelling import Speller
from frontdesk.testing.cli import _show, out, run_tests
from frontdesk.testing.counterfactual import compare, show, variants
from frontdesk.testing.report import compare as compare_reports
from frontdesk.testing.report import render
from frontdesk.testing.runner import CaseResult, Failure, Outcome
from frontdesk.testing.suites import SuiteError, parse_suite

PASSING = """
conversations:
  - name: refunds are answered from the help centre
    turns:
      - say: How long do refunds take?
        expect: {action: answer, citation: refunds, reply_contains: [5–7 business days]}
  - name: a pending order cannot be returned
    turns:
      - say: "I'd like to return order #W4566809"
        expect: {flow: authenticate}
      - say: raj.sanchez2046@example.com
        expect:
          reply_contains: [Only delivered orders can be returned]
          tool_call: {name: check_order_action, ok: false}
          database: [{order: "#W4566809", status: pending}, {event: action_executed, count: 0}]
"""
FAILING = """
conversations:
  - name: a wrong expectation
    turns:
      - say: How long do refunds take?
        expect: {reply_contains: [refunds are instant everywhere]}
"""


@pytest.fixture
def suite_settings(tmp_path: Path, demo_intents: Path) -> Settings:
    """Settings whose registry already holds the demo intent model (no training per run)."""
    data = tmp_path / "data"
    shutil.copytree(demo_intents, data / "models")
    return Settings(data_dir=data, company_dir=DEMO, intent_model="demo-store", secret_key="s")


async def test_that_a_suite_passes_and_a_failure_is_reported_turn_by_turn(
    suite_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(PASSING, encoding="utf-8")
    bad.write_text(FAILING, encoding="utf-8")
    junit = tmp_path / "results.xml"
    assert await run_tests(suite_settings, [good], None, False, None) is True
    assert await run_tests(suite_settings, [good, bad], junit, False, None) is False
    printed = capsys.readouterr().out
    assert "PASS refunds are answered from the help centre" in printed
    assert "FAIL a wrong expectation" in printed
    assert "turn 1: 'How long do refunds take?'" in printed
    assert "reply contains: expected 'refunds are instant everywhere'" in printed
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"


async def test_that_a_broken_article_fails_the_demo_suite(
    suite_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    company = tmp_path / "company"
    shutil.copytree(DEMO, company, ignore=shutil.ignore_patterns("tests"))
    refunds = company / "knowledge" / "refunds.md"
    refunds.write_text(refunds.read_text().replace("5–7 business days", "a while"))
    faq = company / "knowledge" / "faq.csv"
    faq.write_text(faq.read_text().replace("5–7 business days", "a while"))
    broken = suite_settings.model_copy(update={"company_dir": company})
    suite = tmp_path / "refunds.yaml"
    suite.write_text(PASSING.split("  - name: a pending")[0], encoding="utf-8")
    assert await run_tests(broken, [suite], None, False, None) is False
    assert "reply contains: expected '5–7 business days'" in capsys.readouterr().out


def test_that_a_test_file_mistake_is_named() -> None:
    with pytest.raises(SuiteError) as error:
        parse_suite("conversations:\n  - name: x\n    turns:\n      - sey: hi\n", "t.yaml")
    assert "t.yaml" in str(error.value) and "sey" in str(error.value)
    with pytest.raises(SuiteError, match="not valid YAML"):
        parse_suite("conversations: [", "t.yaml")


def test_that_results_are_printed_as_they_are_with_their_brackets() -> None:
    """Case names, customer messages and variant names go to the console without rich's
    markup: "[bold]" would have vanished, "[/b]" raised, and the variant name after each
    counterfactual change ("[typo]") was dropped."""
    result = CaseResult(
        file="tests/[bold]x.yaml",
        name="asks for [bold]",
        failures=[Failure(1, "where is [/b] my order", "intent", "[x]", "[y]")],
    )
    report = {
        "axes": {"typo": {"changed": 1, "variants": 2, "rate": 0.5, "cases": [
            {"conversation": "asks for [bold]", "variant": "typo", "change": "intent [a] -> [b]"}
        ]}},
        "names_and_pronouns_changed": 0, "phrasing_rate": 0.0, "targets_met": True,
    }  # fmt: skip
    with out.capture() as captured:
        _show(result)
        show(out, report)
    printed = captured.get()
    expected = [
        "FAIL asks for [bold]",
        "[bold]x.yaml",
        "'where is [/b] my order'",
        "expected '[x]'",
        "'[y]'",
        "asks for [bold] [typo]: intent [a] -> [b]",
    ]
    for text in expected:
        assert text in printed, text


def test_that_variants_never_touch_identifiers() -> None:
    case = parse_suite(
        "conversations:\n  - name: c\n    turns:\n"
        '      - say: "My husband wants to return order #W1067251"\n'
        "      - say: raj.sanchez2046@example.com\n"
        "      - say: back to the original payment method\n",
        "v.yaml",
    ).conversations[0]
    found = {(axis, label): texts for axis, label, texts in variants(case)}
    assert found[("names", "Emily")][0].startswith("Hi, I'm Emily. My husband")
    assert found[("pronouns", "swapped")][0] == "My wife wants to return order #W1067251"
    upper = found[("upper case", "upper case")]
    assert upper[0] == "MY HUSBAND WANTS TO RETURN ORDER #W1067251"
    assert upper[1] == "raj.sanchez2046@example.com"
    typos = found[("typos", "typos")]
    assert typos[1] == "raj.sanchez2046@example.com" and typos[2] != case.turns[2].say


def _outcome(intent: str, action: str, reply: str, reason: str = "") -> Outcome:
    return Outcome("x", reply, [], intent, [], None, action, reason, [], False)


def test_that_a_changed_outcome_is_named_and_a_flow_answer_ignores_the_intent() -> None:
    case = parse_suite(
        "conversations:\n  - name: c\n    turns:\n      - say: a\n"
        "        expect: {reply_contains: [five days]}\n",
        "c.yaml",
    ).conversations[0]
    same = compare(
        case,
        [_outcome("refund", "answer", "five days")],
        [_outcome("refund", "answer", "It takes five days")],
    )
    assert same is None
    lost = compare(
        case, [_outcome("refund", "answer", "five days")], [_outcome("refund", "answer", "a while")]
    )
    assert lost is not None and "key facts" in lost
    flow_turn = compare(
        case,
        [_outcome("affirm", "flow", "five days", "flow")],
        [_outcome("deny", "flow", "five days", "flow")],
    )
    assert flow_turn is None


def test_that_the_report_says_what_got_better_and_worse() -> None:
    before = {"retrieval": {"hit1": 0.80, "hit5": 1.0, "questions": 1, "misses": []}}
    now = {
        "retrieval": {"hit1": 0.90, "hit5": 0.95, "questions": 1, "misses": []},
        "created_at": "2026-11-29T10:00:00+00:00",
        "previous": "x",
    }
    changes = compare_reports(now, before)
    assert [c["metric"] for c in changes["better"]] == ["retrieval hit@1"]
    assert [c["metric"] for c in changes["worse"]] == ["retrieval hit@5"]
    page = render(now, changes)
    assert (
        "<svg" in page
        and "retrieval hit@5" in page
        and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )


def test_that_typos_are_corrected_against_the_vocabulary_and_identifiers_are_left() -> None:
    speller = Speller.from_texts(["Refunds take five business days.", "Hiking Boots"])
    assert speller.correct("How long do reufnds take?") == "How long do refunds take?"
    assert speller.correct("the seocnd one") == "the second one"
    assert speller.correct("Raj Sanchez 92147 <EMAIL_1> #W1067251") == (
        "Raj Sanchez 92147 <EMAIL_1> #W1067251"
    )
    assert speller.correct("hikking boots") == "hiking boots"
    # Plurals the English word list lacks are words, not typos of the singular.
    assert speller.correct("what colours and sizes") == "what colours and sizes"
