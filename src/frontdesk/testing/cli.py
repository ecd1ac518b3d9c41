"""``frontdesk test``: run the suites, print a readable report, write JUnit XML and JSON."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from frontdesk.config import Settings
from frontdesk.testing.runner import CaseResult, Workspace, junit
from frontdesk.testing.suites import SuiteError, load_suites

# Markup off: case names, customer messages and errors are printed as they are (rich would
# read "[...]" in them as styles); colours are Text spans.
out = Console(highlight=False, soft_wrap=True, markup=False)


def _show(result: CaseResult) -> None:
    mark = ("PASS", "green") if result.passed else ("FAIL", "red")
    where = (f"{Path(result.file).name}, {result.seconds:.1f} s", "dim")
    out.print(Text.assemble(mark, f" {result.name}  ", where))
    if result.error:
        out.print(Text.assemble("     ", ("error:", "red"), f" {result.error}"))
    for failure in result.failures:
        out.print(f"     turn {failure.turn}: {failure.said!r}")
        out.print(f"       {failure.check}: expected {failure.expected!r}")
        out.print(f"       {' ' * len(failure.check)}  got      {failure.actual!r}")


def summary(results: list[CaseResult]) -> dict[str, Any]:
    return {
        "conversations": len(results),
        "passed": sum(1 for r in results if r.passed),
        "failed": [
            {
                "name": r.name,
                "file": r.file,
                "problems": [f.line() for f in r.failures] + ([r.error] if r.error else []),
            }
            for r in results
            if not r.passed
        ],
        "turns": sum(len(r.outcomes) for r in results),
    }


def _write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")


async def run_tests(
    settings: Settings,
    paths: list[Path],
    junit_path: Path | None,
    counterfactual: bool,
    report_json: Path | None,
) -> bool:
    from frontdesk.service import default_embedder

    try:
        cases = load_suites(paths)
    except SuiteError as error:
        out.print(Text.assemble(("error:", "red"), f" {error}"))
        return False
    started = time.perf_counter()
    embedder = default_embedder(settings)
    workspace = await Workspace.prepare(
        settings, embedder, lambda line: out.print(line, style="dim")
    )
    try:
        results = []
        for path, case in cases:
            result = await workspace.run_case(path, case)
            results.append(result)
            _show(result)
        facts = summary(results)
        failed = len(facts["failed"])
        colour = "red" if failed else "green"
        out.print(
            Text.assemble(
                (f"{facts['passed']} passed, {failed} failed", colour),
                f" ({facts['turns']} turns in {time.perf_counter() - started:.0f} s)",
            )
        )
        if junit_path is not None:
            junit(results, junit_path)
            out.print(f"JUnit XML: {junit_path}", style="dim")
        ok = failed == 0
        report: dict[str, Any] = {"suite": facts}
        if counterfactual:
            from frontdesk.testing.counterfactual import run_counterfactual, show

            variations = await run_counterfactual(workspace, cases, results)
            show(out, variations)
            report["counterfactual"] = variations
            ok = ok and variations["targets_met"]
        if report_json is not None:
            await asyncio.to_thread(_write_json, report_json, report)
        return ok
    finally:
        workspace.close()
        embedder.close()


async def make_report(
    settings: Settings, out_dir: Path | None, with_counterfactual: bool
) -> tuple[Path, dict[str, Any]]:
    """Gather intents, suite, counterfactual and retrieval figures into one report, saved
    beside the previous one and compared with it."""
    from frontdesk.testing.report import save

    report = await gather_report(settings, with_counterfactual)
    folder = out_dir or settings.data_dir / "reports"
    page, changes = await asyncio.to_thread(save, report, folder)
    for kind in ("better", "worse"):
        for change in changes[kind]:
            out.print(f"{kind}: {change['metric']} {change['before']:.4g} -> {change['now']:.4g}")
    return page, report


async def gather_report(settings: Settings, with_counterfactual: bool) -> dict[str, Any]:
    """The figures of one company folder (and its active intent model, if any): intents on
    intents/test.csv, the tests/ suite, optionally the counterfactual checks, and retrieval on
    evaluation/retrieval.csv."""
    import shutil

    from frontdesk.learning.datasets import load_labelled
    from frontdesk.learning.intents import IntentModel
    from frontdesk.learning.registry import ModelRegistry
    from frontdesk.learning.workflow import KIND, evaluate_intents
    from frontdesk.service import Frontdesk, default_embedder
    from frontdesk.testing.counterfactual import run_counterfactual
    from frontdesk.testing.report import new_report, read_questions, retrieval_quality

    company = settings.company_dir
    if company is None:
        raise SuiteError("eval report needs a company folder (--company or FRONTDESK_COMPANY_DIR)")
    report = new_report(str(company))
    embedder = default_embedder(settings)
    workspace = await Workspace.prepare(
        settings, embedder, lambda line: out.print(line, style="dim")
    )
    try:
        test_csv = company / "intents" / "test.csv"
        model_name = workspace.base.intent_model
        if model_name and test_csv.exists():
            version = ModelRegistry(workspace.folder / "models").get(KIND, model_name)
            model = IntentModel.load(version.path)
            report["intents"] = await asyncio.to_thread(
                evaluate_intents, model, embedder, load_labelled(test_csv)
            )
            out.print(f"intents: accuracy {report['intents']['accuracy']:.1%}")
        tests = company / "tests"
        if tests.is_dir():
            cases = load_suites([tests])
            results = [await workspace.run_case(path, case) for path, case in cases]
            for result in results:
                if not result.passed:
                    _show(result)
            report["suite"] = summary(results)
            out.print(f"conversations: {report['suite']['passed']} of {len(results)} pass")
            if with_counterfactual:
                checks = await run_counterfactual(workspace, cases, results)
                report["counterfactual"] = checks
                out.print(
                    f"counterfactual: {checks['names_and_pronouns_changed']} name/pronoun "
                    f"changes, phrasing {checks['phrasing_rate']:.1%}"
                )
        questions = company / "evaluation" / "retrieval.csv"
        if questions.exists():
            copy = workspace.folder / "retrieval.db"
            shutil.copy(workspace.template, copy)
            fd = Frontdesk(
                workspace.base.model_copy(update={"database_url": f"sqlite+aiosqlite:///{copy}"}),
                embedder=embedder,
            )
            await fd.start()
            try:
                rows = read_questions(questions)
                report["retrieval"] = await asyncio.to_thread(retrieval_quality, fd, rows)
            finally:
                await fd.close()
            out.print(f"retrieval: hit@1 {report['retrieval']['hit1']:.1%}")
        return report
    finally:
        workspace.close()
        embedder.close()
