"""The guidelines file: voice, rules, texts, escalation, working hours and KPI targets.

One YAML file per company (``guidelines.yaml`` in its folder). Every mistake in it is reported
with its place in the file, e.g. ``escalation.low_confidence_turns: Input should be ...``.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from frontdesk.knowledge.documents import slugify

ModelT = TypeVar("ModelT", bound=BaseModel)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

NonEmpty = Annotated[str, Field(min_length=1)]


class GuidelinesError(ValueError):
    """The guidelines file is missing, not YAML, or does not match the schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Texts(_Strict):
    greeting: NonEmpty = "Hi! I'm the virtual assistant. How can I help you today?"
    fallback: NonEmpty = (
        "I'm not sure I understood. Could you rephrase, or tell me a little more about what "
        "you need?"
    )
    offer_human: NonEmpty = (
        "I don't seem to have a good answer for that. Would you like me to connect you with a "
        "person?"
    )
    # {wait} becomes the expected wait ("in about 8 minutes"), from the queue and the agents
    # online.
    handoff: NonEmpty = "I'm connecting you with a person now. Someone will reply here {wait}."
    handoff_closed: NonEmpty = (
        "Our team is away right now. I've passed your conversation on. Leave your email address "
        "here and a person will follow up by email when we open."
    )
    declined_human: NonEmpty = "No problem. What else can I help you with?"
    thanks: NonEmpty = "You're welcome! Is there anything else I can help you with?"
    goodbye: NonEmpty = "Thanks for chatting with us. Goodbye!"
    identity: NonEmpty = (
        "I'm a virtual assistant, not a person. I can answer questions and help with your "
        "orders. Would you like me to connect you with a person from our team?"
    )
    capabilities: NonEmpty = (
        "I'm a virtual assistant. I can answer questions about our policies and products, and "
        "help with your orders. What can I do for you?"
    )
    frustrated: NonEmpty = (
        "I'm sorry this has been frustrating. I'm passing you to a person who can help."
    )
    # The satisfaction survey the widget shows when a conversation is resolved.
    csat_question: NonEmpty = "How would you rate this conversation?"
    csat_comment: NonEmpty = "Anything you'd like to tell us? (optional)"
    csat_thanks: NonEmpty = "Thank you for your feedback!"


DEFAULT_HUMAN_PATTERNS = (
    r"\b(talk|speak|chat)\b.{0,30}\b(person|human|agent|someone|somebody|representative|rep|staff)\b",
    r"\b(real|live|actual)\s+(person|human|agent)\b",
    r"\b(human|agent|representative|operator)\s*(please|now|pls)?\s*[.!?]*$",
    r"\bconnect me\b.{0,30}\b(person|human|agent|someone|representative)\b",
)

DEFAULT_AFFIRMATIVE = (
    r"^\s*(yes|yeah|yep|yup|sure|ok|okay|please|please do|yes please|go ahead|do it|y)\b"
)
DEFAULT_NEGATIVE = r"^\s*(no|nope|nah|no thanks|not now|n)\b"


DEFAULT_SENSITIVE: dict[str, tuple[str, ...]] = {
    "legal": (r"\b(lawyers?|attorneys?|sue|suing|lawsuit|legal action|small claims|court)\b",),
    "safety": (
        r"\b(caught fire|on fire|burn(ed|t)?|injur(y|ed|ies)|hurt (me|my|him|her)|electric shock|"
        r"explod(ed|ing)|unsafe|choking)\b",
    ),
    "fraud": (
        r"\b(fraud(ulent)?|scam(med)?|stolen (card|credit card|identity)|identity theft|"
        r"unauthori[sz]ed (charge|purchase|transaction)s?|i didn'?t (make|order) (this|that))\b",
    ),
    "bereavement": (
        r"\b(passed away|died|funeral|deceased|bereave(d|ment)|(my|our) late (husband|wife|"
        r"mother|father|mom|dad|son|daughter))\b",
    ),
}


class Escalation(_Strict):
    """When a person takes over. Each rule records its reason on the handoff."""

    human_request_patterns: tuple[NonEmpty, ...] = DEFAULT_HUMAN_PATTERNS
    low_confidence_turns: int = Field(default=2, ge=1, le=10)
    low_confidence_handoff: bool = Field(
        default=False,
        description="After low_confidence_turns unclear messages: hand over (true) or offer a "
        "person (false).",
    )
    loop_repeats: int = Field(
        default=2, ge=2, le=10, description="The same unanswered question this often: hand over."
    )
    sensitive_topics: dict[str, tuple[NonEmpty, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_SENSITIVE),
        description="Topic name -> regular expressions; a match hands over at once.",
    )
    high_value_order: float | None = Field(
        default=None,
        gt=0,
        description="Order total at or above which an action on it goes to a person.",
    )
    minutes_per_conversation: float = Field(
        default=4, gt=0, description="For the expected wait: minutes an agent needs per chat."
    )
    frustration_threshold: float = Field(
        default=0.7, gt=0, le=1, description="Frustration at or above which a person takes over."
    )
    affirmative_pattern: NonEmpty = DEFAULT_AFFIRMATIVE
    negative_pattern: NonEmpty = DEFAULT_NEGATIVE

    @field_validator("human_request_patterns")
    @classmethod
    def _compile_all(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            _compile(pattern)
        return patterns

    @field_validator("affirmative_pattern", "negative_pattern")
    @classmethod
    def _compile_one(cls, pattern: str) -> str:
        _compile(pattern)
        return pattern

    @field_validator("sensitive_topics")
    @classmethod
    def _compile_topics(cls, topics: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for patterns in topics.values():
            for pattern in patterns:
                _compile(pattern)
        return topics

    def sensitive_topic(self, text: str) -> str | None:
        """The first sensitive topic the text touches, if any."""
        for topic, patterns in self.sensitive_topics.items():
            if any(_compile(p).search(text) for p in patterns):
                return topic
        return None


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}): {pattern!r}") from exc


_HOURS_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class WorkingHours(_Strict):
    timezone: NonEmpty = "UTC"
    days: dict[str, str] = Field(
        default_factory=lambda: {day: "09:00-17:00" for day in DAYS[:5]},
        description="Day (mon..sun) -> 'HH:MM-HH:MM'. A day left out is closed.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("days")
    @classmethod
    def _valid_days(cls, value: dict[str, str]) -> dict[str, str]:
        for day, hours in value.items():
            if day not in DAYS:
                raise ValueError(f"unknown day {day!r}; use one of {', '.join(DAYS)}")
            match = _HOURS_RE.match(hours)
            if not match or hours[:5] >= hours[6:]:
                raise ValueError(f"{day}: hours must look like '09:00-17:30', got {hours!r}")
        return value

    def is_open(self, when: datetime) -> bool:
        local = when.astimezone(ZoneInfo(self.timezone))
        hours = self.days.get(DAYS[local.weekday()])
        if not hours:
            return False
        start = time.fromisoformat(hours[:5])
        end_text = hours[6:]
        end = time(23, 59, 59) if end_text == "24:00" else time.fromisoformat(end_text)
        return start <= local.time().replace(tzinfo=None) < end


class IntentNames(_Strict):
    """Which labels of the company's intent model the pipeline acts on by itself."""

    min_confidence: float = Field(
        default=0.85,
        ge=0,
        le=1,
        description="Confidence the model needs before the pipeline acts on one of these alone.",
    )
    talk_to_human: NonEmpty = "talk_to_human"
    greeting: NonEmpty = "greeting"
    thanks: NonEmpty = "thanks"
    goodbye: NonEmpty = "goodbye"
    affirm: NonEmpty = "affirm"
    deny: NonEmpty = "deny"
    articles: dict[NonEmpty, tuple[NonEmpty, ...]] = Field(
        default_factory=dict,
        description=(
            "Intent label: the help-centre articles (file names without .md) that answer it. "
            "When the model is confident of the intent, the best passage of these articles "
            "comes first and is answered from a lower similarity (agreed_answer_threshold)."
        ),
    )

    @field_validator("articles")
    @classmethod
    def _article_ids(cls, articles: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        """Article ids as the help centre gives them ("Refunds.md" -> "refunds")."""
        return {
            label: tuple(slugify(name.removesuffix(".md"), 190) for name in names)
            for label, names in articles.items()
        }


class KpiTargets(_Strict):
    """The target of each KPI the dashboard tracks (leave one out to use the default; set it
    to null to stop tracking it). Times are upper limits, rates and scores lower limits, except
    the handoff rate (an upper limit)."""

    first_response_seconds: float | None = Field(default=5.0, gt=0)
    average_response_seconds: float | None = Field(default=60.0, gt=0)
    resolution_minutes: float | None = Field(default=60.0, gt=0)
    bot_resolution_rate: float | None = Field(default=0.6, ge=0, le=1)
    handoff_rate: float | None = Field(default=0.3, ge=0, le=1)
    csat_average: float | None = Field(default=4.2, ge=1, le=5)
    sentiment_average: float | None = Field(default=0.0, ge=-1, le=1)
    conversion_rate: float | None = Field(default=0.03, ge=0, le=1)


class Analytics(_Strict):
    """How the dashboard counts and when it raises an alert."""

    reopen_days: int = Field(
        default=3,
        ge=0,
        le=90,
        description="A bot resolution reopened within this many days does not count.",
    )
    resolve_idle_minutes: float = Field(
        default=30,
        ge=0,
        description="A bot conversation idle this long is resolved (0: never).",
    )
    alert_window_days: int = Field(
        default=7, ge=1, le=90, description="The days a KPI is averaged over to check it."
    )
    alert_tolerance: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="How far past its target (as a share of the target) a KPI may drift "
        "before an alert is raised.",
    )
    alert_min_conversations: int = Field(
        default=20, ge=1, description="No alert is raised on fewer conversations than this."
    )


# Promises a model may not make unless the knowledge or a tool result says the same: the
# policy guard checks each sentence of a model reply that matches one of these.
DEFAULT_PROMISES: dict[str, tuple[str, ...]] = {
    "refund": (
        r"\b(full|partial|instant|immediate|automatic|guaranteed)\s+refunds?\b",
        r"\b(we|i)('ll| will| can| shall)\s+(refund|reimburse)\b",
        r"\brefund(ed)?\b[^.!?]*\b(within|in|by)\s+\d+\s*(hours?|days?|weeks?)\b",
        r"\bmoney[- ]back\b",
    ),
    "discount": (
        r"\b\d+\s*(%|percent)\s*(off|discount)\b",
        r"\b(discount|coupon|promo(tion)? code|voucher|store credit)\b",
        r"\bfree\s+(shipping|delivery|return|upgrade|replacement|gift)\b",
        r"\b(waive|waived|waiving)\b",
    ),
    "delivery_date": (
        r"\b(arrive|arrives|arriving|deliver(ed|s)?|ship(s|ped)?|get it)\b[^.!?]*\b"
        r"(today|tomorrow|tonight|monday|tuesday|wednesday|thursday|friday|saturday|sunday"
        r"|next week|by the \d+|on the \d+)\b",
        r"\bguarantee(d)?\b",
    ),
}


class ModelRules(_Strict):
    """How a generative model (when one is configured) is steered and checked."""

    instructions: tuple[NonEmpty, ...] = Field(
        default=(),
        description="Extra lines for the model's instructions, after the do and don't rules.",
    )
    promises: dict[str, tuple[NonEmpty, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_PROMISES),
        description=(
            "Kinds of promise (regular expressions, case-insensitive) a model reply may make "
            "only when the knowledge or a tool result supports it."
        ),
    )
    max_sentences: int = Field(
        default=6, ge=1, le=30, description="Longest model reply, in sentences."
    )

    @field_validator("promises")
    @classmethod
    def _compile_promises(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for kind, patterns in value.items():
            for pattern in patterns:
                try:
                    _compile(pattern)
                except ValueError as exc:
                    raise ValueError(f"{kind}: {exc}") from exc
        return value

    def promise(self, sentence: str) -> str | None:
        """The kind of promise ``sentence`` makes, if any."""
        for kind, patterns in self.promises.items():
            if any(_compile(p).search(sentence) for p in patterns):
                return kind
        return None


class Guidelines(_Strict):
    assistant_name: NonEmpty = "Assistant"
    company_name: NonEmpty = "our company"
    brand_voice: str = "Helpful, clear and friendly."
    tone: tuple[NonEmpty, ...] = ("friendly", "concise")
    do: tuple[NonEmpty, ...] = ()
    dont: tuple[NonEmpty, ...] = ()
    forbidden_phrases: tuple[NonEmpty, ...] = ()
    glossary: dict[str, str] = Field(default_factory=dict)
    texts: Texts = Field(default_factory=Texts)
    escalation: Escalation = Field(default_factory=Escalation)
    intents: IntentNames = Field(default_factory=IntentNames)
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    kpi_targets: KpiTargets = Field(default_factory=KpiTargets)
    analytics: Analytics = Field(default_factory=Analytics)
    model: ModelRules = Field(default_factory=ModelRules)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def problems(error: ValidationError) -> list[str]:
    """One line per mistake, with its place: ``  escalation.low_confidence_turns: ...``."""
    return [
        f"  {_location(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
        for err in error.errors()
    ]


def parse_yaml_model(
    text: str,
    source: str,
    model: type[ModelT],
    error: type[ValueError],
    *,
    what: str = "a mapping",
    empty: bool = False,
) -> ModelT:
    """A company file (guidelines, a flow, a test file) read as YAML and validated against
    ``model``; every mistake is named in one ``error`` with its place in ``source``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from exc
    if data is None and empty:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{source}: the top level must be {what}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = problems(exc)
        raise error(f"{source} has {len(lines)} problem(s):\n" + "\n".join(lines)) from exc


def parse_guidelines(text: str, source: str = "guidelines.yaml") -> Guidelines:
    """Validate YAML text; every problem is listed in the error with its place."""
    return parse_yaml_model(
        text, source, Guidelines, GuidelinesError, what="a mapping of settings", empty=True
    )


def load_guidelines(company_dir: Path | None) -> Guidelines:
    """The company's guidelines, or the defaults when there is no company folder."""
    if company_dir is None:
        return Guidelines()
    path = company_dir / "guidelines.yaml"
    if not path.exists():
        raise GuidelinesError(f"{path}: not found (every company folder needs guidelines.yaml)")
    return parse_guidelines(path.read_text(encoding="utf-8"), str(path))
