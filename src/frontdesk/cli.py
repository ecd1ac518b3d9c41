"""The ``frontdesk`` command: serve, demo, ingest, chat, migrate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from frontdesk import __version__
from frontdesk.adapters.store.shop import StoreDataError
from frontdesk.cli_common import CompanyOpt, DataDirOpt, _settings, _with_service
from frontdesk.cli_learning import ProgressBar, console, error
from frontdesk.company.guidelines import GuidelinesError
from frontdesk.config import Settings
from frontdesk.flows.definition import FlowError
from frontdesk.knowledge.documents import KnowledgeError

# Mistakes in a company's files: reported in one line each, exit status 1.
CompanyFileError = (GuidelinesError, FlowError, StoreDataError, KnowledgeError)

app = typer.Typer(
    name="frontdesk",
    help="Frontdesk: a self-hosted AI front desk for customer service and sales.",
    no_args_is_help=True,
    add_completion=False,
)


async def _ingest(settings: Settings, folder: Path) -> None:
    from frontdesk.service import Frontdesk

    fd = Frontdesk(settings)
    await fd.start(load_knowledge=False)
    try:
        with ProgressBar() as bar:
            report = await fd.ingest(folder, lambda done, total: bar("embedding", done, total))
    finally:
        await fd.close()
    console.print(
        f"ingested {report.articles} articles ({report.chunks} chunks) from {folder}: "
        f"{report.embedded} chunks embedded, {report.reused} reused, "
        f"{report.unchanged_articles} articles unchanged, {report.removed_articles} removed"
    )


@app.command()
def ingest(
    path: Annotated[
        Path,
        typer.Argument(
            help="Folder of Markdown articles (*.md) and FAQ files (*.csv).",
            exists=True,
            file_okay=False,
        ),
    ],
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Load a folder of articles and FAQs into the knowledge base (only changes re-embed)."""
    settings = _settings(company, data_dir)
    try:
        asyncio.run(_ingest(settings, path))
    except CompanyFileError as exc:
        error(exc)
        raise typer.Exit(1) from exc


def _run_server(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from frontdesk.api.app import create_app

    console.print(f"Frontdesk {__version__} on http://{host}:{port}  (API docs: /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the service (REST API, WebSocket chat, widget) with the configured company."""
    settings = _settings(company, data_dir)
    try:
        _run_server(settings, host, port)
    except CompanyFileError as exc:
        error(exc)
        raise typer.Exit(1) from exc


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the demo database lives.")
    ] = Path("var/demo"),
    simulate: Annotated[
        int,
        typer.Option(
            "--simulate",
            metavar="N",
            min=0,
            help="First play N simulated customer conversations through the real pipeline, "
            "spread over the last weeks, so that the analytics dashboard has data.",
        ),
    ] = 0,
    weeks: Annotated[
        int, typer.Option("--weeks", min=1, max=52, help="How many weeks the simulation spans.")
    ] = 6,
    seed: Annotated[
        int, typer.Option("--seed", help="The simulation's seed (same seed, same conversations).")
    ] = 7,
    simulate_only: Annotated[
        bool, typer.Option("--simulate-only", help="Exit after the simulation, serve nothing.")
    ] = False,
) -> None:
    """Serve the bundled demo store (Northwind Outfitters) on a local SQLite database.

    The first start trains the demo's intent model and embeds its help centre; later starts
    reuse both. With --simulate N it first plays N customer conversations (help-centre
    questions, orders, shopping, handoffs to simulated agents, ratings) dated over the last
    --weeks weeks."""
    settings = _prepare_demo(data_dir)
    if simulate:
        try:
            asyncio.run(_simulate(settings, simulate, weeks, seed))
        except CompanyFileError as exc:
            error(exc)
            raise typer.Exit(1) from exc
    if simulate_only:
        return
    _run_server(settings, host, port)


async def _simulate(settings: Settings, count: int, weeks: int, seed: int) -> None:
    from frontdesk.analytics.simulate import simulate
    from frontdesk.service import Frontdesk

    fd = Frontdesk(settings)
    await fd.start()
    try:
        with ProgressBar() as bar:
            report = await simulate(
                fd,
                count,
                weeks=weeks,
                seed=seed,
                progress=lambda done, total: bar("simulating", done, total),
            )
    finally:
        await fd.close()
    for line in report.summary():
        console.print(line, highlight=False)


def _prepare_demo(data_dir: Path) -> Settings:
    """Demo settings, with the demo's intent model trained and its help centre ingested."""
    from frontdesk.demo import demo_settings, demo_store_dir, ensure_demo_intents

    settings = demo_settings(data_dir)
    with ProgressBar() as bar:
        if ensure_demo_intents(settings, bar):
            console.print("trained the demo store's intent model")
    asyncio.run(_ingest(settings, demo_store_dir() / "knowledge"))
    return settings


async def _chat(settings: Settings) -> None:
    from frontdesk.actions.conversations import (
        InvalidMessage,
        MessageTooLong,
        do_create_conversation,
        do_receive_customer_message,
    )
    from frontdesk.service import Frontdesk

    fd = Frontdesk(settings)
    await fd.start()
    try:
        conversation = await do_create_conversation(fd, "cli")
        console.print(
            Text.assemble(
                (fd.guidelines.assistant_name, "bold"),
                f": {fd.guidelines.texts.greeting}\n",
                ("(empty line or Ctrl-D to quit)", "dim"),
            )
        )
        while True:
            try:
                text = await asyncio.to_thread(input, "you> ")
            except EOFError:
                break
            if not text.strip():
                break
            try:
                result = await do_receive_customer_message(fd, conversation.id, text, None)
            except (InvalidMessage, MessageTooLong) as exc:
                console.print(str(exc), style="red")
                continue
            for reply in result.replies:
                sources = ", ".join(c.title for c in reply.citations)
                print(f"{fd.guidelines.assistant_name}> {reply.text}")
                if sources:
                    console.print(f"  source: {sources}  ({result.server_ms:.1f} ms)", style="dim")
            if result.handoff:
                console.print("(handed over to a person)", style="yellow")
    finally:
        await fd.close()


@app.command()
def chat(
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
    demo_store: Annotated[
        bool, typer.Option("--demo", help="Chat with the demo store (var/demo).")
    ] = False,
) -> None:
    """Chat with the engine in the terminal, to try answers quickly."""
    if demo_store:
        settings = _prepare_demo(data_dir or Path("var/demo"))
    else:
        settings = _settings(company, data_dir)
    asyncio.run(_chat(settings))


@app.command()
def migrate(data_dir: DataDirOpt = None) -> None:
    """Apply database migrations (the service also does this on start)."""
    from frontdesk.adapters.store.database import Database

    settings = _settings(None, data_dir)

    async def run() -> tuple[str | None, str | None]:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            return await db.schema_revision()
        finally:
            await db.dispose()

    current, head = asyncio.run(run())
    console.print(f"schema at revision {current} (newest: {head})")


store_app = typer.Typer(help="The store's data: customers, orders, products.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("import")
def store_import(company: CompanyOpt = None, data_dir: DataDirOpt = None) -> None:
    """Replace the store's data in the database with the company's data/db.json.

    The service imports it by itself on a first start; run this after the file changed.
    Profiles and addresses are sealed, customers get keyed ids (see docs/privacy.md)."""
    from frontdesk.service import Frontdesk

    settings = _settings(company, data_dir)
    if settings.company_dir is None or not (settings.company_dir / "data" / "db.json").exists():
        error("the company folder has no data/db.json to import")
        raise typer.Exit(1)

    async def run() -> dict[str, int] | None:
        fd = Frontdesk(settings)
        await fd.start(load_knowledge=False)
        try:
            return await fd.load_store(replace=True)
        finally:
            await fd.close()

    try:
        counts = asyncio.run(run())
    except CompanyFileError as exc:
        error(exc)
        raise typer.Exit(1) from exc
    assert counts is not None
    console.print(
        f"imported {counts['products']} products, {counts['customers']} customers and "
        f"{counts['orders']} orders"
    )


users_app = typer.Typer(help="Console accounts: agents, reviewers, admins.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Option("--email", help="The login email.")],
    role: Annotated[str, typer.Option("--role", help="admin, agent or reviewer.")],
    name: Annotated[str, typer.Option("--name", help="Shown to colleagues.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a console account; the password comes from a prompt (or stdin)."""
    import sys

    from frontdesk.actions.accounts import AccountError, do_add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = _settings(company, data_dir)
    try:
        user = asyncio.run(
            _with_service(settings, lambda fd: do_add_user(fd, email, name, role, password))
        )
    except (AccountError, *CompanyFileError) as exc:
        error(exc)
        raise typer.Exit(1) from exc
    console.print(f"added {user.role} {user.email}")


@users_app.command("list")
def users_list(company: CompanyOpt = None, data_dir: DataDirOpt = None) -> None:
    """List the console accounts."""
    from frontdesk.adapters.store import people

    settings = _settings(company, data_dir)

    async def read(fd: Any) -> list[people.User]:
        found: list[people.User] = await fd.db.run(people.users)
        return found

    for user in asyncio.run(_with_service(settings, read)):
        print(f"{user.email:32} {user.role:9} {user.name}")


@app.command("test")
def test_suites(
    paths: Annotated[list[Path], typer.Argument(help="Test files (*.yaml) or folders of them.")],
    company: CompanyOpt = None,
    junit_path: Annotated[
        Path | None, typer.Option("--junit", help="Also write JUnit XML here.")
    ] = None,
    counterfactual: Annotated[
        bool,
        typer.Option(
            "--counterfactual",
            help="Also re-run every conversation with the customer's words varied (names, "
            "pronouns, dialect, typos, politeness, case) and report outcome changes.",
        ),
    ] = False,
    report_json: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here.")
    ] = None,
) -> None:
    """Run conversation test suites through the real pipeline on a scratch copy of the data.

    Exits with 1 when a conversation fails (or, with --counterfactual, when an outcome changes
    beyond the targets), so a company can gate its CI on it."""
    from frontdesk.testing.cli import run_tests

    settings = _settings(company or _company_of(paths), None)
    try:
        ok = asyncio.run(run_tests(settings, paths, junit_path, counterfactual, report_json))
    except CompanyFileError as exc:
        error(exc)
        raise typer.Exit(2) from exc
    raise typer.Exit(0 if ok else 1)


def _eval_report(
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the reports (default: DATA_DIR/reports)."),
    ] = None,
    counterfactual: Annotated[
        bool, typer.Option(help="Include the counterfactual checks (the slow part).")
    ] = True,
) -> None:
    """One HTML page: intent metrics, conversation tests, counterfactual checks and retrieval
    quality, compared with the previous report (what got better, what got worse)."""
    from frontdesk.testing.cli import make_report
    from frontdesk.testing.suites import SuiteError

    settings = _settings(company, data_dir)
    try:
        page, _ = asyncio.run(make_report(settings, out, counterfactual))
    except (SuiteError, *CompanyFileError) as exc:
        error(exc)
        raise typer.Exit(1) from exc
    console.print(f"report: {page}")


@app.command("release")
def release(
    candidate: Annotated[
        Path | None,
        typer.Argument(
            help="A company folder with the new guidelines.yaml, flows/, knowledge/, tests/, "
            "evaluation/ or intents/ (any of them).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    model_version: Annotated[
        int | None,
        typer.Option("--model-version", help="Also (or only) release this intents model version."),
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", min=0, max=1, help="How much a tracked metric may drop."),
    ] = 0.01,
    counterfactual: Annotated[
        bool, typer.Option(help="Also compare the counterfactual checks (slow).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Judge only; install nothing.")
    ] = False,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The release gate: evaluate the live company (--company) and the candidate the same way,
    and install the candidate only if its conversation suite passes and no tracked metric
    (intent accuracy, retrieval hit@1 and hit@5, ...) is worse beyond --tolerance. A refused
    candidate changes nothing; exit status 1, with the report."""
    from frontdesk.testing.release import ReleaseError, run_release

    settings = _settings(company, data_dir)
    try:
        verdict = asyncio.run(
            run_release(
                settings,
                candidate,
                model_version=model_version,
                tolerance=tolerance,
                counterfactual=counterfactual,
                apply=not dry_run,
            )
        )
    except (ReleaseError, *CompanyFileError) as exc:
        error(exc)
        raise typer.Exit(2) from exc
    if verdict.accepted:
        done = (
            "judged only (--dry-run)" if dry_run else "installed: " + ", ".join(verdict.installed)
        )
        console.print(Text.assemble(("release accepted", "green"), f"; {done}"))
    else:
        console.print(Text.assemble(("release refused", "red"), ":"))
        for reason in verdict.reasons:
            console.print(f"  - {reason}")
    console.print(f"report: {verdict.report}")
    raise typer.Exit(0 if verdict.accepted else 1)


def _company_of(paths: list[Path]) -> Path | None:
    """The company folder a tests folder sits in (examples/demo-store/tests -> demo-store)."""
    for path in paths:
        for parent in (path, *path.resolve().parents):
            if (parent / "guidelines.yaml").exists():
                return parent
    return None


@app.command()
def tools(
    json_: Annotated[
        bool, typer.Option("--json", help="Print the OpenAI function-calling schemas.")
    ] = False,
) -> None:
    """List the tools flows (and LLM backends, by function calling) may call."""
    import json

    from frontdesk.flows.tools import TOOLS, schemas

    if json_:
        print(json.dumps(schemas(), indent=2))
        return
    for name in sorted(TOOLS):
        tool = TOOLS[name]
        marks = ", ".join(
            m for m, on in (("verified customer", tool.needs_auth), ("writes", tool.writes)) if on
        )
        print(f"{name:32} {tool.description}" + (f" [{marks}]" if marks else ""))


@app.command()
def flows(company: CompanyOpt = None) -> None:
    """Check the company's flow files and list the flows with their triggers."""
    from frontdesk.flows.definition import load_flows

    settings = _settings(company, None)
    try:
        found = load_flows(settings.company_dir)
    except FlowError as exc:
        error(exc)
        raise typer.Exit(1) from exc
    if not found:
        console.print("no flows (the company folder has no flows/*.yaml)")
        return
    for flow in found:
        triggers = ", ".join(flow.triggers.intents) or "-"
        verify = " (verifies the customer first)" if flow.requires_auth else ""
        print(f"{flow.name:24} {len(flow.steps):2} steps  intents: {triggers}{verify}")


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def _learning() -> None:
    from frontdesk.cli_learning import eval_app, models_app, train_app

    app.add_typer(train_app, name="train")
    eval_app.command("report")(_eval_report)
    app.add_typer(eval_app, name="eval")
    app.add_typer(models_app, name="models")


_learning()


def _analytics() -> None:
    from frontdesk.cli_analytics import analytics_app, experiments_app, reviews_app

    app.add_typer(analytics_app, name="analytics")
    app.add_typer(experiments_app, name="experiments")
    app.add_typer(reviews_app, name="reviews")
    from frontdesk.cli_insights import insights_app

    app.add_typer(insights_app, name="insights")


_analytics()


def _data_rights() -> None:
    from frontdesk.cli_data import customers_app, export_app, retention_app

    app.add_typer(customers_app, name="customers")
    app.add_typer(retention_app, name="retention")
    app.add_typer(export_app, name="export")


_data_rights()


def _keys() -> None:
    from frontdesk.cli_keys import keys_app

    app.add_typer(keys_app, name="keys")


_keys()


def main() -> None:
    app(prog_name="frontdesk")


if __name__ == "__main__":  # pragma: no cover
    main()
