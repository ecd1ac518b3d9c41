"""Settings from the environment and frontdesk.toml; the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from frontdesk.cli import app
from frontdesk.config import Settings

runner = CliRunner()


def test_that_the_default_database_is_a_sqlite_file_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FRONTDESK_DATABASE_URL", raising=False)
    settings = Settings()
    assert settings.data_dir == Path("var")
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path}/var/frontdesk.db"


def test_that_environment_variables_and_the_toml_file_are_read_in_that_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "frontdesk.toml").write_text(
        'data_dir = "from-toml"\nmax_message_chars = 100\n', encoding="utf-8"
    )
    monkeypatch.setenv("FRONTDESK_MAX_MESSAGE_CHARS", "200")
    settings = Settings()
    assert settings.data_dir == Path("from-toml")
    assert settings.max_message_chars == 200
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    assert Settings().resolved_database_url == "postgresql+asyncpg://u@h/db"


def test_that_an_unknown_setting_in_the_toml_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "frontdesk.toml").write_text("max_mesage_chars = 10\n", encoding="utf-8")
    with pytest.raises(ValueError, match="max_mesage_chars"):
        Settings()


def test_that_the_secret_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    key = settings.resolved_secret_key()
    assert key == settings.resolved_secret_key() and len(key) == 64
    assert (tmp_path / "d" / "secret.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "command",
    [
        "",
        "serve",
        "demo",
        "ingest",
        "chat",
        "migrate",
        "tools",
        "flows",
        "store import",
        "users add",
        "users list",
    ],
)
def test_that_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def _knowledge(tmp_path: Path, name: str, content: str) -> Path:
    """A knowledge folder with one file."""
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / name).write_text(content, encoding="utf-8")
    return kb


def test_that_ingest_loads_a_folder_and_reports_what_it_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kb = _knowledge(tmp_path, "tents.md", "# Tents\n\nOur tents sleep two people.")
    result = runner.invoke(app, ["ingest", str(kb), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert "ingested 1 articles (1 chunks)" in result.output
    again = runner.invoke(app, ["ingest", str(kb), "--data-dir", str(tmp_path / "data")])
    assert "0 chunks embedded, 0 reused, 1 articles unchanged" in again.output


def test_that_ingest_explains_a_bad_faq_file(tmp_path: Path) -> None:
    kb = _knowledge(tmp_path, "faq.csv", "q,a\nx,y\n")
    result = runner.invoke(app, ["ingest", str(kb), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert "question,answer" in result.output


def test_that_the_terminal_chat_answers_and_quits_on_an_empty_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kb = _knowledge(tmp_path, "tents.md", "# Tents\n\nOur tents sleep two people and weigh 2 kg.")
    data = str(tmp_path / "data")
    assert runner.invoke(app, ["ingest", str(kb), "--data-dir", data]).exit_code == 0
    result = runner.invoke(
        app, ["chat", "--data-dir", data], input="how many people fit in a tent?\n\n"
    )
    assert result.exit_code == 0, result.output
    assert "Our tents sleep two people" in result.output
    assert "source: Tents" in result.output


def test_that_migrate_reports_the_schema_revision(tmp_path: Path) -> None:
    result = runner.invoke(app, ["migrate", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert "schema at revision 0005 (newest: 0005)" in result.output


def test_that_tools_prints_the_function_calling_schemas() -> None:
    import json

    result = runner.invoke(app, ["tools", "--json"])
    assert result.exit_code == 0, result.output
    names = [t["function"]["name"] for t in json.loads(result.output)]
    assert "return_delivered_order_items" in names and "search_catalog" in names


def test_that_flows_lists_the_demo_flows_and_names_a_broken_file(tmp_path: Path) -> None:
    from frontdesk.demo import demo_store_dir

    listed = runner.invoke(app, ["flows", "--company", str(demo_store_dir())])
    assert listed.exit_code == 0, listed.output
    assert "return_item" in listed.output and "verifies the customer first" in listed.output
    (tmp_path / "guidelines.yaml").write_text("assistant_name: Bo\n", encoding="utf-8")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "bad.yaml").write_text(
        "name: bad\ndescription: d\nsteps:\n  - call: nope\n", encoding="utf-8"
    )
    broken = runner.invoke(app, ["flows", "--company", str(tmp_path)])
    assert broken.exit_code == 1
    assert "bad.yaml" in broken.output and "no tool 'nope'" in broken.output


def test_that_store_import_loads_the_demo_data(tmp_path: Path) -> None:
    from frontdesk.demo import demo_store_dir

    result = runner.invoke(
        app,
        ["store", "import", "--company", str(demo_store_dir()), "--data-dir", str(tmp_path / "d")],
    )
    assert result.exit_code == 0, result.output
    assert "imported 50 products, 500 customers and 1000 orders" in result.output
    empty = runner.invoke(app, ["store", "import", "--data-dir", str(tmp_path / "d")])
    assert empty.exit_code == 1 and "no data/db.json" in empty.output


def test_that_users_are_added_from_stdin_and_listed(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    added = runner.invoke(
        app,
        [
            "users",
            "add",
            "--email",
            "Ann@Example.com",
            "--role",
            "agent",
            "--name",
            "Ann",
            "--password-stdin",
            "--data-dir",
            data,
        ],
        input="a long enough password\n",
    )
    assert added.exit_code == 0, added.output
    assert "added agent ann@example.com" in added.output
    again = runner.invoke(
        app,
        [
            "users",
            "add",
            "--email",
            "ann@example.com",
            "--role",
            "agent",
            "--password-stdin",
            "--data-dir",
            data,
        ],
        input="a long enough password\n",
    )
    assert again.exit_code == 1 and "exists already" in again.output
    short = runner.invoke(
        app,
        [
            "users",
            "add",
            "--email",
            "bo@example.com",
            "--role",
            "boss",
            "--password-stdin",
            "--data-dir",
            data,
        ],
        input="a long enough password\n",
    )
    assert short.exit_code == 1 and "role must be one of" in short.output
    listed = runner.invoke(app, ["users", "list", "--data-dir", data])
    assert "ann@example.com" in listed.output and "agent" in listed.output


def test_that_production_refuses_placeholder_secrets_and_an_insecure_cookie(
    tmp_path: Path,
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="placeholder"):
        Settings(
            data_dir=tmp_path, environment="production", secret_key="changeme", cookie_secure=True
        )
    with pytest.raises(ValidationError, match="Secure"):
        Settings(data_dir=tmp_path, environment="production", secret_key="k" * 40)
    ok = Settings(
        data_dir=tmp_path, environment="production", secret_key="k" * 40, cookie_secure=True
    )
    assert ok.environment == "production"
    assert Settings(data_dir=tmp_path, secret_key="changeme").environment == "local"


def test_that_fastapi_telemetry_is_off_unless_asked_for(tmp_path: Path) -> None:
    """Off, FastAPI skips its look-up of the OpenTelemetry providers on every request."""
    from frontdesk.api.app import create_app

    settings = Settings(data_dir=tmp_path, secret_key="test-secret")
    off = create_app(settings)
    on = create_app(settings.model_copy(update={"opentelemetry": True}))
    assert not off._native_telemetry.enabled()
    assert [off._telemetry[k] for k in ("tracing", "metrics", "logs")] == [False] * 3
    assert [on._telemetry[k] for k in ("tracing", "metrics", "logs")] == [True] * 3
