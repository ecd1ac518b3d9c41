"""The release gate: a change becomes active only if it passes.

A candidate is a company folder with a new knowledge base, guidelines, flows, tests or
evaluation sets (any of them), and/or a new version of the intent model. The gate evaluates
the live company and the candidate the same way (``gather_report``: intent metrics, the
conversation suite, retrieval quality, optionally the counterfactual checks) and accepts the
candidate only if every conversation of its suite passes and no tracked metric is worse than
the live one by more than the tolerance. Otherwise it refuses, with the report.

An accepted candidate is installed: each part it has replaces the live one (the old part is
kept under ``<data dir>/releases/<time>/previous/``), the model version is activated, and the
knowledge base is brought in line (``ingest``). Every decision is written to
``<data dir>/releases/``: an HTML report and a line in ``releases.jsonl``.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from frontdesk.company.guidelines import load_guidelines
from frontdesk.config import Settings
from frontdesk.core.types import utcnow
from frontdesk.flows.definition import load_flows
from frontdesk.knowledge.documents import load_folder
from frontdesk.testing.report import TRACKED, compare, render, tracked

# What a candidate folder may bring; anything else in it (store data) is not released.
PARTS = ("guidelines.yaml", "flows", "knowledge", "tests", "evaluation", "intents")
DEFAULT_TOLERANCE = 0.01


class ReleaseError(ValueError):
    """A candidate that cannot be evaluated at all (nothing to release, a broken file)."""


@dataclass
class Verdict:
    accepted: bool
    reasons: list[str]
    baseline: dict[str, Any]
    candidate: dict[str, Any]
    report: Path
    installed: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "reasons": self.reasons,
            "baseline": tracked(self.baseline),
            "candidate": tracked(self.candidate),
            "report": str(self.report),
            "installed": self.installed,
        }


def judge(baseline: dict[str, Any], candidate: dict[str, Any], tolerance: float) -> list[str]:
    """Why the candidate is refused (nothing: accepted)."""
    reasons = []
    suite = candidate.get("suite")
    if not suite or not suite.get("conversations"):
        reasons.append("the candidate has no conversation tests (tests/*.yaml) to pass")
    elif suite["failed"]:
        names = ", ".join(f["name"] for f in suite["failed"])
        reasons.append(
            f"{len(suite['failed'])} of {suite['conversations']} conversations fail: {names}"
        )
    before, now = tracked(baseline), tracked(candidate)
    for key, label, higher in TRACKED:
        if key not in before or key not in now or key == "suite_pass_rate":
            continue
        # Counts of unfair outcome changes may not grow at all; rates by the tolerance.
        allowed = 0.0 if key == "counterfactual_fairness_changes" else tolerance
        worse = before[key] - now[key] if higher else now[key] - before[key]
        if worse > allowed + 1e-12:
            reasons.append(
                f"{label} regressed: {before[key]:.4g} -> {now[key]:.4g} (tolerance {allowed:.4g})"
            )
    return reasons


def check_candidate(folder: Path) -> list[str]:
    """The parts the candidate brings, each read and validated as the service would."""
    if not folder.is_dir():
        raise ReleaseError(f"{folder}: not a folder")
    parts = [part for part in PARTS if (folder / part).exists()]
    if not parts:
        raise ReleaseError(f"{folder} has nothing to release: none of {', '.join(PARTS)}")
    if "guidelines.yaml" in parts:
        load_guidelines(folder)
    if "flows" in parts:
        load_flows(folder)
    if "knowledge" in parts:
        load_folder(folder / "knowledge")
    return parts


def _staged_company(live: Path, candidate: Path, parts: list[str], into: Path) -> Path:
    """The live company with the candidate's parts in place (what would run after release)."""
    staged = into / "company"
    shutil.copytree(live, staged, ignore=shutil.ignore_patterns(".*"))
    for part in parts:
        _copy_part(candidate / part, staged / part)
    return staged


def _copy_part(source: Path, target: Path) -> None:
    """Copy a part (a file or a folder) to ``target``, replacing what is there."""
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)


def _staged_models(settings: Settings, version: int, into: Path) -> Path:
    """A copy of the model registry with ``version`` active, for the candidate's run."""
    from frontdesk.learning.registry import ModelRegistry
    from frontdesk.learning.workflow import KIND

    if not settings.intent_model:
        raise ReleaseError("--model-version needs FRONTDESK_INTENT_MODEL (the model's name)")
    data = into / "data"
    shutil.copytree(settings.data_dir / "models", data / "models")
    registry = ModelRegistry(data / "models")
    if version not in registry.versions(KIND, settings.intent_model):
        raise ReleaseError(f"intents model {settings.intent_model!r} has no version {version}")
    registry.activate(KIND, settings.intent_model, version)
    return data


def install(live: Path, candidate: Path, parts: list[str], backup: Path) -> list[str]:
    """Put each part in place: copied beside the live one first, then swapped in by rename,
    the old one moved to ``backup``."""
    for part in parts:
        incoming = live / f".{part}.incoming"
        _copy_part(candidate / part, incoming)
        current = live / part
        if current.exists():
            backup.mkdir(parents=True, exist_ok=True)
            os.replace(current, backup / part)
        os.replace(incoming, current)
    return parts


async def run_release(
    settings: Settings,
    candidate: Path | None,
    *,
    model_version: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    counterfactual: bool = False,
    apply: bool = True,
) -> Verdict:
    """Evaluate the live company and the candidate, judge, and install an accepted one."""
    from frontdesk.testing.cli import gather_report

    live = settings.company_dir
    if live is None:
        raise ReleaseError("the release gate needs the live company folder (--company)")
    if candidate is None and model_version is None:
        raise ReleaseError("give a candidate folder, a --model-version, or both")
    parts = check_candidate(candidate) if candidate is not None else []
    scratch = Path(tempfile.mkdtemp(prefix="frontdesk-release-"))
    try:
        updates: dict[str, Any] = {}
        if candidate is not None:
            updates["company_dir"] = await asyncio.to_thread(
                _staged_company, live, candidate, parts, scratch
            )
        if model_version is not None:
            updates["data_dir"] = await asyncio.to_thread(
                _staged_models, settings, model_version, scratch
            )
            # The live database still (its approved answers, its accepted knowledge gaps).
            updates["database_url"] = settings.resolved_database_url
        baseline = await gather_report(settings, counterfactual)
        proposed = await gather_report(settings.model_copy(update=updates), counterfactual)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    reasons = judge(baseline, proposed, tolerance)
    accepted = not reasons
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    folder = settings.data_dir / "releases"
    page = await asyncio.to_thread(
        _write_report, folder, stamp, accepted, reasons, baseline, proposed
    )
    verdict = Verdict(accepted, reasons, baseline, proposed, page)
    if accepted and apply:
        if candidate is not None:
            verdict.installed = await asyncio.to_thread(
                install, live, candidate, parts, folder / stamp / "previous"
            )
        if model_version is not None:
            await asyncio.to_thread(_activate, settings, model_version)
            verdict.installed.append(f"intents model version {model_version}")
        if "knowledge" in parts:
            await _ingest(settings, live / "knowledge")
    await asyncio.to_thread(
        _log, folder, stamp, candidate, model_version, verdict, applied=accepted and apply
    )
    return verdict


def _activate(settings: Settings, version: int) -> None:
    from frontdesk.learning.registry import ModelRegistry
    from frontdesk.learning.workflow import KIND

    assert settings.intent_model
    ModelRegistry(settings.data_dir / "models").activate(KIND, settings.intent_model, version)


async def _ingest(settings: Settings, folder: Path) -> None:
    from frontdesk.service import Frontdesk

    fd = Frontdesk(settings.model_copy(update={"analytics_rollup_seconds": 0}))
    await fd.start(load_knowledge=False)
    try:
        await fd.ingest(folder)
    finally:
        await fd.close()


def _write_report(
    folder: Path,
    stamp: str,
    accepted: bool,
    reasons: list[str],
    baseline: dict[str, Any],
    candidate: dict[str, Any],
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    candidate = {**candidate, "previous": baseline.get("created_at")}
    changes = compare(candidate, baseline)
    verdict = "accepted" if accepted else "refused"
    page = render(candidate, changes)
    why = "".join(f"<li>{html.escape(r)}</li>" for r in reasons) or "<li>every check passed</li>"
    banner = (
        f"<section><h2>Release {verdict}</h2><p>Compared with the live company.</p>"
        f"<ul>{why}</ul></section>"
    )
    page = page.replace("</h1>", f"</h1>{banner}", 1)
    path = folder / f"release-{stamp}-{verdict}.html"
    path.write_text(page, encoding="utf-8")
    body = {"verdict": verdict, "reasons": reasons, "baseline": baseline, "candidate": candidate}
    path.with_suffix(".json").write_text(json.dumps(body, indent=2, default=str), "utf-8")
    return path


def _log(
    folder: Path,
    stamp: str,
    candidate: Path | None,
    model_version: int | None,
    verdict: Verdict,
    *,
    applied: bool,
) -> None:
    entry = {
        "at": datetime.strptime(stamp, "%Y%m%d-%H%M%S").isoformat(),
        "candidate": str(candidate) if candidate else None,
        "model_version": model_version,
        "accepted": verdict.accepted,
        "applied": applied,
        "reasons": verdict.reasons,
        "installed": verdict.installed,
        "report": str(verdict.report),
    }
    with (folder / "releases.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
