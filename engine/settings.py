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
    locale: str = Field(default="zh_CN", description="Language of CLI output: zh_CN or en.")
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = Field(default=5 * 1024 * 1024, description="Largest BPMN file accepted.")
    max_xml_depth: int = Field(default=256, description="Deepest XML element nesting accepted.")
    max_xml_elements: int = Field(default=200_000, description="Most XML elements in one BPMN file.")
    token_ttl_minutes: int = Field(default=8 * 60, description="Lifetime of a login token.")
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
