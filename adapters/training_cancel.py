"""Cancelling a training: find its pending RunPod job, ask RunPod to cancel it, record the cancel.

Nothing is recorded unless RunPod took the cancel: a refusal or an unreachable RunPod leaves the
version pending (and the request can be sent again). A job RunPod no longer knows, or one that
already ended, is not recorded as cancelled: its webhook, or reconcile, tells what happened.
"""

from __future__ import annotations

from loraledger.adapters.runpod import RunPodClient, RunPodError
from loraledger.application.cancel import CancelCommands
from loraledger.domain.errors import TransitionRefused
from loraledger.domain.training_version import TrainingVersion

ENDED = ("COMPLETED", "FAILED", "TIMED_OUT")


def cancel_training(
    commands: CancelCommands, runpod: RunPodClient, style_id: int, version_name: str
) -> tuple[TrainingVersion, str]:
    """Returns the version as recorded, and the job cancelled."""
    job_id = commands.job_to_cancel(style_id, version_name)
    answer = runpod.cancel(job_id)
    if answer is None:
        raise RunPodError(f"RunPod does not know job {job_id} (any more); reconcile records its end")
    status = answer.get("status")
    if status in ENDED:
        raise TransitionRefused(
            f"style {style_id} {version_name}: RunPod says job {job_id} already ended ({status});"
            " its webhook or reconcile records it"
        )
    return commands.record(style_id, version_name, job_id), job_id
