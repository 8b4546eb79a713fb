"""Settings: `LORALEDGER_*` environment variables and a `.env` file in the working folder (CONTRACT §3).

`load_settings()` is how commands read them: a value that cannot be used is refused there, before
anything runs, in one line naming the environment variable (`SettingsError`).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from loraledger.adapters.s3_listing import default_lora_url_base
from loraledger.domain.parse_duration import parse_duration

ENV_PREFIX = "LORALEDGER_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_RECONCILE_AFTER = timedelta(hours=1)


class MissingSetting(Exception):
    """A command needs a setting that is not set; the message names the variable."""

    def __init__(self, variable: str, purpose: str) -> None:
        super().__init__(f"{variable} is not set: it is needed {purpose}")
        self.variable = variable


class SettingsError(Exception):
    """A setting has a value that cannot be used; the one-line message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True)

    database_url: str = "sqlite:///./loraledger.db"
    output_dir: str = "./styles"
    output_layout: str = "{style_id}/training_versions.json"
    state_dir: str | None = None  # the service's own records of the files: see effective_state_dir
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    lora_url_base: str | None = None
    runpod_endpoint_id: str | None = None
    runpod_api_key: SecretStr | None = None
    runpod_base_url: str = "https://api.runpod.ai/v2"
    runpod_model_name_field: str = "training_config.model_name"
    public_url: str | None = None
    webhook_secret: SecretStr | None = None
    api_token: SecretStr | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # Not in the contract's table: tuning knobs with safe defaults.
    webhook_max_bytes: int = Field(default=1_000_000, gt=0)
    max_body_bytes: int = Field(default=1_000_000, gt=0)  # every other route's body
    body_read_timeout: float = Field(default=30.0, gt=0)  # seconds for a whole body to arrive (408 after)
    # How old a pending attempt must be before reconcile may mark it failed as unknown to RunPod
    # (unset: DEFAULT_RECONCILE_AFTER); read it as `effective_reconcile_after`.
    reconcile_after: timedelta | None = None
    reconcile_grace: timedelta | None = None  # the old name of reconcile_after, still read
    runpod_timeout: float = Field(default=10.0, gt=0)
    runpod_attempts: int = Field(default=4, ge=1)
    s3_max_attempts: int = Field(default=5, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _new_name_wins(cls, data: Any) -> Any:
        """LORALEDGER_RECONCILE_AFTER set: the old LORALEDGER_RECONCILE_GRACE is not even looked at."""
        if isinstance(data, dict) and data.get("reconcile_after") not in (None, ""):
            data = {key: value for key, value in data.items() if key != "reconcile_grace"}
        return data

    @field_validator("reconcile_after", "reconcile_grace", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if value == "":
            return None
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        level = value.strip().upper() if isinstance(value, str) else value
        if level not in LOG_LEVELS:
            raise ValueError(f"use one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator(
        "s3_bucket",
        "s3_endpoint_url",
        "lora_url_base",
        "runpod_endpoint_id",
        "public_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("runpod_api_key", "webhook_secret", "api_token", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @cached_property
    def effective_lora_url_base(self) -> str | None:
        """`LORALEDGER_LORA_URL_BASE`, else derived from the bucket and endpoint (§3)."""
        if self.lora_url_base:
            return self.lora_url_base
        if self.s3_bucket:
            return default_lora_url_base(self.s3_bucket, self.s3_endpoint_url)
        return None

    @property
    def effective_state_dir(self) -> Path | None:
        """`LORALEDGER_STATE_DIR`, else `loraledger-state` beside a SQLite database file, else
        `./loraledger-state`; None for a store in memory (its records go to a temporary folder)."""
        if self.state_dir:
            return Path(self.state_dir)
        if self.database_url.startswith("memory:"):
            return None
        if self.database_url.startswith("sqlite:///"):
            database = self.database_url.removeprefix("sqlite:///").split("?", 1)[0]
            return Path(database).parent / "loraledger-state"
        return Path("loraledger-state")

    def secret_values(self) -> list[str]:
        """Every secret these settings hold, for `redaction.register_secrets`."""
        values = [
            secret.get_secret_value()
            for secret in (self.runpod_api_key, self.webhook_secret, self.api_token)
            if secret is not None
        ]
        try:
            password = urlsplit(self.database_url).password
        except ValueError:  # an unparsable URL: the store reports it
            password = None
        if password:
            values.append(unquote(password))  # the redaction finds its URL-encoded spelling too
        return values

    @cached_property
    def effective_reconcile_after(self) -> timedelta:
        """`LORALEDGER_RECONCILE_AFTER`, else its old name `LORALEDGER_RECONCILE_GRACE`, else 1h."""
        for value in (self.reconcile_after, self.reconcile_grace):
            if value is not None:
                return value
        return DEFAULT_RECONCILE_AFTER

    def require_bucket(self) -> str:
        if not self.s3_bucket:
            raise MissingSetting("LORALEDGER_S3_BUCKET", "to scan S3 for LoRA files")
        return self.s3_bucket

    def require_runpod(self, purpose: str = "to start trainings on RunPod") -> tuple[str, str]:
        if not self.runpod_endpoint_id:
            raise MissingSetting("LORALEDGER_RUNPOD_ENDPOINT_ID", purpose)
        if self.runpod_api_key is None:
            raise MissingSetting("LORALEDGER_RUNPOD_API_KEY", purpose)
        return self.runpod_endpoint_id, self.runpod_api_key.get_secret_value()

    def require_webhook_secret(self) -> str:
        if self.webhook_secret is None:
            raise MissingSetting(
                "LORALEDGER_WEBHOOK_SECRET", "to accept RunPod webhooks (they carry it as ?token=)"
            )
        return self.webhook_secret.get_secret_value()

    def webhook_url(self) -> str:
        if not self.public_url:
            raise MissingSetting("LORALEDGER_PUBLIC_URL", "to tell RunPod where to send the webhook")
        token = quote(self.require_webhook_secret(), safe="")
        return f"{self.public_url.rstrip('/')}/webhooks/runpod?token={token}"


def load_settings(**overrides: Any) -> Settings:
    """The settings, or `SettingsError` naming each variable whose value cannot be used."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(describe_settings_error(error)) from None


def describe_settings_error(error: ValidationError) -> str:
    """One line, `VARIABLE: what is wrong` for each problem (pydantic's messages leave out the value,
    which may be a secret)."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        loc = item.get("loc", ())
        variable = f"{ENV_PREFIX}{str(loc[0]).upper()}" if loc else "settings"
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        problems.append(f"{variable}: {' '.join(message.split())}")
    return "; ".join(problems)
