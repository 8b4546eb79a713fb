"""Settings: `LORALEDGER_*` environment variables and a `.env` file in the working folder (CONTRACT §3)."""

from __future__ import annotations

from functools import cached_property
from urllib.parse import quote, unquote, urlsplit

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from loraledger.adapters.s3_listing import default_lora_url_base


class MissingSetting(Exception):
    """A command needs a setting that is not set; the message names the variable."""

    def __init__(self, variable: str, purpose: str) -> None:
        super().__init__(f"{variable} is not set: it is needed {purpose}")
        self.variable = variable


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LORALEDGER_", env_file=".env", extra="ignore", frozen=True)

    database_url: str = "sqlite:///./loraledger.db"
    output_dir: str = "./styles"
    output_layout: str = "{style_id}/training_versions.json"
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
    # Not in the contract's table: tuning knobs with safe defaults.
    webhook_max_bytes: int = 1_000_000
    max_body_bytes: int = 1_000_000  # every other route's body
    body_read_timeout: float = 30.0  # seconds for a whole body to arrive (408 after)
    reconcile_grace: str = "1h"
    runpod_timeout: float = 10.0
    runpod_attempts: int = 4
    s3_max_attempts: int = 5

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

    def require_bucket(self) -> str:
        if not self.s3_bucket:
            raise MissingSetting("LORALEDGER_S3_BUCKET", "to scan S3 for LoRA files")
        return self.s3_bucket

    def require_runpod(self) -> tuple[str, str]:
        if not self.runpod_endpoint_id:
            raise MissingSetting("LORALEDGER_RUNPOD_ENDPOINT_ID", "to start trainings on RunPod")
        if self.runpod_api_key is None:
            raise MissingSetting("LORALEDGER_RUNPOD_API_KEY", "to call RunPod")
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
