"""Starting a training: record the request, ask RunPod, record the job id (or why there is none).

The request is recorded before RunPod is called, so a refusal or a crash in between leaves a
visible state: `failed` with RunPod's reason, or a pending request that reconcile explains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loraledger.adapters.metrics import record_external_error
from loraledger.adapters.redaction import redact
from loraledger.adapters.runpod import RunPodClient, RunPodError
from loraledger.adapters.runpod_input import build_run_input
from loraledger.application.start import StartCommands, TrainingRequest
from loraledger.domain import blobs
from loraledger.domain.errors import JobIdTaken
from loraledger.domain.subjects import STYLE, SubjectKind


class InvalidRunInput(ValueError):
    """The extra RunPod input cannot hold the model name and parameters (HTTP 422); nothing recorded."""


@dataclass(frozen=True, slots=True)
class StartedTraining:
    request: TrainingRequest
    job_id: str
    rule: str | None = None  # the start decision's rule (None when the start was a repeat)


def start_training(
    start: StartCommands,
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
    kind: SubjectKind = STYLE,
) -> StartedTraining:
    """Raises InvalidRunInput and the ledger's errors (conflict, bad name) before anything is
    recorded, and RunPodError after recording the attempt as failed (RunPod refused, could not be
    reached, or answered a job id that is not usable or already names another attempt)."""
    try:
        blobs.check(extra_input, "input")
        build_run_input(extra_input, model_name_field, "style_1_vV1", parameters)
    except ValueError as error:
        raise InvalidRunInput(f"input cannot carry the model name at {model_name_field!r}: {error}") from None
    request = start.request(
        style_id, version_name, parameters=parameters, description=description, fields=fields, kind=kind
    )
    try:
        run_input = build_run_input(extra_input, model_name_field, request.model_name, parameters)
        job = runpod.run(run_input, webhook_url)
    except RunPodError as error:
        record_external_error("runpod", type(error).__name__)
        # The reason is public (the file, the history): never a secret RunPod quoted back.
        start.record_failure(request, redact(f"RunPod did not start the job: {error}"))
        raise
    try:
        recorded = start.record_start(request, job.id)
    except JobIdTaken as taken:
        # RunPod's answer cannot be this attempt's: its webhook would land on the other attempt.
        # A bad answer from RunPod, like a refusal: the attempt fails with the reason, never pending.
        reason = f"RunPod answered /run with job id {job.id}, which cannot be this attempt's: {taken}"
        start.record_failure(request, reason)
        raise RunPodError(reason) from None
    rules = [decision.rule for decision in recorded.decisions if decision.source == "start"]
    return StartedTraining(request, job.id, rules[0] if rules else None)
