"""RunPod's `/status` as reconcile's StatusSource: a job's payload read into a JobReport.

Whatever goes wrong asking or reading becomes StatusUnreadable, whose message is the line the
reconcile report shows for that version.
"""

from __future__ import annotations

from pydantic import ValidationError

from loraledger.adapters.metrics import record_external_error
from loraledger.adapters.runpod import RunPodClient, RunPodError
from loraledger.adapters.runpod_payloads import JobPayload, report_from_payload
from loraledger.application.reconcile import StatusUnreadable
from loraledger.domain.observations import JobReport


class RunPodStatusSource:
    def __init__(self, client: RunPodClient) -> None:
        self.client = client

    def status(self, job_id: str) -> JobReport | None:
        """The job's report; None when RunPod no longer knows the job (404)."""
        try:
            answer = self.client.status(job_id)
        except (RunPodError, ValueError) as error:  # ValueError: an id that is no URL segment
            record_external_error("runpod", type(error).__name__)
            raise StatusUnreadable(str(error)) from None
        if answer is None:
            return None
        try:
            return report_from_payload(JobPayload.model_validate(answer))
        except ValidationError as error:
            raise StatusUnreadable(f"unreadable /status answer: {error.error_count()} problems") from None
