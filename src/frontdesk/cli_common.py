"""What every ``frontdesk`` sub-command shares: the --company and --data-dir options, the
settings they make, and a started service to work with."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from frontdesk.cli_learning import say
from frontdesk.config import Settings

CompanyOpt = Annotated[
    Path | None,
    typer.Option(
        "--company",
        help="Company folder with guidelines.yaml and knowledge/ (default: FRONTDESK_COMPANY_DIR).",
        exists=True,
        file_okay=False,
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Folder for the database and keys (default: ./var)."),
]


def _settings(company: Path | None = None, data_dir: Path | None = None) -> Settings:
    overrides: dict[str, object] = {}
    if company is not None:
        overrides["company_dir"] = company
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except Exception as exc:
        say("configuration error:", "red", exc)
        raise typer.Exit(2) from exc


async def _with_service(settings: Settings, work: Any) -> Any:
    from frontdesk.service import Frontdesk

    fd = Frontdesk(settings)
    await fd.start(load_knowledge=False)
    try:
        return await work(fd)
    finally:
        await fd.close()
