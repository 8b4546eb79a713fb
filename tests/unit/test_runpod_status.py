"""RunPod's `/status` as reconcile's StatusSource: a payload becomes a JobReport; trouble, one line."""

from __future__ import annotations

from typing import Any

import pytest

from loraledger.adapters.runpod import RunPodClient, RunPodUnavailable
from loraledger.adapters.runpod_status import RunPodStatusSource
from loraledger.application.reconcile import StatusUnreadable
from loraledger.domain.observations import JobReport

JOB = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"


class Client(RunPodClient):
    """The client's `status` answering from a value (no network)."""

    def __init__(self, answer: dict[str, Any] | Exception | None) -> None:
        self.answer = answer

    def status(self, job_id: str) -> dict[str, Any] | None:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_an_ended_job_is_read_into_a_report() -> None:
    answer = {"id": JOB, "status": "COMPLETED", "output": {"status": "success", "loraName": "style_1_vV9"}}

    report = RunPodStatusSource(Client(answer)).status(JOB)

    assert isinstance(report, JobReport)
    assert (report.job_id, report.status, report.output_status, report.model_name) == (
        JOB,
        "COMPLETED",
        "success",
        "style_1_vV9",
    )


def test_a_job_runpod_forgot_is_none() -> None:
    assert RunPodStatusSource(Client(None)).status(JOB) is None


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            RunPodUnavailable("RunPod GET /e/status/x: HTTP 503 server error"),
            "RunPod GET /e/status/x: HTTP 503",
        ),
        (ValueError("invalid RunPod job id 'a/b'"), "invalid RunPod job id 'a/b'"),
        ({"id": JOB, "status": "EXPLODED"}, "unreadable /status answer: 1 problems"),
        ({"status": "COMPLETED"}, "unreadable /status answer: 1 problems"),
    ],
)
def test_trouble_asking_or_reading_is_one_line_for_the_report(answer: Any, message: str) -> None:
    with pytest.raises(StatusUnreadable) as raised:
        RunPodStatusSource(Client(answer)).status(JOB)

    assert str(raised.value).startswith(message)
