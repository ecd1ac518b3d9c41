"""The guidelines file: the demo's loads, and every mistake is named with its place."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import DEMO

from frontdesk.company.guidelines import GuidelinesError, load_guidelines, parse_guidelines


def test_that_the_demo_guidelines_load() -> None:
    guidelines = load_guidelines(DEMO)
    assert guidelines.assistant_name == "Nora"
    assert guidelines.escalation.low_confidence_turns == 2
    assert guidelines.kpi_targets.csat_average == 4.2
    assert guidelines.kpi_targets.handoff_rate == 0.25
    assert guidelines.analytics.reopen_days == 3
    assert "I promise" in guidelines.forbidden_phrases


def test_that_the_articles_of_an_intent_are_named_as_the_help_centre_names_them() -> None:
    guidelines = parse_guidelines(
        "intents:\n  articles:\n    refund_status: [Refunds.md, price adjustments]\n"
    )
    assert guidelines.intents.articles == {"refund_status": ("refunds", "price-adjustments")}
    assert load_guidelines(DEMO).intents.articles["discount"] == (
        "promotions-and-discount-codes",
        "price-adjustments",
    )
    with pytest.raises(GuidelinesError, match=r"intents\.articles\.refund_status"):
        parse_guidelines('intents:\n  articles:\n    refund_status: [""]\n')


def test_that_an_empty_file_gives_the_defaults() -> None:
    guidelines = parse_guidelines("")
    assert guidelines.texts.greeting
    assert guidelines.working_hours.timezone == "UTC"


def test_that_every_mistake_is_listed_with_its_place() -> None:
    text = """
assistant_name: ""
tone: friendly
escalation:
  low_confidence_turns: 0
  human_request_patterns: ["(unclosed"]
working_hours:
  timezone: Mars/Olympus
  days: {mon: "9-5", funday: "09:00-10:00"}
kpi_targets:
  csat_average: 7
unknown_setting: 1
"""
    with pytest.raises(GuidelinesError) as caught:
        parse_guidelines(text, "g.yaml")
    message = str(caught.value)
    for place in (
        "assistant_name:",
        "tone:",
        "escalation.low_confidence_turns:",
        "escalation.human_request_patterns:",
        "working_hours.timezone:",
        "working_hours.days:",
        "kpi_targets.csat_average:",
        "unknown_setting:",
    ):
        assert place in message, (place, message)
    assert message.startswith("g.yaml has 8 problem(s):")
    assert "not a valid regular expression" in message
    assert "unknown time zone 'Mars/Olympus'" in message


def test_that_broken_yaml_is_reported_as_such() -> None:
    with pytest.raises(GuidelinesError, match="not valid YAML"):
        parse_guidelines("texts: [unclosed", "g.yaml")
    with pytest.raises(GuidelinesError, match="mapping"):
        parse_guidelines("- a list\n- of things", "g.yaml")


def test_that_a_company_folder_without_guidelines_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GuidelinesError, match="not found"):
        load_guidelines(tmp_path)


def test_that_working_hours_follow_the_companys_time_zone() -> None:
    hours = load_guidelines(DEMO).working_hours
    # Monday 2026-11-30, 14:00 UTC is 09:00 in New York: open. 13:59 UTC is 08:59: closed.
    assert hours.is_open(datetime(2026, 11, 30, 14, 0, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 11, 30, 13, 59, tzinfo=UTC))
    # Sunday is not listed: closed all day.
    assert not hours.is_open(datetime(2026, 11, 29, 17, 0, tzinfo=UTC))
