"""Starting a training: record the request, ask RunPod, record the job id (or why there is none).

The request is recorded before RunPod is called, so a refusal or a crash in between leaves a
visible state: `failed` with RunPod's reason, or a pending request that reconcile explains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.runpod import RunPodClient, RunPodError, build_run_input
from domain.ledger import Ledger, TrainingRequest


@dataclass(frozen=True, slots=True)
class StartedTraining:
    request: TrainingRequest
    job_id: str


def start_training(
    ledger: Ledger,
    runpod: RunPodClient,
    *,
    style_id: int,
    version_name: str | None,
    parameters: dict[str, Any],
    description: str | None,
    extra_input: dict[str, Any],
    fields: dict[str, Any],
    model_name_field: str,
    webhook_url: str,
) -> StartedTraining:
    """Raises the ledger's errors (conflict, bad name) before RunPod is called, and RunPodError
    after recording the attempt as failed."""
    request = ledger.request_training(
        style_id, version_name, parameters=parameters, description=description, fields=fields
    )
    try:
        run_input = build_run_input(extra_input, model_name_field, request.model_name, parameters)
        job = runpod.run(run_input, webhook_url)
    except (RunPodError, ValueError) as error:
        ledger.record_start_failure(request, f"RunPod did not start the job: {error}")
        raise
    ledger.record_start(request, job.id)
    return StartedTraining(request, job.id)
