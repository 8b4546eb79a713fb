"""The matching rules of CONTRACT §5 as pure functions that return a Decision.

They look only at values handed to them (what a version currently is, what was observed) and
say what should happen and why; the ledger turns that into events. Nothing here reads a store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote, urlsplit

from loraledger.domain.decisions import Candidate, Decision, ReportOutcome, Rule, Source, SyncOutcome
from loraledger.domain.entries import Status
from loraledger.domain.naming import LORA_FILE_TOKEN, ModelName, job_base_id, key_basename
from loraledger.domain.observations import JobReport, LoraObject
from loraledger.domain.urls import should_replace, virtual_hosted

SUCCESS_OUTPUT_STATUSES = frozenset({"success", "succeeded", "successful", "ok", "completed", "done"})
RUNNING_STATUSES = frozenset({"IN_QUEUE", "IN_PROGRESS"})


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """What the rules need to know of one existing version."""

    name: str
    id: str | None
    status: Status | None
    lora_url: str | None
    job_ids: tuple[str, ...] = ()
    reported_jobs: frozenset[str] = frozenset()


def url_file_name(url: str) -> str:
    """The last path segment of a URL, percent-decoding undone."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def lora_files_named_in(url: str) -> set[str]:
    """Every LoRA file name the URL contains (CONTRACT §5: "whose loraUrl contains the file name").

    A LoRA file name starts with `style_` and ends with `.safetensors`, so "the URL contains the
    file name" is exactly "the file name is one of these tokens": an index on them answers the
    second pass in one look-up instead of a substring scan of every version.
    """
    return set(LORA_FILE_TOKEN.findall(unquote(url)))


def _candidate(facts: VersionFacts, taken: bool, why: str) -> Candidate:
    return Candidate(id=facts.id, name=facts.name, status=facts.status, taken=taken, why=why)


# --------------------------------------------------------------------------- S3 sync


@dataclass(frozen=True, slots=True)
class SyncDecision:
    """What to do with one LoRA file: which version, whether it completes it, which URL to set.

    `reason` says why a skipped file is skipped (for the sync report).
    """

    version_name: str | None
    lora_url: str | None
    decision: Decision
    reason: str | None = None

    @property
    def outcome(self) -> SyncOutcome:
        return cast(SyncOutcome, self.decision.outcome)


class StyleCandidates:
    """The versions of one style, indexed the ways the two passes look them up.

    Built once per style per sync and kept current as decisions are taken, so each file costs a
    few dictionary look-ups instead of a scan of every version.
    """

    def __init__(self, versions: Iterable[VersionFacts]) -> None:
        self.by_name: dict[str, VersionFacts] = {}
        self.by_url_file: dict[str, list[str]] = {}
        self.by_id: dict[str, list[str]] = {}
        for facts in versions:
            self.put(facts)

    def put(self, facts: VersionFacts) -> None:
        old = self.by_name.get(facts.name)
        if old is not None:
            self._unindex(old)
        self.by_name[facts.name] = facts
        if facts.lora_url:
            for file_name in lora_files_named_in(facts.lora_url):
                self.by_url_file.setdefault(file_name, []).append(facts.name)
        if facts.id:
            self.by_id.setdefault(facts.id, []).append(facts.name)

    def _unindex(self, facts: VersionFacts) -> None:
        if facts.lora_url:
            for file_name in lora_files_named_in(facts.lora_url):
                self.by_url_file[file_name].remove(facts.name)
        if facts.id:
            self.by_id.get(facts.id, []).remove(facts.name)

    def second_pass(self, file_name: str, model_name: str) -> list[tuple[VersionFacts, str, str]]:
        """(version, rule, why) for every version the second pass would take, best first."""
        found: list[tuple[VersionFacts, str, str]] = []
        seen: set[str] = set()
        for name in self.by_url_file.get(file_name, []):
            found.append((self.by_name[name], Rule.SYNCED_BY_URL, f"loraUrl contains {file_name}"))
            seen.add(name)
        for name in self.by_id.get(model_name, []):
            if name not in seen:
                found.append((self.by_name[name], Rule.SYNCED_BY_MODEL_ID, f"id is {model_name}"))
        return found


def match_lora_file(
    lora: LoraObject,
    model: ModelName,
    candidates: StyleCandidates,
    offered_url: str,
    known_etag: str | None,
    source: Source = "s3-sync",
) -> SyncDecision:
    """Apply the two passes of CONTRACT §5 to one file of one style."""
    notes = (model.normalisation,) if model.normalisation else ()
    observed = {"key": lora.key, "etag": lora.etag, "size": lora.size}

    def decided(
        outcome: SyncOutcome,
        rule: str,
        version_name: str | None,
        url: str | None,
        considered: list[Candidate],
        extra: tuple[str, ...] = (),
        reason: str | None = None,
    ) -> SyncDecision:
        decision = Decision(
            source=source,
            rule=rule,
            outcome=outcome,
            input=observed,
            candidates=tuple(considered),
            notes=notes + extra,
        )
        return SyncDecision(version_name, url, decision, reason)

    same_name = candidates.by_name.get(model.version_name)
    if lora.size == 0:
        # A LoRA of 0 bytes is not a LoRA: an upload that has not finished, or a placeholder.
        # It completes nothing and creates nothing; the real file, when it lands, has another ETag.
        why = "the file is empty (0 bytes): not a LoRA"
        weighed = [] if same_name is None else [_candidate(same_name, False, why)]
        return decided(SyncOutcome.SKIP, Rule.EMPTY_FILE, model.version_name, None, weighed, reason=why)

    if known_etag == lora.etag:
        return decided(SyncOutcome.UNCHANGED, Rule.UNCHANGED_ETAG, model.version_name, None, [])

    file_name = key_basename(lora.key)
    considered: list[Candidate] = []
    if same_name is not None and (
        same_name.status in (Status.PENDING, Status.FAILED) or not same_name.lora_url
    ):
        why = f"named {model.version_name}, status {same_name.status}" + (
            "" if same_name.lora_url else ", no loraUrl"
        )
        considered.append(_candidate(same_name, True, why))
        url = offered_url
        current = same_name.lora_url
        if current and file_name in lora_files_named_in(current) and not should_replace(current, offered_url):
            url = current  # the same file already has an URL at least as good (never downgrade)
        return decided(SyncOutcome.COMPLETE, Rule.PENDING_BY_NAME, same_name.name, url, considered)
    if same_name is not None:
        considered.append(
            _candidate(same_name, False, f"first pass: already {same_name.status} with a loraUrl")
        )

    second = candidates.second_pass(file_name, model.canonical)
    if second:
        chosen, rule, why = next(((f, r, w) for f, r, w in second if f.name == model.version_name), second[0])
        considered = [c for c in considered if c.name != chosen.name]
        considered.append(_candidate(chosen, True, why))
        considered.extend(
            _candidate(f, False, f"{w}, but {chosen.name} was taken first")
            for f, _, w in second
            if f.name != chosen.name
        )
        same_file = chosen.lora_url is None or file_name in lora_files_named_in(chosen.lora_url)
        upgrade = offered_url if same_file and should_replace(chosen.lora_url, offered_url) else None
        extra = (f"loraUrl upgraded to {offered_url}",) if upgrade else ()
        return decided(SyncOutcome.SYNCED, rule, chosen.name, upgrade, considered, extra)

    if same_name is not None:
        why = f"already completed from another file ({same_name.lora_url}); one version has one LoRA"
        considered[-1] = _candidate(same_name, False, why)
        return decided(
            SyncOutcome.SKIP, Rule.OTHER_FILE_OF_VERSION, same_name.name, None, considered, reason=why
        )
    return decided(SyncOutcome.CREATE, Rule.CREATED, model.version_name, offered_url, considered)


# --------------------------------------------------------------------------- job reports


@dataclass(frozen=True, slots=True)
class ReportDecision:
    """What one report of a job's end does to the version it was matched to."""

    attempt_id: str | None
    lora_url: str | None
    error: str | None
    decision: Decision

    @property
    def outcome(self) -> ReportOutcome:
        return cast(ReportOutcome, self.decision.outcome)


@dataclass(frozen=True, slots=True)
class JobMatch:
    """How a report found its version (or did not): the rule and the version's facts."""

    rule: str
    version: VersionFacts | None
    why: str


def keeps_its_lora(status: Status | None, lora_url: str | None) -> bool:
    """A completed version with a LoRA: a failure report never overwrites it."""
    return status == Status.COMPLETED and bool(lora_url)


def report_is_success(report: JobReport) -> bool:
    if report.status != "COMPLETED":
        return False
    return report.output_status is None or report.output_status.lower() in SUCCESS_OUTPUT_STATUSES


def report_error(report: JobReport) -> str:
    if report.error:
        return report.error
    if report.status == "COMPLETED":
        return f"worker reported output.status {report.output_status!r}"
    return f"RunPod job ended {report.status}"


def decide_report(
    report: JobReport, match: JobMatch, source: Source, derived_url: str | None
) -> ReportDecision:
    """Given how the report was matched, decide its effect on that version."""
    observed: dict[str, object] = {"job_id": report.job_id, "status": report.status}
    if report.output_status is not None:
        observed["output_status"] = report.output_status
    if report.model_name is not None:
        observed["model_name"] = report.model_name

    def decided(
        outcome: ReportOutcome,
        rule: str,
        why: str,
        attempt_id: str | None = None,
        url: str | None = None,
        error: str | None = None,
        notes: tuple[str, ...] = (),
    ) -> ReportDecision:
        considered: tuple[Candidate, ...] = ()
        if match.version is not None:
            considered = (_candidate(match.version, outcome != ReportOutcome.PARK, why),)
        decision = Decision(
            source=source,
            rule=rule,
            outcome=outcome,
            input=observed,
            candidates=considered,
            notes=notes,
        )
        return ReportDecision(attempt_id, url, error, decision)

    version = match.version
    if report.status in RUNNING_STATUSES:
        return decided(ReportOutcome.RUNNING, Rule.STILL_RUNNING, f"RunPod says {report.status}")
    if version is None:
        return decided(ReportOutcome.PARK, Rule.UNMATCHED, match.why)

    attempt = _attempt_of(report.job_id, version)
    if attempt is not None and attempt != version.id:
        return decided(
            ReportOutcome.IGNORE,
            Rule.STALE_ATTEMPT,
            f"{match.why}; job {attempt} is an older attempt, the version is now {version.id}",
        )
    if attempt is None and version.status == Status.COMPLETED and version.id in version.reported_jobs:
        # A job the version does not know (say, one a timed-out `/run` started anyway) cannot
        # take over a completion that was already reported.
        return decided(
            ReportOutcome.IGNORE,
            Rule.OTHER_ATTEMPT_AFTER_COMPLETION,
            f"{match.why}; the version's own attempt {version.id} already reported its end",
        )
    attempt_id = attempt or report.job_id
    success = report_is_success(report)
    if attempt_id in version.reported_jobs:
        offered = _offered_url(report, derived_url) if success else None
        upgrade = offered if offered and should_replace(version.lora_url, offered) else None
        return decided(
            ReportOutcome.REPEAT,
            Rule.REPEAT,
            f"{match.why}; the end of {attempt_id} was already recorded",
            attempt_id,
            upgrade,
        )
    if success:
        offered = _offered_url(report, derived_url)
        url = offered if offered and should_replace(version.lora_url, offered) else None
        notes: tuple[str, ...] = ()
        if version.lora_url and offered and url is None and offered != version.lora_url:
            notes = (f"kept loraUrl {version.lora_url}; not replaced by {offered}",)
        return decided(ReportOutcome.COMPLETE, match.rule, match.why, attempt_id, url, notes=notes)
    if keeps_its_lora(version.status, version.lora_url):
        return decided(
            ReportOutcome.IGNORE,
            Rule.FAILURE_AFTER_COMPLETION,
            f"{match.why}; a completed LoRA is never overwritten by a failure report",
            attempt_id,
        )
    return decided(ReportOutcome.FAIL, match.rule, match.why, attempt_id, error=report_error(report))


def _attempt_of(job_id: str, version: VersionFacts) -> str | None:
    """The version's own spelling of this job id, if the job is one of its attempts."""
    base = job_base_id(job_id)
    for known in reversed(version.job_ids):
        if known == job_id or job_base_id(known) == base:
            return known
    if version.id is not None and job_base_id(version.id) == base:
        return version.id
    return None


def _offered_url(report: JobReport, derived_url: str | None) -> str | None:
    if report.lora_url:
        return virtual_hosted(report.lora_url)
    return derived_url
