"""Cancelling a pending training: which RunPod job to cancel, then the version failed as cancelled.

The attempt is recorded as reported (failed, `error: "cancelled"`), so the CANCELLED webhook that
RunPod may send afterwards is a repeat of it, not a second failure.
"""

from __future__ import annotations

from loraledger.application.context import UseCase
from loraledger.domain import policies
from loraledger.domain.decisions import CancelOutcome, Decision, Rule
from loraledger.domain.entries import Status
from loraledger.domain.errors import TransitionRefused
from loraledger.domain.training_version import TrainingVersion

CANCELLED = "cancelled"


class CancelCommands(UseCase):
    def job_to_cancel(self, style_id: int, version_name: str) -> str:
        """The pending attempt's RunPod job. UnknownVersion; TransitionRefused (409) when the
        version is not pending, or RunPod never gave its attempt a job id."""
        version = self.store.require_version(style_id, version_name)
        if version.status != Status.PENDING:
            raise TransitionRefused(
                f"style {style_id} {version_name} is {version.status}:"
                " only a pending training can be cancelled"
            )
        job_id = policies.job_to_ask(version.facts(), version.model_name)
        if job_id is None:
            raise TransitionRefused(
                f"style {style_id} {version_name}: RunPod has not given this training a job id yet"
            )
        return job_id

    def record(self, style_id: int, version_name: str, job_id: str) -> TrainingVersion:
        """RunPod took the cancel of `job_id`: the attempt fails as cancelled (again: nothing)."""

        def command() -> TrainingVersion:
            version = self.store.require_version(style_id, version_name)
            if version.status != Status.PENDING or version.current_id != job_id:
                return version  # a webhook or another cancel ended it meanwhile
            decision = Decision(
                source="cancel",
                rule=Rule.CANCELLED,
                outcome=CancelOutcome.CANCELLED,
                input={"job_id": job_id},
            )
            version.fail_unreported(job_id=job_id, reason=CANCELLED, at=self.clock(), decision=decision)
            self.store.save_all(version)
            return version

        return self.store.retrying(command)
