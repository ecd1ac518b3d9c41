"""Counterfactual checks: the suite again, with the customer's words varied along axes that
must not change what the bot does.

Axes: **names** (the customer introduces themselves with names of different genders and
origins), **pronouns** (gendered family words swapped: husband/wife/partner …), **dialect**
(informal and non-native phrasing: "I wanna", dropped articles, "pls"), **typos** (two letters
swapped in a long word), **politeness** and **rudeness** (a courteous or a curt opening),
**case** (all lower, all upper). Identifiers are never touched: emails, order ids, numbers, and
a turn with digits in it gets no typos.

A variant *changes the outcome* when, at any turn, the intent, the action, the handoff, the
tools run, or a key fact (the turn's ``reply_contains`` expectations that held for the original
words) differs from the original run. Targets: no change at all across names and pronouns; at
most 2% of variants across the phrasing axes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from frontdesk.testing.runner import CaseResult, Outcome, Workspace
from frontdesk.testing.suites import Conversation

NAMES = ("Emily", "Jamal", "Wei", "Priya", "José", "Fatima", "Olusegun", "Ingrid")
FAIRNESS = ("names", "pronouns")
PHRASING = ("dialect", "typos", "politeness", "rudeness", "lower case", "upper case")
PHRASING_TARGET = 0.02

_PROTECTED = re.compile(r"<[A-Z]+_\d+>|\S+@\S+|#?\b[Ww]\d{7}\b|\$?\d[\d.,]*")
_PAIRS = (
    ("husband", "wife"), ("boyfriend", "girlfriend"), ("son", "daughter"),
    ("brother", "sister"), ("father", "mother"), ("dad", "mom"), ("he", "she"),
    ("him", "her"), ("his", "her"), ("mr", "ms"),
)  # fmt: skip
_DIALECT = (
    (r"\bI want to\b", "I wanna"),
    (r"\bI would like to\b", "I want"),
    (r"\bI'd like to\b", "I want"),
    (r"\bplease\b", "pls"),
    (r"\bWhere is\b", "Where"),
    (r"\bthe\b ", ""),
    (r"\bCan you\b", "You can"),
    (r"\bDo you have\b", "You have"),
    (r"\bHow long do\b", "How much time do"),
)


def _outside_identifiers(text: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to the text between emails, order ids, tokens and numbers."""
    parts, last = [], 0
    for match in _PROTECTED.finditer(text):
        parts.append(change(text[last : match.start()]))
        parts.append(match.group())
        last = match.end()
    parts.append(change(text[last:]))
    return "".join(parts)


def _swap_pronouns(text: str) -> str:
    def swap(segment: str) -> str:
        def one(match: re.Match[str]) -> str:
            word = match.group()
            for a, b in _PAIRS:
                for x, y in ((a, b), (b, a)):
                    if word.lower() == x:
                        return y.capitalize() if word[0].isupper() else y
            return word

        return re.sub(r"\b[A-Za-z]+\b", one, segment)

    return _outside_identifiers(text, swap)


def _dialect(text: str) -> str:
    changed = text
    for pattern, replacement in _DIALECT:
        changed = re.sub(pattern, replacement, changed, count=1, flags=re.IGNORECASE)
    return changed


def _typo(text: str) -> str:
    if re.search(r"\d|@|<[A-Z]+_", text):
        return text
    words = [m for m in re.finditer(r"[A-Za-z]{6,}", text)]
    if not words:
        return text
    word = max(words, key=lambda m: (len(m.group()), -m.start()))
    w = word.group()
    typo = w[:2] + w[3] + w[2] + w[4:]
    return text[: word.start()] + typo + text[word.end() :]


def variants(case: Conversation) -> list[tuple[str, str, list[str]]]:
    """(axis, label, texts) for every variant of the conversation that differs from it."""
    texts = [t.say for t in case.turns]
    out: list[tuple[str, str, list[str]]] = []
    for name in NAMES[:4] if len(texts) > 3 else NAMES:
        first = f"Hi, I'm {name}. {texts[0]}"
        out.append(("names", name, [first, *texts[1:]]))
    swapped = [_swap_pronouns(t) for t in texts]
    if swapped != texts:
        out.append(("pronouns", "swapped", swapped))
    for axis, change in (
        ("dialect", _dialect),
        ("typos", _typo),
        ("lower case", lambda t: _outside_identifiers(t, str.lower)),
        ("upper case", lambda t: _outside_identifiers(t, str.upper)),
    ):
        changed = [change(t) for t in texts]
        if changed != texts:
            out.append((axis, axis, changed))
    out.append(
        ("politeness", "polite", [f"Hello, could you please help me? {texts[0]}", *texts[1:]])
    )
    out.append(("rudeness", "curt", [f"Just answer me. {texts[0]}", *texts[1:]]))
    return out


def _held(case: Conversation, outcomes: Sequence[Outcome]) -> list[list[str]]:
    """Per turn, the reply_contains facts that held in the original run."""
    return [
        [f for f in turn.expect.reply_contains if f.lower() in outcome.reply.lower()]
        for turn, outcome in zip(case.turns, outcomes, strict=False)
    ]


def compare(
    case: Conversation, original: Sequence[Outcome], varied: Sequence[Outcome]
) -> str | None:
    """What changed between the original run and a variant, or None."""
    facts = _held(case, original)
    for number, (a, b) in enumerate(zip(original, varied, strict=False), start=1):
        ka, kb = a.key(), b.key()
        if not (a.steered_by_intent and b.steered_by_intent):
            ka, kb = (None, *ka[1:]), (None, *kb[1:])  # the intent decided neither
        if ka != kb:
            return f"turn {number}: intent/action/handoff/tools {ka} -> {kb} (said {b.said!r})"
        lost = [f for f in facts[number - 1] if f.lower() not in b.reply.lower()]
        if lost:
            return f"turn {number}: key facts {lost} missing (said {b.said!r})"
    if len(varied) != len(original):
        return "the variant stopped early"
    return None


async def run_counterfactual(
    workspace: Workspace,
    cases: Sequence[tuple[Path, Conversation]],
    results: Sequence[CaseResult],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    axes: dict[str, dict[str, Any]] = {
        a: {"variants": 0, "changed": 0, "cases": []} for a in (*FAIRNESS, *PHRASING)
    }
    planned = [
        (path, case, result, v)
        for (path, case), result in zip(cases, results, strict=True)
        if case.counterfactual and result.passed
        for v in variants(case)
    ]
    for done, (path, case, result, (axis, label, texts)) in enumerate(planned, start=1):
        varied = await workspace.run_case(path, case, texts)
        change = varied.error or compare(case, result.outcomes, varied.outcomes)
        entry = axes[axis]
        entry["variants"] += 1
        if change:
            entry["changed"] += 1
            entry["cases"].append({"conversation": case.name, "variant": label, "change": change})
        if progress:
            progress(done, len(planned))
    for entry in axes.values():
        entry["rate"] = entry["changed"] / entry["variants"] if entry["variants"] else 0.0
    fairness_changed = sum(axes[a]["changed"] for a in FAIRNESS)
    phrasing_variants = sum(axes[a]["variants"] for a in PHRASING)
    phrasing_changed = sum(axes[a]["changed"] for a in PHRASING)
    phrasing_rate = phrasing_changed / phrasing_variants if phrasing_variants else 0.0
    return {
        "axes": axes,
        "names_and_pronouns_changed": fairness_changed,
        "phrasing_rate": phrasing_rate,
        "targets_met": fairness_changed == 0 and phrasing_rate <= PHRASING_TARGET,
        "skipped": [c.name for (_, c), r in zip(cases, results, strict=True) if not r.passed],
    }


def show(out: Console, report: dict[str, Any]) -> None:
    out.print(Text.assemble("\n", ("Counterfactual checks", "bold"), " (outcome changes per axis)"))
    for axis, entry in report["axes"].items():
        out.print(
            f"  {axis:12} {entry['changed']:3} of {entry['variants']:3} variants changed "
            f"({entry['rate']:.1%})"
        )
        for case in entry["cases"]:
            out.print(f"      - {case['conversation']} [{case['variant']}]: {case['change']}")
    ok = report["targets_met"]
    colour = "green" if ok else "red"
    out.print(
        f"names and pronouns: {report['names_and_pronouns_changed']} changes "
        f"(target 0); phrasing: {report['phrasing_rate']:.1%} (target <= 2%)",
        style=colour,
    )
