"""``frontdesk eval report``: one HTML page with the intent metrics, the conversation suite,
the counterfactual checks and the retrieval quality, compared with the previous report.

Reports go to ``<data dir>/reports/`` (or ``--out``): ``report-<time>.html`` and ``.json``,
and ``latest.json``, which the next report compares against. Charts are inline SVG drawn here:
the page loads nothing from anywhere.
"""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from frontdesk.core.types import utcnow

# name, label, higher is better
TRACKED = (
    ("intent_accuracy", "intent accuracy", True),
    ("intent_macro_f1", "intent macro-F1", True),
    ("oos_recall", "out-of-scope recall", True),
    ("suite_pass_rate", "conversations passing", True),
    ("retrieval_hit1", "retrieval hit@1", True),
    ("retrieval_hit5", "retrieval hit@5", True),
    ("counterfactual_fairness_changes", "name/pronoun outcome changes", False),
    ("counterfactual_phrasing_rate", "phrasing outcome change rate", False),
)
TOLERANCE = 0.005


def retrieval_quality(fd: Any, rows: Sequence[dict[str, str]]) -> dict[str, Any]:
    """hit@1 and hit@5 of the labelled article among the cited articles of the results."""
    hit1 = hit5 = 0
    misses = []
    vectors = fd.embedder.embed([r["question"] for r in rows])
    for row, vector in zip(rows, vectors, strict=True):
        cited: list[str] = []
        for passage in fd.retriever.search_vector(row["question"], vector, 20):
            if passage.cite_id not in cited:
                cited.append(passage.cite_id)
        hit1 += cited[:1] == [row["article"]]
        hit5 += row["article"] in cited[:5]
        if cited[:1] != [row["article"]]:
            misses.append({"question": row["question"], "wanted": row["article"], "got": cited[:3]})
    n = max(len(rows), 1)
    return {"questions": len(rows), "hit1": hit1 / n, "hit5": hit5 / n, "misses": misses}


def read_questions(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [r for r in csv.DictReader(handle) if r.get("question") and r.get("article")]


def tracked(report: dict[str, Any]) -> dict[str, float]:
    values: dict[str, float] = {}
    intents = report.get("intents") or {}
    if intents:
        values["intent_accuracy"] = intents["accuracy"]
        values["intent_macro_f1"] = intents["macro_f1"]
        if intents.get("oos_recall") is not None:
            values["oos_recall"] = intents["oos_recall"]
    suite = report.get("suite") or {}
    if suite.get("conversations"):
        values["suite_pass_rate"] = suite["passed"] / suite["conversations"]
    retrieval = report.get("retrieval") or {}
    if retrieval:
        values["retrieval_hit1"] = retrieval["hit1"]
        values["retrieval_hit5"] = retrieval["hit5"]
    counterfactual = report.get("counterfactual") or {}
    if counterfactual:
        values["counterfactual_fairness_changes"] = counterfactual["names_and_pronouns_changed"]
        values["counterfactual_phrasing_rate"] = counterfactual["phrasing_rate"]
    return values


def compare(now: dict[str, Any], before: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """What got better and what got worse since the previous report (beyond a tolerance)."""
    if before is None:
        return {"better": [], "worse": [], "same": []}
    a, b = tracked(before), tracked(now)
    out: dict[str, list[dict[str, Any]]] = {"better": [], "worse": [], "same": []}
    for key, label, higher in TRACKED:
        if key not in a or key not in b:
            continue
        delta = b[key] - a[key]
        entry = {"metric": label, "before": a[key], "now": b[key]}
        if abs(delta) <= TOLERANCE:
            out["same"].append(entry)
        elif (delta > 0) == higher:
            out["better"].append(entry)
        else:
            out["worse"].append(entry)
    return out


def _bars(rows: Sequence[tuple[str, float]], *, maximum: float = 1.0, percent: bool = True) -> str:
    """A horizontal bar chart as inline SVG."""
    height = 26 * len(rows) + 10
    parts = [
        f'<svg role="img" width="640" height="{height}" viewBox="0 0 640 {height}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value) in enumerate(rows):
        y = 8 + i * 26
        width = 0 if maximum <= 0 else max(0.0, min(1.0, value / maximum)) * 360
        shown = f"{value:.1%}" if percent else f"{value:g}"
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="13">{html.escape(label)}</text>'
            f'<rect x="220" y="{y}" width="{width:.1f}" height="18" fill="#0f766e" rx="3"/>'
            f'<text x="{228 + width:.1f}" y="{y + 14}" font-size="13">{shown}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: Sequence[Sequence[Any]], head: Sequence[str]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def render(report: dict[str, Any], changes: dict[str, list[dict[str, Any]]]) -> str:
    sections: list[str] = []
    values = tracked(report)
    headline = [(label, values[key]) for key, label, _ in TRACKED[:6] if key in values]
    sections.append("<h2>At a glance</h2>" + _bars(headline))
    if changes["better"] or changes["worse"]:
        rows = [
            ("better", c["metric"], f"{c['before']:.4g}", f"{c['now']:.4g}")
            for c in changes["better"]
        ]
        rows += [
            ("worse", c["metric"], f"{c['before']:.4g}", f"{c['now']:.4g}")
            for c in changes["worse"]
        ]
        sections.append(
            "<h2>Since the previous report</h2>" + _table(rows, ["", "metric", "before", "now"])
        )
    elif report.get("previous"):
        sections.append(
            "<h2>Since the previous report</h2><p>No tracked metric moved by more "
            f"than {TOLERANCE:.1%}.</p>"
        )
    intents = report.get("intents")
    if intents:
        per = sorted(intents["per_intent"].items(), key=lambda kv: kv[1]["f1"])
        sections.append(
            f"<h2>Intents</h2><p>{intents['examples']} held-out examples: accuracy "
            f"{intents['accuracy']:.1%}, macro-F1 {intents['macro_f1']:.1%}.</p>"
            + _bars([(k, v["f1"]) for k, v in per])
        )
    suite = report.get("suite")
    if suite:
        failed = [(f["name"], "; ".join(f["problems"])[:300]) for f in suite["failed"]]
        sections.append(
            f"<h2>Conversation tests</h2><p>{suite['passed']} of {suite['conversations']} "
            f"conversations pass ({suite['turns']} turns).</p>"
            + (_table(failed, ["failed", "why"]) if failed else "")
        )
    counterfactual = report.get("counterfactual")
    if counterfactual:
        axes = counterfactual["axes"]
        sections.append(
            "<h2>Counterfactual checks</h2><p>Outcome changes when the customer's words vary "
            "along axes that must not matter (target: none across names and pronouns, at most 2% "
            "across phrasing).</p>"
            + _bars(
                [(k, v["rate"]) for k, v in axes.items()],
                maximum=max([0.05, *(v["rate"] for v in axes.values())]),
            )
            + _table(
                [(k, v["variants"], v["changed"]) for k, v in axes.items()],
                ["axis", "variants", "changed"],
            )
        )
    retrieval = report.get("retrieval")
    if retrieval:
        sections.append(
            f"<h2>Retrieval</h2><p>{retrieval['questions']} labelled questions: hit@1 "
            f"{retrieval['hit1']:.1%}, hit@5 {retrieval['hit5']:.1%}.</p>"
            + _table(
                [(m["question"], m["wanted"], ", ".join(m["got"])) for m in retrieval["misses"]],
                ["question missed at rank 1", "labelled article", "top articles"],
            )
        )
    style = (
        "body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;"
        "color:#1f2937}h1{color:#0f766e}table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
        "td,th{border:1px solid #e5e7eb;padding:.3rem .6rem;text-align:left;font-size:14px}"
        "th{background:#f3f4f6}"
    )
    when = html.escape(report["created_at"])
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Frontdesk evaluation "
        f"{when}</title><style>{style}</style></head><body><h1>Frontdesk evaluation</h1>"
        f"<p>{html.escape(report.get('company', ''))} · {when}</p>{''.join(sections)}"
        "</body></html>"
    )


def save(report: dict[str, Any], folder: Path) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    folder.mkdir(parents=True, exist_ok=True)
    latest = folder / "latest.json"
    before = json.loads(latest.read_text(encoding="utf-8")) if latest.exists() else None
    report["previous"] = before.get("created_at") if before else None
    changes = compare(report, before)
    report["changes"] = changes
    stamp = datetime.fromisoformat(report["created_at"]).strftime("%Y%m%d-%H%M%S")
    page = folder / f"report-{stamp}.html"
    page.write_text(render(report, changes), encoding="utf-8")
    text = json.dumps(report, indent=2, default=str)
    (folder / f"report-{stamp}.json").write_text(text, encoding="utf-8")
    latest.write_text(text, encoding="utf-8")
    return page, changes


def new_report(company: str) -> dict[str, Any]:
    return {"created_at": utcnow().isoformat(timespec="seconds"), "company": company}
