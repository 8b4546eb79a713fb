"""A small httpx client for RunPod serverless (`/run`, `/status`, `/cancel`); the run input is built
in adapters/runpod_input.py.

No RunPod SDK: the `runpod` package is a worker runtime with heavy dependencies. This module only
starts jobs, asks for their status and cancels them, following the documented API (`POST
/v2/{endpoint}/run`, `GET /v2/{endpoint}/status/{id}`, `POST /v2/{endpoint}/cancel/{id}`,
`Authorization: Bearer <key>`).

Over 350 lines because it is the one place that speaks RunPod's API: each call beside the retries,
error reading and answer checks it shares with the others.

Secrets: the API key lives only in the `httpx.Client`'s default headers (whose repr httpx
redacts); it is never put in exception messages, reprs or log records. Webhook URLs carry a
secret too, so request bodies are never logged or quoted by us; RunPod's answers may quote them,
so every message goes through `redaction.redact` (the key is registered there).
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import httpx
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception, stop_after_attempt

from loraledger.adapters.metrics import record_retries
from loraledger.adapters.redaction import redact, register_secrets

__all__ = [
    "DEFAULT_MODEL_NAME_FIELD",
    "RunPodClient",
    "RunPodError",
    "RunPodRefused",
    "RunPodUnavailable",
    "SubmittedJob",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME_FIELD: Final = "training_config.model_name"

# Endpoint ids and job ids become URL path segments: nothing that could add a path, query or
# fragment (`/`, `.`, `?`, `#`, `%`, whitespace) may pass.
_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
# An API key goes into a header: visible ASCII only (no spaces, no CR/LF).
_API_KEY_RE: Final = re.compile(r"[\x21-\x7e]+")
_BODY_EXCERPT_CHARS: Final = 200


class RunPodError(Exception):
    """RunPod did not do what was asked. The message never contains a registered secret (the API
    key, the webhook secret) nor a `token=` value, in any spelling: RunPod's answers may quote them."""

    def __init__(self, message: str, *, status_code: int | None = None, retryable: bool = False):
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retryable = retryable

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r}, "
            f"retryable={self.retryable!r})"
        )


class RunPodUnavailable(RunPodError):
    """RunPod could not be reached or kept failing (connection error, timeout, 429, 5xx).

    Raised after the client's own retries are exhausted; trying again later may succeed.
    `retry_after` is RunPod's last numeric `Retry-After` hint in seconds, if it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
    ):
        super().__init__(message, status_code=status_code, retryable=retryable)
        self.retry_after = retry_after


class RunPodRefused(RunPodError):
    """RunPod refused the request (4xx other than 404/429, e.g. 400, 401); retrying won't help."""

    def __init__(self, message: str, *, status_code: int | None = None, retryable: bool = False):
        super().__init__(message, status_code=status_code, retryable=retryable)


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    """RunPod's answer to `/run`: the job id (with its `-e1`-style suffix) and initial status."""

    id: str
    status: str


def _check_segment(kind: str, value: str) -> str:
    if not isinstance(value, str) or _SEGMENT_RE.fullmatch(value) is None:
        raise ValueError(f"invalid RunPod {kind} {value!r}: expected 1-128 of [A-Za-z0-9_-]")
    return value


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """The numeric `Retry-After` header in seconds; None when absent or not a number."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


class RunPodClient:
    """Starts jobs on one RunPod serverless endpoint and reads their status.

    One `httpx.Client` is reused for all calls; close it with `close()` or use the client as a
    context manager. Transient failures (connection errors, timeouts, 429, 5xx) are retried up to
    `attempts` tries in all, with exponential backoff plus jitter (a numeric `Retry-After` on 429
    is honoured, capped at `backoff_max`).

    Caveat: RunPod `/run` has no idempotency key, so a retried `/run` whose earlier attempt did
    reach RunPod (read timeout, 5xx after acceptance) can start a second job.
    """

    def __init__(
        self,
        base_url: str,
        endpoint_id: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"RunPod base_url must be an http(s) URL, got {base_url!r}")
        _check_segment("endpoint id", endpoint_id)
        if not isinstance(api_key, str) or _API_KEY_RE.fullmatch(api_key) is None:
            # Deliberately does not echo the value.
            raise ValueError("RunPod api_key must be non-empty visible ASCII without whitespace")
        register_secrets(api_key)
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if backoff_initial < 0 or backoff_max < 0:
            raise ValueError("backoff_initial and backoff_max must not be negative")

        self.base_url = base
        self.endpoint_id = endpoint_id
        self.timeout = timeout
        self.attempts = attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._http = httpx.Client(
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": "loraledger",
            },
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RunPodClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"RunPodClient(base_url={self.base_url!r}, endpoint_id={self.endpoint_id!r}, "
            f"api_key='***', timeout={self.timeout!r}, attempts={self.attempts!r})"
        )

    # -- API ---------------------------------------------------------------------------------

    def run(self, input: dict[str, Any], webhook: str | None) -> SubmittedJob:
        """Start a job: `POST {base}/{endpoint}/run` with `{"input": ..., "webhook": ...}`."""
        body: dict[str, Any] = {"input": input}
        if webhook is not None:
            body["webhook"] = webhook
        what = f"POST /{self.endpoint_id}/run"
        response = self._request("POST", f"{self.base_url}/{self.endpoint_id}/run", what, body)
        if response.status_code == 404:
            raise RunPodError(
                f"RunPod {what}: HTTP 404, endpoint {self.endpoint_id!r} not found{self._excerpt(response)}",
                status_code=404,
            )
        data = self._json_object(response, what)
        job_id = data.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise RunPodError(
                f"RunPod {what}: HTTP {response.status_code} answer has no job 'id' (keys: {sorted(data)})",
                status_code=response.status_code,
            )
        if _SEGMENT_RE.fullmatch(job_id) is None:
            # The id is stored, matched against webhooks and put into `/status/{id}` URLs later:
            # one that could change a path (`../`, `?`, `%`) is refused before anything keeps it.
            raise RunPodError(
                f"RunPod {what}: HTTP {response.status_code} answer has an unusable job id "
                f"{job_id[:80]!r}: expected 1-128 of [A-Za-z0-9_-]",
                status_code=response.status_code,
            )
        status = data.get("status")
        return SubmittedJob(id=job_id, status=status if isinstance(status, str) else "UNKNOWN")

    def status(self, job_id: str) -> dict[str, Any] | None:
        """`GET {base}/{endpoint}/status/{job_id}`; None when RunPod forgot the job (404)."""
        _check_segment("job id", job_id)
        what = f"GET /{self.endpoint_id}/status/{job_id}"
        url = f"{self.base_url}/{self.endpoint_id}/status/{job_id}"
        response = self._request("GET", url, what, None)
        if response.status_code == 404:
            return None
        return self._json_object(response, what)

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """`POST {base}/{endpoint}/cancel/{job_id}` (RunPod answers `{"id", "status"}`); None when
        RunPod does not know the job (404)."""
        _check_segment("job id", job_id)
        what = f"POST /{self.endpoint_id}/cancel/{job_id}"
        url = f"{self.base_url}/{self.endpoint_id}/cancel/{job_id}"
        response = self._request("POST", url, what, None)
        if response.status_code == 404:
            return None
        return self._json_object(response, what)

    # -- internals ---------------------------------------------------------------------------

    def _request(self, method: str, url: str, what: str, body: dict[str, Any] | None) -> httpx.Response:
        """Send with retries; returns a 2xx or 404 response, raises RunPodError otherwise."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: isinstance(exc, RunPodError) and exc.retryable),
            before_sleep=self._log_retry,
            sleep=time.sleep,
            reraise=False,
        )
        try:
            return retrying(self._send_once, method, url, what, body)
        except RetryError as gave_up:
            last = gave_up.last_attempt.exception()
            assert isinstance(last, RunPodUnavailable)
            raise RunPodUnavailable(
                f"{last.message} (gave up after {self.attempts} attempt{'' if self.attempts == 1 else 's'})",
                status_code=last.status_code,
                retry_after=last.retry_after,
            ) from last

    def _send_once(self, method: str, url: str, what: str, body: dict[str, Any] | None) -> httpx.Response:
        try:
            response = self._http.request(method, url, json=body)
        except httpx.TimeoutException as exc:
            raise RunPodUnavailable(
                f"RunPod {what}: timed out after {self.timeout}s ({type(exc).__name__})"
            ) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            raise RunPodUnavailable(
                f"RunPod {what}: connection failed ({type(exc).__name__}: {exc})"
            ) from exc
        except httpx.TransportError as exc:  # unsupported protocol, local protocol error, ...
            raise RunPodError(f"RunPod {what}: request failed ({type(exc).__name__})") from exc

        code = response.status_code
        if 200 <= code < 300 or code == 404:
            return response
        excerpt = self._excerpt(response)
        if code == 429:
            retry_after = _retry_after_seconds(response)
            raise RunPodUnavailable(
                f"RunPod {what}: HTTP 429 rate limited{excerpt}",
                status_code=code,
                retry_after=retry_after,
            )
        if code >= 500:
            raise RunPodUnavailable(f"RunPod {what}: HTTP {code} server error{excerpt}", status_code=code)
        if 400 <= code < 500:
            raise RunPodRefused(f"RunPod {what}: HTTP {code} refused{excerpt}", status_code=code)
        raise RunPodError(f"RunPod {what}: unexpected HTTP {code}{excerpt}", status_code=code)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, RunPodUnavailable) and exc.retry_after is not None:
            return min(exc.retry_after, self.backoff_max)
        # Exponential backoff with jitter: initial * 2^(n-1) plus up to `initial`, capped.
        exponent = min(state.attempt_number - 1, 32)
        backoff = self.backoff_initial * 2.0**exponent + random.uniform(0, self.backoff_initial)
        return min(backoff, self.backoff_max)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        record_retries("runpod")
        logger.warning(
            "%s; retrying in %.2fs (attempt %d of %d)",
            exc.message if isinstance(exc, RunPodError) else type(exc).__name__,
            wait,
            state.attempt_number + 1,
            self.attempts,
        )

    def _json_object(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            content_type = response.headers.get("Content-Type", "no content type")
            raise RunPodError(
                f"RunPod {what}: HTTP {response.status_code} answer is not JSON "
                f"({content_type}){self._excerpt(response)}",
                status_code=response.status_code,
            ) from None
        if not isinstance(data, dict):
            raise RunPodError(
                f"RunPod {what}: HTTP {response.status_code} answer is JSON "
                f"{type(data).__name__}, not an object",
                status_code=response.status_code,
            )
        return data

    def _excerpt(self, response: httpx.Response) -> str:
        """A short, redacted excerpt of a response body for error messages."""
        try:
            text = response.text.strip()
        except Exception:  # undecodable body
            return ""
        if not text:
            return ""
        # Redacted before it is cut: a cut through a secret would leave its start behind.
        text = redact(text)
        if len(text) > _BODY_EXCERPT_CHARS:
            text = text[:_BODY_EXCERPT_CHARS] + "..."
        return f": {text}"
