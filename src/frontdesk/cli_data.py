"""``frontdesk customers`` (export, erase) and ``frontdesk retention`` (purge): a customer's
data rights and the retention periods, from the command line (docs/operations.md); and
``frontdesk export finetune`` and ``export messages``: curated conversations as fine-tuning
data, customers' messages for ``train intents --unlabelled`` (docs/learning.md)."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from frontdesk.cli_common import CompanyOpt, DataDirOpt, _settings, _with_service
from frontdesk.cli_learning import console, error, out, say

customers_app = typer.Typer(
    help="A customer's data: export everything held about them (JSON), or erase it.",
    no_args_is_help=True,
)
retention_app = typer.Typer(
    help="Retention: delete messages, vault values and events past their retention period.",
    no_args_is_help=True,
)

RefArg = Annotated[
    str,
    typer.Argument(
        help="The customer: their id (c_...), their email address, or conversation:ID for one "
        "conversation.",
        show_default=False,
    ),
]


def _via() -> str:
    """How the audit log names a command-line request: the operating-system user running it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _fail(exc: Exception) -> typer.Exit:
    error(exc)
    return typer.Exit(1)


def _write_private(path: Path, text: str) -> None:
    """Write the export readable by its owner only: it holds the customer's personal data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)


@customers_app.command("export")
def export(
    ref: RefArg,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the JSON to this file (mode 0600), not to stdout."),
    ] = None,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Everything held about a customer, as one JSON document (audited)."""
    from frontdesk.actions.data_rights import DataRightsError, do_export
    from frontdesk.cli import CompanyFileError

    settings = _settings(company, data_dir)
    try:
        document = asyncio.run(_with_service(settings, lambda fd: do_export(fd, ref, None, _via())))
    except (DataRightsError, *CompanyFileError) as exc:
        raise _fail(exc) from exc
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        print(text, end="")
        return
    _write_private(out, text)
    console.print(f"exported {len(document['conversations'])} conversations to {out}")


@customers_app.command("erase")
def erase(
    ref: RefArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Erase a customer: their messages, vault, conversations, store profile and orders,
    leads, actions, and the analytics rows that identify them (audited; not undoable)."""
    from frontdesk.actions.data_rights import DataRightsError, do_erase, preview_erase
    from frontdesk.cli import CompanyFileError

    settings = _settings(company, data_dir)

    async def work(fd: Any) -> Any:
        if not yes:
            found = await preview_erase(fd, ref)
            store = (
                f"their store profile and {found['orders']} orders, "
                if found["store_customer"]
                else ""
            )
            question = (
                f"Erase {store}{found['conversations']} conversations and everything linked to "
                "them? This cannot be undone"
            )
            if not await asyncio.to_thread(typer.confirm, question):
                return None
        return await do_erase(fd, ref, None, _via())

    try:
        erased = asyncio.run(_with_service(settings, work))
    except (DataRightsError, *CompanyFileError) as exc:
        raise _fail(exc) from exc
    if erased is None:
        console.print("nothing erased")
        raise typer.Exit(1)
    console.print(f"erased {len(erased.conversation_ids)} conversations:")
    for table, count in sorted(erased.counts.items()):
        console.print(f"  {table:36} {count}")
    for what, count in erased.files.items():
        console.print(f"  {what:36} {count}")
    if erased.wal_truncated is False:
        say(
            "warning:",
            "yellow",
            "the SQLite write-ahead log was busy (is the service running?); it still holds "
            "old copies of the erased pages until its next checkpoint",
        )


@retention_app.command("purge")
def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete what is past its retention period (FRONTDESK_RETENTION_*_DAYS) now; the service
    also does it every hour."""
    from frontdesk.actions.retention import purge as run_purge
    from frontdesk.cli import CompanyFileError

    settings = _settings(company, data_dir)
    try:
        counts = asyncio.run(_with_service(settings, lambda fd: run_purge(fd, dry_run=dry_run)))
    except CompanyFileError as exc:
        raise _fail(exc) from exc
    verb = "would delete" if dry_run else "deleted"
    if not counts:
        console.print(f"nothing past its retention period ({verb} nothing)")
        return
    console.print(f"{verb}:")
    for kind, count in counts.items():
        console.print(f"  {kind:20} {count}")


export_app = typer.Typer(
    help="Export curated data for training: OpenAI fine-tuning, customers' messages.",
    no_args_is_help=True,
)


def _print_finetune_report(report: dict[str, Any]) -> None:
    from frontdesk.learning.finetune import SKIP_REASONS

    table = Table("", "count", title="fine-tuning export")
    table.add_row("conversations", str(report["conversations"]))
    table.add_row("examples", str(report["examples"]))
    for part in ("train", "validation"):
        held = report[f"{part}_conversations"]
        plural = "" if held == 1 else "s"
        table.add_row(f"  {part}", f"{report[part]} ({held} conversation{plural})")
    table.add_row("approved (rated good)", str(report["approved"]))
    table.add_row("corrected", str(report["corrected"]))
    table.add_row("skipped", str(report["skipped_total"]))
    for reason, count in report["skipped"].items():
        table.add_row(f"  {SKIP_REASONS.get(reason, reason)}", str(count))
    kinds = ", ".join(f"{k} {n}" for k, n in report["placeholders"].items())
    table.add_row(
        "placeholders added", str(report["placeholders_total"]) + (f" ({kinds})" if kinds else "")
    )
    out.print(table)
    out.print(f"wrote {report['files']['train']} and {report['files']['validation']}")
    if not report["validation"]:
        out.print("validation.jsonl is empty: upload train.jsonl alone")


@export_app.command("finetune")
def export_finetune_command(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for train.jsonl and validation.jsonl.")
    ] = Path("finetune"),
    history: Annotated[
        int, typer.Option("--history", min=0, help="Earlier turns per example, at most.")
    ] = 6,
    validation: Annotated[
        float,
        typer.Option(
            "--validation", help="Share of the conversations for validation.jsonl (0 to <1)."
        ),
    ] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the train/validation split.")] = 0,
    since: Annotated[
        int | None,
        typer.Option("--since", min=1, help="Only replies reviewed in the last DAYS days."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """OpenAI chat fine-tuning JSONL from the bot replies reviewers approved or corrected,
    pseudonymized; split by conversation into train.jsonl and validation.jsonl."""
    from frontdesk.cli import CompanyFileError
    from frontdesk.learning.finetune import ExportError, check_out, export_finetune

    if not 0 <= validation < 1:
        raise typer.BadParameter("must be at least 0 and below 1", param_hint="--validation")
    settings = _settings(company, data_dir)
    try:
        check_out(out_dir)
        report = asyncio.run(
            _with_service(
                settings,
                lambda fd: export_finetune(
                    fd,
                    out_dir,
                    history=history,
                    validation=validation,
                    seed=seed,
                    since_days=since,
                ),
            )
        )
    except (ExportError, *CompanyFileError) as exc:
        raise _fail(exc) from exc
    if as_json:
        print(json.dumps(report.public(), indent=2))
    else:
        _print_finetune_report(report.public())


@export_app.command("messages")
def export_messages_command(
    out_file: Annotated[
        Path, typer.Option("--out", help="The CSV file to write (one column, text).")
    ] = Path("messages.csv"),
    since: Annotated[
        int | None,
        typer.Option("--since", min=1, help="Only messages sent in the last DAYS days."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The customers' distinct messages, pseudonymized, as a CSV for
    `frontdesk train intents --unlabelled`."""
    from frontdesk.cli import CompanyFileError
    from frontdesk.learning.finetune import ExportError
    from frontdesk.learning.messages import check_file, export_messages

    settings = _settings(company, data_dir)
    try:
        check_file(out_file)
        report = asyncio.run(
            _with_service(settings, lambda fd: export_messages(fd, out_file, since_days=since))
        )
    except (ExportError, *CompanyFileError) as exc:
        raise _fail(exc) from exc
    public = report.public()
    if as_json:
        print(json.dumps(public, indent=2))
        return
    kinds = ", ".join(f"{k} {n}" for k, n in public["placeholders"].items())
    out.print(
        f"wrote {public['written']} distinct messages of {public['messages']} to "
        f"{public['file']}" + (f"; placeholders added: {kinds}" if kinds else "")
    )
