"""The one settings object, read from ``LIUHEN_*`` environment variables at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.i18n import SUPPORTED_LOCALES, normalize_locale


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIUHEN_", env_file=None, extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Folder for the embedded database and keys.")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at DATA_DIR/liuhen.db.",
    )
    read_database_url: str = Field(
        default="",
        description="SQLAlchemy URL of a read replica for auditor queries (trace listings, event-log exports, case "
                    "search, statistics, the board); empty means they read the primary database.",
    )
    db_pool_size: int = Field(
        default=5, ge=1, le=1000,
        description="PostgreSQL connections that stay open in each process's pool between requests, for the "
                    "primary and for the replica each.",
    )
    db_max_overflow: int = Field(
        default=10, ge=0, le=1000,
        description="Connections a process may open above db_pool_size under load; they close when returned.",
    )
    db_pool_timeout: float = Field(
        default=30, gt=0, le=3600,
        description="Seconds a request waits for a free pooled connection before it fails.",
    )
    locale: str = Field(default="zh_CN", description="Language of CLI output: zh_CN or en.")
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = Field(default=5 * 1024 * 1024, description="Largest BPMN file accepted.")
    max_xml_depth: int = Field(default=256, description="Deepest XML element nesting accepted.")
    max_xml_elements: int = Field(default=200_000, description="Most XML elements in one BPMN file.")
    token_ttl_minutes: int = Field(default=8 * 60, description="Lifetime of a login token.")
    max_request_bytes: int = Field(
        default=1024 * 1024, ge=1024,
        description="Largest request body accepted by an endpoint that reads JSON or a form, in bytes. "
                    "Endpoints that take a BPMN or CSV file accept max_upload_bytes instead.",
    )
    login_max_failures: int = Field(
        default=5, ge=1,
        description="Failed sign-ins for one username within login_window_seconds before further attempts "
                    "get 429.",
    )
    login_max_failures_per_address: int = Field(
        default=50, ge=1,
        description="Failed sign-ins from one client address within login_window_seconds before further "
                    "attempts get 429. Higher than the per-user limit, because an office shares one address.",
    )
    login_window_seconds: int = Field(
        default=15 * 60, ge=1,
        description="Window over which failed sign-ins are counted, in seconds.",
    )
    processes_dir: Path = Field(default=Path("processes"), description="Shipped flowcharts.")
    signing_key_path: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs checkpoints, created with mode 0600 on first use; "
                    "empty means DATA_DIR/signing-key.pem.",
    )
    grade_rules: Path | None = Field(
        default=None,
        description="TOML file of the rules that grade departments; empty means the shipped "
                    "engine/grading_rules.toml.",
    )

    card_yellow_days_left: int = Field(
        default=1, ge=0, le=100,
        description="A clock gets a yellow card once this many working days or fewer are left.",
    )
    card_yellow_share_left: float = Field(
        default=0.2, ge=0, le=1,
        description="A clock also gets a yellow card once this share of its working days or less is left, "
                    "from 0 to 1.",
    )

    idempotency_key_hours: int = Field(
        default=24, ge=1, le=24 * 90,
        description="Hours the stored response to a request sent with an Idempotency-Key is kept; a retry with "
                    "the same key within that time gets the stored response instead of acting again.",
    )
    worker_clock_offset_seconds: float = Field(
        default=0,
        description="Seconds that `liuhen worker` adds to the system clock, so tests can fire timers without "
                    "waiting for them. Keep 0 in production.",
    )

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        locale = normalize_locale(value)
        if locale not in SUPPORTED_LOCALES:
            raise ValueError(f"unsupported locale {value!r}; use one of {', '.join(SUPPORTED_LOCALES)}")
        return locale

    @field_validator("signing_key_path", "grade_rules", mode="before")
    @classmethod
    def _empty_path_is_default(cls, value: object) -> object:
        return None if value == "" else value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'liuhen.db').resolve()}"

    def resolved_signing_key_path(self) -> Path:
        return self.signing_key_path or self.data_dir / "signing-key.pem"
