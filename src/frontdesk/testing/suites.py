"""The conversation test file: YAML, one or more conversations per file.

```yaml
conversations:
  - name: a return with confirmation
    turns:
      - say: I want to return the grill from order #W1067251
        expect:
          flow: authenticate            # the flow waiting after this turn (null: none)
          reply_contains: [email address]
      - say: raj.sanchez2046@example.com
      - say: back to the original payment method
        expect: {reply_contains: ["Shall I go ahead?"]}
      - say: "yes"
        expect:
          tool_call: {name: return_delivered_order_items, args: {order_id: "#W1067251"}}
          reply_contains: [your return is booked]
          database: [{order: "#W1067251", status: return requested}]
```

What a turn may expect (all optional; a turn without ``expect`` only has to get a reply):
``intent``, ``entities`` (``kind=value`` strings that must all be found), ``flow``,
``action`` (answer, flow, handoff, rephrase, offer_human …), ``reason``, ``reply_contains``,
``reply_not_contains`` (case-insensitive), ``citation`` (an article id or title among the
reply's citations; ``null``: none), ``tool_call`` (``name``, ``args`` that must match, ``ok``),
``no_tool_call`` (names that must not run), ``handoff`` (bool), ``handoff_reason``, and
``database``: order statuses (``{order, status}``), event counts (``{event, count}``) and the
number of leads (``{leads: N}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from frontdesk.company.guidelines import parse_yaml_model


class SuiteError(ValueError):
    """A test file that is not YAML or does not match the format."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolCallExpectation(_Strict):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    ok: bool = True


class DatabaseExpectation(_Strict):
    order: str | None = None
    status: str | None = None
    event: str | None = None
    count: int | None = None
    leads: int | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> DatabaseExpectation:
        kinds = [
            self.order is not None and self.status is not None,
            self.event is not None and self.count is not None,
            self.leads is not None,
        ]
        if sum(kinds) != 1:
            raise ValueError("a database check is {order, status}, {event, count} or {leads}")
        return self


class Expect(_Strict):
    intent: str | None = None
    entities: list[str] = Field(default_factory=list)
    flow: str | None = Field(default="__any__")
    action: str | None = None
    reason: str | None = None
    reply_contains: list[str] = Field(default_factory=list)
    reply_not_contains: list[str] = Field(default_factory=list)
    citation: str | None = Field(default="__any__")
    tool_call: ToolCallExpectation | None = None
    no_tool_call: list[str] = Field(default_factory=list)
    handoff: bool | None = None
    handoff_reason: str | None = None
    database: list[DatabaseExpectation] = Field(default_factory=list)


class Turn(_Strict):
    say: str = Field(min_length=1, max_length=4000)
    expect: Expect = Field(default_factory=Expect)


class Conversation(_Strict):
    name: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    turns: list[Turn] = Field(min_length=1)
    # Whether the counterfactual checks vary this conversation (off for one that is about
    # the exact wording, such as a test of upper-case frustration).
    counterfactual: bool = True


class SuiteFile(_Strict):
    conversations: list[Conversation] = Field(min_length=1)


def parse_suite(text: str, source: str) -> SuiteFile:
    return parse_yaml_model(
        text, source, SuiteFile, SuiteError, what="a mapping with 'conversations'"
    )


def find_files(paths: list[Path]) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` file under the given files and folders, in order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.exists():
            found.append(path)
        else:
            raise SuiteError(f"{path}: no such file or folder")
    if not found:
        raise SuiteError(f"no test files (*.yaml) in {', '.join(str(p) for p in paths)}")
    return found


def load_suites(paths: list[Path]) -> list[tuple[Path, Conversation]]:
    cases: list[tuple[Path, Conversation]] = []
    for path in find_files(paths):
        suite = parse_suite(path.read_text(encoding="utf-8"), str(path))
        cases += [(path, c) for c in suite.conversations]
    return cases
