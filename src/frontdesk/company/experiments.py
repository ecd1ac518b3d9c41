"""A/B experiments: their definitions, the variant a conversation gets, and what each variant
runs with.

An experiment file (YAML) names its variants, one of them the control (the live setup), and
what each other variant changes: guideline overrides (texts, tone and brand voice for a model's
prompt, escalation rules, ...) merged onto the live guidelines, another folder of flow files,
and/or another version of the intent model. Conversations are split between the variants by a
stable hash of the experiment's name and the conversation's id, in proportion to the weights.

    name: warmer-fallback
    description: Does a warmer fallback keep more customers with the bot?
    control: control
    variants:
      control: {}
      warm:
        guidelines:
          texts:
            fallback: "Sorry, I didn't catch that. Could you say it another way?"
    weights: {control: 50, warm: 50}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from frontdesk.company.guidelines import (
    Guidelines,
    GuidelinesError,
    parse_guidelines,
    parse_yaml_model,
)
from frontdesk.flows.definition import Flows, load_flows

NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class ExperimentError(ValueError):
    """An experiment that cannot be defined, started or stopped; the message says why, and
    ``status`` is the HTTP status the API answers with (422 invalid, 404 unknown, 409 not
    now)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class VariantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    guidelines: dict[str, Any] = Field(
        default_factory=dict, description="Overrides merged onto the live guidelines."
    )
    flows: str | None = Field(
        default=None,
        description="A folder (relative to the company folder) whose flows/ replaces the live.",
    )
    intent_model_version: int | None = Field(default=None, ge=1)

    @property
    def changes_nothing(self) -> bool:
        return not self.guidelines and self.flows is None and self.intent_model_version is None


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    description: str = ""
    control: str = Field(default="control", pattern=NAME)
    variants: dict[str, VariantSpec] = Field(min_length=2, max_length=6)
    weights: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        import re

        for name in self.variants:
            if not re.match(NAME, name):
                raise ValueError(f"variant name {name!r}: use a-z, 0-9, - and _")
        if self.control not in self.variants:
            raise ValueError(f"the control {self.control!r} is not one of the variants")
        if not self.variants[self.control].changes_nothing:
            raise ValueError("the control runs the live setup: leave its variant empty ({})")
        unknown = set(self.weights) - set(self.variants)
        if unknown:
            raise ValueError(f"weights for unknown variants: {', '.join(sorted(unknown))}")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("weights cannot be negative")
        if sum(self.split().values()) <= 0:
            raise ValueError("the weights add up to zero")
        return self

    def split(self) -> dict[str, float]:
        """Each variant's weight (1 when not given), in the variants' order."""
        return {name: float(self.weights.get(name, 1.0)) for name in self.variants}


def parse_experiment(text: str, source: str) -> ExperimentSpec:
    return parse_yaml_model(text, source, ExperimentSpec, ExperimentError)


def assign(spec: ExperimentSpec, conversation_id: str) -> str:
    """The variant of a conversation: stable for the pair, proportional to the weights."""
    digest = hashlib.sha256(f"{spec.name}\0{conversation_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    split = spec.split()
    total = sum(split.values())
    edge = 0.0
    for name, weight in split.items():
        edge += weight / total
        if point < edge:
            return name
    return next(reversed(split))


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` on top of ``base``, mappings merged key by key, anything else replaced."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def live_guidelines_data(company: Path | None) -> dict[str, Any]:
    path = company / "guidelines.yaml" if company is not None else None
    if path is None or not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data if isinstance(data, dict) else {}


def variant_guidelines_text(company: Path | None, variant: VariantSpec) -> str:
    """The guidelines file a variant runs with (and that its promotion installs)."""
    merged = merge(live_guidelines_data(company), variant.guidelines)
    return yaml.safe_dump(merged, sort_keys=False, allow_unicode=True, width=100)


@dataclass(frozen=True, slots=True)
class VariantSetup:
    """What a variant's conversations run with."""

    guidelines: Guidelines
    flows: Flows
    intent_model_version: int | None


def build_variant(company: Path | None, spec: ExperimentSpec, name: str) -> VariantSetup:
    """Validate and load one variant's guidelines and flows; errors name the variant."""
    variant = spec.variants[name]
    where = f"experiment {spec.name!r}, variant {name!r}"
    try:
        guidelines = parse_guidelines(variant_guidelines_text(company, variant), where)
    except GuidelinesError as error:
        raise ExperimentError(str(error)) from error
    flows = load_flows(company)
    if variant.flows is not None:
        if company is None:
            raise ExperimentError(f"{where}: flows need a company folder")
        folder = (company / variant.flows).resolve()
        if not folder.is_relative_to(company.resolve()) or not (folder / "flows").is_dir():
            raise ExperimentError(
                f"{where}: {variant.flows!r} must be a folder inside the company folder "
                "holding a flows/ folder"
            )
        flows = load_flows(folder)
    return VariantSetup(guidelines, flows, variant.intent_model_version)
