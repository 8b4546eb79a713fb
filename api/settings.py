"""Settings: `LORALEDGER_*` environment variables and a `.env` file in the working folder (CONTRACT §3).

`load_settings()` is how commands read them: a value that cannot be used is refused there, before
anything runs, in one line naming the environment variable (`SettingsError`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from loraledger.adapters.file_layout import DEFAULT_ACTOR_LAYOUT, parse_fallback, parse_layout
from loraledger.adapters.s3_listing import default_lora_url_base
from loraledger.domain.parse_duration import parse_duration

ENV_PREFIX = "LORALEDGER_"
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
# Variables of the test suite, read by its fixtures only: not settings of the service.
TEST_VARIABLES_PREFIX = "LORALEDGER_TEST_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_RECONCILE_AFTER = timedelta(minutes=15)  # CONTRACT §9


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
    output_fallback: str | None = None  # a style's file when its `{style_id}_*` folder is missing
    state_dir: str | None = None  # the service's own records of the files: see effective_state_dir
    s3_bucket: str | None = None
    s3_prefix: str = ""
    # Actors (CONTRACT §8): their LoRA keys' prefix (unset: actors are not synced) and their files.
    s3_actor_prefix: str | None = None
    actor_output_layout: str = DEFAULT_ACTOR_LAYOUT
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
    # Running unattended (CONTRACT §9): an SQS queue of the bucket's events; the schedules (0 = off).
    s3_events_queue_url: str | None = None
    sync_every: timedelta = timedelta(hours=1)
    reconcile_every: timedelta = timedelta(minutes=5)
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

    @field_validator("sync_every", "reconcile_every", mode="before")
    @classmethod
    def _schedule(cls, value: object) -> object:
        """A duration, or `0` (or empty) for off."""
        if isinstance(value, str) and value.strip() in ("", "0"):
            return timedelta(0)
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
        "s3_actor_prefix",
        "s3_endpoint_url",
        "lora_url_base",
        "runpod_endpoint_id",
        "public_url",
        "s3_events_queue_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("runpod_api_key", "webhook_secret", "api_token", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("output_layout")
    @classmethod
    def _layout(cls, value: str) -> str:
        parse_layout(value)  # LayoutError (a ValueError) says what is wrong and what is accepted
        return value

    @field_validator("actor_output_layout")
    @classmethod
    def _actor_layout(cls, value: str) -> str:
        parse_layout(value, "actor_id")
        return value

    @field_validator("output_fallback")
    @classmethod
    def _fallback(cls, value: str | None) -> str | None:
        return parse_fallback(value) if value else None  # LayoutError says what is accepted

    @field_validator("runpod_endpoint_id")
    @classmethod
    def _endpoint_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", value):
            raise ValueError("use the endpoint id RunPod shows: 1-128 of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if value != "memory://" and scheme not in DATABASE_SCHEMES:
            raise ValueError("use sqlite:///PATH or postgresql://user:password@host:port/database")
        return value

    @field_validator(
        "runpod_base_url", "public_url", "s3_endpoint_url", "lora_url_base", "s3_events_queue_url"
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- a port that is not a number raises here
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("use an http:// or https:// URL with a host, such as https://example.com")
        return value

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
        """`LORALEDGER_RECONCILE_AFTER`, else its old name `LORALEDGER_RECONCILE_GRACE`, else 15m."""
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


def known_variables() -> list[str]:
    return sorted(f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields)


def unknown_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each `LORALEDGER_*` variable no setting reads (a typo stays unnoticed
    otherwise), naming the closest known one."""
    known = known_variables()
    warnings = []
    for name in sorted(os.environ if environ is None else environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper.startswith(TEST_VARIABLES_PREFIX):
            continue
        # Compared without the prefix, which every name shares and would make any two look alike.
        suffixes = [variable.removeprefix(ENV_PREFIX) for variable in known]
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=0.6)
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        warnings.append(f"{name} is not a loraledger setting and is ignored{hint}")
    return warnings
