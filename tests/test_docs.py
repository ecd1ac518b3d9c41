"""The docs match the code: every setting and every command is documented."""

from __future__ import annotations

from pathlib import Path

from frontdesk.cli import app
from frontdesk.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_that_every_setting_is_documented() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [n for n in Settings.model_fields if f"`FRONTDESK_{n.upper()}`" not in page]
    assert missing == [], f"settings missing from docs/configuration.md: {missing}"


def test_that_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [
        c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands
    ]
    commands += [g.name for g in app.registered_groups if g.name]
    assert {"train", "eval", "models"} <= set(commands)
    missing = [c for c in commands if f"`frontdesk {c}" not in readme]
    assert missing == [], f"commands missing from README.md: {missing}"
    assert readme.index("make demo") < 400 and readme.index("make test") < 400


def test_that_the_readme_links_to_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in (
        "docs/architecture.md",
        "docs/configuration.md",
        "docs/privacy.md",
        "docs/operations.md",
        "docs/benchmarks.md",
        "docs/flows.md",
        "docs/console.md",
        "docs/testing.md",
        "docs/images/handoff-customer-reply.png",
        "docs/images/widget.png",
        "docs/images/flow-return.png",
    ):
        assert page in readme
        assert (ROOT / page).exists(), page
