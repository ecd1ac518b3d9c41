"""Flow definitions: business processes written as data, one YAML file per flow in the
company's ``flows/`` folder, validated on start with the place of every mistake.

A flow has a name, a description ("your return", used in "Now, back to your return"), the
triggers that start it (intent labels, regular expressions, entity kinds named together with a
pattern; patterns that keep it from starting; the flows whose end it continues), whether the
customer must be verified first, and steps. A step does exactly one thing:

``collect: SLOT``   ask for a value (``type`` names the extractor, default the slot's name;
                    ``prompt`` asks, ``retry`` re-asks after a value that does not read)
``call: TOOL``      run a tool (``args`` rendered from the slots; ``save`` keeps the result;
                    ``on_refusal``: ``end`` (default), ``continue``, or ``retry:STEP_ID``)
``confirm: TEXT``   list the details and wait for an explicit yes (a no ends the flow)
``say: TEXT``       reply, and go on
``goto: STEP_ID``   jump
``handoff: REASON`` hand the conversation to a person
``end: TEXT``       finish the flow with a last reply

Any step may have ``when`` (``{slot: order.status, equals: pending}``, ``in: [...]`` or
``present: true``): it runs only if that holds. Texts use ``{slot}`` and ``{slot.field}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from frontdesk.company.guidelines import parse_yaml_model

KINDS = ("collect", "call", "confirm", "say", "goto", "handoff", "end")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")


class FlowError(ValueError):
    """A flow file is not YAML or does not match the schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(_Strict):
    slot: str
    equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    present: bool | None = None

    def holds(self, slots: Mapping[str, Any]) -> bool:
        value = lookup(slots, self.slot)
        if self.present is not None:
            return (value not in (None, "", [], {})) == self.present
        if self.in_ is not None:
            return value in self.in_
        return bool(value == self.equals)


class Step(_Strict):
    id: str | None = None
    when: Condition | None = None
    collect: str | None = None
    type: str | None = None
    prompt: str | None = None
    retry: str | None = None
    call: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    save: str | None = None
    on_refusal: str = "end"
    confirm: str | None = None
    say: str | None = None
    goto: str | None = None
    handoff: str | None = None
    end: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step does exactly one of {', '.join(KINDS)}; this one: {kinds}")
        if self.collect is not None and not self.prompt:
            raise ValueError(f"collect {self.collect!r} needs a prompt")
        if self.on_refusal not in ("end", "continue") and not self.on_refusal.startswith("retry:"):
            raise ValueError("on_refusal is end, continue or retry:STEP_ID")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def slot_type(self) -> str:
        return self.type or self.collect or ""


def _regex(pattern: str) -> str:
    """``pattern`` if it compiles; otherwise the error a flow file's reader sees."""
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"{pattern!r} is not a regular expression: {error}") from error
    return pattern


class EntityTrigger(_Strict):
    """A message that names every one of ``entities`` and matches ``pattern`` starts the flow:
    a product with a price limit ("laptop under 2000") is shopping, where a price limit alone
    ("under 5 days") or a product with a price ("I paid $344 for the headphones") is not."""

    entities: list[str] = Field(min_length=1)
    pattern: str = Field(min_length=1)

    @field_validator("pattern")
    @classmethod
    def _compile(cls, pattern: str) -> str:
        return _regex(pattern)


class Triggers(_Strict):
    intents: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    with_entities: list[EntityTrigger] = Field(default_factory=list)
    # A message matching one of these never starts the flow, by pattern or intent: "can I
    # change my email address?" is the account intent, but not a request to see the account.
    unless: list[str] = Field(default_factory=list)
    # Entity kinds that restart this flow when it was the last one to finish ("and in blue?")
    follow_up: list[str] = Field(default_factory=list)
    # Flows whose end the follow_up kinds also continue with this one: the product search
    # after the product details ("in 2 liters?").
    after: list[str] = Field(default_factory=list)
    # When set, a message naming none of these entity kinds starts the flow only if the
    # knowledge base has no confident answer ("do you have a size guide?" is a question).
    entities: list[str] = Field(default_factory=list)

    @field_validator("patterns", "unless")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        return [_regex(pattern) for pattern in patterns]


class Flow(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    triggers: Triggers = Field(default_factory=Triggers)
    requires_auth: bool = False
    summary: str | None = None  # a line for the conversation's running summary when done
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Flow:
        from frontdesk.flows.slots import SLOT_TYPES
        from frontdesk.flows.tools import TOOLS

        ids = [s.id for s in self.steps if s.id]
        if len(ids) != len(set(ids)):
            raise ValueError("step ids must be unique")
        for number, step in enumerate(self.steps, start=1):
            where = f"step {number}"
            target = step.goto or (
                step.on_refusal.removeprefix("retry:")
                if step.on_refusal.startswith("retry:")
                else None
            )
            if target is not None and target not in ids:
                raise ValueError(f"{where}: no step with id {target!r}")
            if step.call is not None and step.call not in TOOLS:
                raise ValueError(
                    f"{where}: no tool {step.call!r} (known: {', '.join(sorted(TOOLS))})"
                )
            if step.collect is not None and step.slot_type not in SLOT_TYPES:
                raise ValueError(
                    f"{where}: no slot type {step.slot_type!r} "
                    f"(known: {', '.join(sorted(SLOT_TYPES))})"
                )
        return self

    def index(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.id == step_id)

    def excludes(self, text: str) -> bool:
        """Whether one of the flow's ``unless`` patterns keeps ``text`` from starting it."""
        combined = _any_of(tuple(self.triggers.unless))
        return combined is not None and combined.search(text) is not None

    def matches(self, text: str, kinds: frozenset[str] | set[str] = frozenset()) -> bool:
        """Whether ``text`` starts the flow by a pattern, or by a ``with_entities`` rule when
        the message names the entity ``kinds``."""
        combined = _any_of(tuple(self.triggers.patterns))
        if combined is not None and combined.search(text) is not None:
            return True
        return any(
            set(rule.entities) <= kinds and re.search(rule.pattern, text, re.IGNORECASE)
            for rule in self.triggers.with_entities
        )


@lru_cache(maxsize=256)
def _any_of(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled alternation of a flow's trigger patterns (checked on every message)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Flows:
    by_name: dict[str, Flow] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def get(self, name: str) -> Flow | None:
        return self.by_name.get(name)

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.by_name.values())


AUTHENTICATE = "authenticate"


def lookup(slots: Mapping[str, Any], path: str) -> Any:
    value: Any = slots
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def render(template: str, slots: Mapping[str, Any]) -> str:
    """``{slot}`` and ``{slot.field}`` replaced by their values (lists one per line)."""

    def value(match: re.Match[str]) -> str:
        found = lookup(slots, match.group(1))
        if found is None:
            return ""
        if isinstance(found, list):
            return "\n".join(str(v) for v in found)
        if isinstance(found, float):
            return f"{found:,.2f}"
        return str(found)

    rendered = _PLACEHOLDER.sub(value, template)
    return re.sub(r"[ \t]+\n", "\n", rendered).strip()


def renders_fully(template: str, slots: Mapping[str, Any]) -> bool:
    """Every ``{slot}`` of ``template`` has a value in ``slots``."""
    return all(lookup(slots, m.group(1)) is not None for m in _PLACEHOLDER.finditer(template))


def render_args(args: Mapping[str, Any], slots: Mapping[str, Any]) -> dict[str, Any]:
    """Tool arguments: a value that is exactly ``{path}`` keeps its type; other strings are
    rendered as text; mappings recurse."""

    def one(raw: Any) -> Any:
        if isinstance(raw, str):
            whole = _PLACEHOLDER.fullmatch(raw.strip())
            return lookup(slots, whole.group(1)) if whole else render(raw, slots)
        if isinstance(raw, Mapping):
            return {k: one(v) for k, v in raw.items()}
        if isinstance(raw, list):
            return [one(v) for v in raw]
        return raw

    return {k: v for k, v in ((k, one(v)) for k, v in args.items()) if v is not None}


def parse_flow(text: str, source: str) -> Flow:
    return parse_yaml_model(text, source, Flow, FlowError)


def load_flows(company_dir: Path | None) -> Flows:
    """Every ``*.yaml`` in the company's ``flows/`` folder; none: no flows."""
    folder = company_dir / "flows" if company_dir is not None else None
    if folder is None or not folder.is_dir():
        return Flows()
    flows: dict[str, Flow] = {}
    for path in sorted(folder.glob("*.yaml")):
        flow = parse_flow(path.read_text(encoding="utf-8"), str(path))
        if flow.name in flows:
            raise FlowError(f"{path}: a flow named {flow.name!r} is defined twice")
        flows[flow.name] = flow
    if any(f.requires_auth for f in flows.values()) and AUTHENTICATE not in flows:
        raise FlowError(
            f"{folder}: flows with requires_auth need an {AUTHENTICATE!r} flow to verify the "
            "customer"
        )
    for flow in flows.values():
        unknown = [name for name in flow.triggers.after if name not in flows]
        if unknown:
            raise FlowError(
                f"{folder}: flow {flow.name!r} comes after {', '.join(map(repr, unknown))}, "
                "which no flow file defines"
            )
    return Flows(flows)
