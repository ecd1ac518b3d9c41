"""``frontdesk keys``: the encryption keys of the data at rest: list, rotate, retire."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from frontdesk.cli_common import CompanyOpt, DataDirOpt, _settings, _with_service
from frontdesk.cli_learning import ProgressBar, console, error, out

keys_app = typer.Typer(
    help="Encryption keys: list them, rotate to a new one, retire an old one.",
    no_args_is_help=True,
)


def _run(company: Path | None, data_dir: Path | None, work: Any) -> Any:
    """Run ``work`` on a started service; a refusal is one red line and exit status 1."""
    from frontdesk.actions.keys import KeysError
    from frontdesk.adapters.crypto import KeyringError
    from frontdesk.cli import CompanyFileError

    settings = _settings(company, data_dir)
    try:
        return asyncio.run(_with_service(settings, work))
    except (KeysError, KeyringError, *CompanyFileError) as exc:
        error(exc)
        raise typer.Exit(1) from exc


@keys_app.command("list")
def keys_list(company: CompanyOpt = None, data_dir: DataDirOpt = None) -> None:
    """Show the keys, which one seals new values, and how many values each one seals."""
    from frontdesk.actions.keys import key_uses

    async def work(fd: Any) -> tuple[Any, Any, str]:
        uses, unknown = await key_uses(fd)
        path = fd.sealer.key_file
        source = str(path) if path is not None else "FRONTDESK_ENCRYPTION_KEYS"
        return uses, unknown, source

    uses, unknown, source = _run(company, data_dir, work)
    out.print(f"keys from {source}", highlight=False)
    for use in uses:
        key = use.key
        state = "active" if key.active else "      "
        origin = key.origin + (f", added {key.created}" if key.created else "")
        out.print(f"{key.id:14} {state} {use.values:>9} values  ({origin})", highlight=False)
        for name, count in sorted(use.columns.items()):
            out.print(f"{'':22} {count:>9}  {name}", highlight=False)
    if unknown:
        total = sum(unknown.values())
        where = ", ".join(f"{name} {count}" for name, count in sorted(unknown.items()))
        out.print(
            Text.assemble(
                (f"{total} values are sealed under no key listed here", "yellow"), f" ({where})"
            )
        )


@keys_app.command("rotate")
def keys_rotate(
    no_new_key: Annotated[
        bool,
        typer.Option(
            "--no-new-key",
            help="Add no key: only re-encrypt what is under older keys (to finish a rotation "
            "that was interrupted).",
        ),
    ] = False,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Seconds to keep waiting for values still sealed under an old key by a "
            "service that has not read the new key yet.",
        ),
    ] = 60.0,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add a new key, make it active and re-encrypt every value under it, on a live database.

    The running service reads the new key within seconds. Each batch of rows is one
    transaction and a row is only rewritten if nobody changed it meanwhile, so it is safe while
    the service runs. Afterwards `frontdesk keys retire OLD_KEY` removes the old key."""
    from frontdesk.actions.keys import rotate

    async def work(fd: Any) -> Any:
        with ProgressBar() as bar:
            return await rotate(fd, new_key=not no_new_key, progress=bar, wait_seconds=wait)

    report = _run(company, data_dir, work)
    if report.added:
        console.print(f"new key {report.key_id} added and active", highlight=False)
    for name, count in sorted(report.resealed.items()):
        out.print(f"{count:>9}  {name}", highlight=False)
    total = sum(report.resealed.values())
    console.print(
        f"re-encrypted {total} values under {report.key_id} in {report.seconds:.1f} s",
        highlight=False,
    )
    if not report.complete:
        left = ", ".join(f"{n} {c}" for n, c in sorted(report.remaining.items()))
        unreadable = sum(report.unreadable.values())
        error(
            f"values are still sealed under other keys ({left}); {unreadable} of them do not "
            "open with the keys this command holds. Run `frontdesk keys list`, and "
            "`frontdesk keys rotate --no-new-key` again once every service reads the key file"
        )
        raise typer.Exit(1)
    old = [k for k in report.previous if k != report.key_id]
    if old:
        console.print(
            f"nothing is sealed under {', '.join(old)} any more: "
            f"`frontdesk keys retire KEY_ID` removes a key",
            highlight=False,
        )


@keys_app.command("retire")
def keys_retire(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key to remove.")],
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove a key from the key file; refused while any value is still sealed under it.

    Keep a backup of the key file from before: a database backup made while the key was in
    use needs it."""
    from frontdesk.actions.keys import retire

    _run(company, data_dir, lambda fd: retire(fd, key_id))
    console.print(f"key {key_id} retired", highlight=False)
