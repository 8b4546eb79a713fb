"""CONTRACT §5 as pure functions: `match_lora_file` (S3 sync) and `decide_report` (webhook, reconcile)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loraledger.domain.decisions import Decision, Rule
from loraledger.domain.matching import (
    JobMatch,
    StyleCandidates,
    SyncDecision,
    VersionFacts,
    decide_report,
    match_lora_file,
    url_file_name,
)
from loraledger.domain.naming import ModelName, parse_lora_key
from loraledger.domain.observations import JobReport, LoraObject
from loraledger.domain.urls import is_accelerated, should_replace, virtual_hosted

PLAIN = "https://bucket.s3.amazonaws.com/prefix/"
ACCEL = "https://bucket.s3-accelerate.amazonaws.com/prefix/"
T0 = datetime(2025, 10, 14, 5, 55, 19, 167000, tzinfo=UTC)
JOB = "ec487842-b853-4ca1-ba91-76bba6a59006-e2"
JOB_BASE = "ec487842-b853-4ca1-ba91-76bba6a59006"


def lora(
    key: str = "prefix/style_1_vV8.safetensors", etag: str = '"etag-1"', size: int = 153_288_040
) -> LoraObject:
    return LoraObject(key=key, etag=etag, size=size, last_modified=T0)


def facts(
    name: str = "V8",
    *,
    id: str | None = JOB,
    status: str | None = "pending",
    lora_url: str | None = None,
    job_ids: tuple[str, ...] = (),
    reported: frozenset[str] = frozenset(),
) -> VersionFacts:
    return VersionFacts(
        name=name, id=id, status=status, lora_url=lora_url, job_ids=job_ids, reported_jobs=reported
    )


def sync(
    versions: list[VersionFacts],
    key: str = "prefix/style_1_vV8.safetensors",
    *,
    base: str = PLAIN,
    known_etag: str | None = None,
    etag: str = '"etag-1"',
    size: int = 153_288_040,
) -> SyncDecision:
    obj = lora(key, etag, size)
    return match_lora_file(obj, parse_lora_key(key), StyleCandidates(versions), base + key[7:], known_etag)


def taken(decision: Decision) -> list[str]:
    return [c.name for c in decision.candidates if c.taken]


# -- S3 sync: first pass --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "current_url"),
    [
        ("pending", None),
        ("failed", None),
        ("completed", None),
        (None, None),
        ("failed", PLAIN + "old.safetensors"),
    ],
)
def test_first_pass_completes_a_pending_failed_or_url_less_version_of_the_same_name(
    status: str | None, current_url: str | None
) -> None:
    decided = sync([facts(status=status, lora_url=current_url), facts("V7", status="pending")])

    assert decided.outcome == "complete"
    assert decided.version_name == "V8"
    assert decided.lora_url == PLAIN + "style_1_vV8.safetensors"
    assert decided.decision.rule == Rule.PENDING_BY_NAME
    assert decided.decision.source == "s3-sync"
    assert taken(decided.decision) == ["V8"]
    assert decided.decision.input == {
        "key": "prefix/style_1_vV8.safetensors",
        "etag": '"etag-1"',
        "size": 153_288_040,
    }


def test_first_pass_on_a_legacy_spelling_notes_the_normalisation() -> None:
    decided = sync([facts(status="pending")], "prefix/style_1_v8.safetensors")

    assert decided.outcome == "complete"
    assert decided.version_name == "V8"
    assert decided.decision.notes == ("legacy spelling 'style_1_v8' read as 'style_1_vV8'",)


def test_first_pass_ignores_a_pending_version_of_another_name() -> None:
    decided = sync([facts("V7", status="pending")])

    assert decided.outcome == "create"
    assert decided.version_name == "V8"


# -- S3 sync: second pass -------------------------------------------------------------------------


def test_second_pass_finds_a_completed_version_whose_lora_url_names_the_file() -> None:
    current = PLAIN + "style_1_vV8.safetensors"
    decided = sync([facts(status="completed", lora_url=current)])

    assert decided.outcome == "synced"
    assert decided.version_name == "V8"
    assert decided.lora_url is None  # the same URL: nothing to change
    assert decided.decision.rule == Rule.SYNCED_BY_URL
    assert taken(decided.decision) == ["V8"]
    assert decided.decision.candidates[0].id == JOB


def test_second_pass_matches_a_lora_url_that_names_the_file_in_another_folder() -> None:
    decided = sync(
        [facts(status="completed", lora_url="https://cdn.example.com/x/y/style_1_vV8.safetensors")]
    )

    assert decided.outcome == "synced"
    assert decided.decision.rule == Rule.SYNCED_BY_URL


def test_second_pass_finds_a_version_whose_id_is_the_model_name() -> None:
    other_url = PLAIN + "elsewhere/renamed.safetensors"
    decided = sync([facts(id="style_1_vV8", status="completed", lora_url=other_url)])

    assert decided.outcome == "synced"
    assert decided.version_name == "V8"
    assert decided.decision.rule == Rule.SYNCED_BY_MODEL_ID
    assert decided.lora_url is None  # both plain: never replaced sideways
    assert taken(decided.decision) == ["V8"]


def test_second_pass_prefers_the_version_of_the_same_name_when_several_urls_name_the_file() -> None:
    url = PLAIN + "style_1_vV8.safetensors"
    decided = sync(
        [
            facts("V9", id="job-9", status="completed", lora_url=url),
            facts("V8", status="completed", lora_url=url),
        ]
    )

    assert decided.outcome == "synced"
    assert decided.version_name == "V8"
    assert taken(decided.decision) == ["V8"]
    assert [c.name for c in decided.decision.candidates if not c.taken] == ["V9"]


def test_second_pass_upgrades_a_plain_url_to_an_accelerated_one() -> None:
    decided = sync([facts(status="completed", lora_url=PLAIN + "style_1_vV8.safetensors")], base=ACCEL)

    assert decided.outcome == "synced"
    assert decided.lora_url == ACCEL + "style_1_vV8.safetensors"
    assert f"loraUrl upgraded to {ACCEL}style_1_vV8.safetensors" in decided.decision.notes


def test_second_pass_never_replaces_an_accelerated_url_by_a_plain_one() -> None:
    decided = sync([facts(status="completed", lora_url=ACCEL + "style_1_vV8.safetensors")], base=PLAIN)

    assert decided.outcome == "synced"
    assert decided.lora_url is None
    assert not any("upgraded" in note for note in decided.decision.notes)


# -- S3 sync: no match ----------------------------------------------------------------------------


def test_a_file_of_an_unknown_version_creates_it() -> None:
    decided = sync([facts("V7", status="completed", lora_url=PLAIN + "style_1_vV7.safetensors")])

    assert decided.outcome == "create"
    assert decided.version_name == "V8"
    assert decided.lora_url == PLAIN + "style_1_vV8.safetensors"
    assert decided.decision.rule == Rule.CREATED
    assert taken(decided.decision) == []


def test_a_file_of_a_version_completed_from_another_file_is_skipped() -> None:
    other = PLAIN + "archive/some_other_name.safetensors"
    decided = sync([facts(status="completed", lora_url=other)])

    assert decided.outcome == "skip"
    assert decided.version_name == "V8"
    assert decided.lora_url is None
    assert decided.decision.rule == Rule.OTHER_FILE_OF_VERSION
    assert taken(decided.decision) == []
    assert other in decided.decision.candidates[-1].why
    assert decided.reason is not None and other in decided.reason


# -- S3 sync: empty files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "versions",
    [
        [],  # an unknown version: no entry is created
        [facts(status="pending")],  # a pending version stays pending
        [facts(status="failed")],
        [facts(status="completed", lora_url=PLAIN + "style_1_vV8.safetensors")],
    ],
    ids=["unknown", "pending", "failed", "completed"],
)
def test_an_empty_file_is_skipped_whatever_version_it_names(versions: list[VersionFacts]) -> None:
    decided = sync(versions, size=0)

    assert decided.outcome == "skip"
    assert decided.version_name == "V8"
    assert decided.lora_url is None
    assert decided.decision.rule == Rule.EMPTY_FILE
    assert taken(decided.decision) == []
    assert decided.decision.input["size"] == 0
    assert decided.reason is not None and "0 bytes" in decided.reason


def test_an_empty_file_is_skipped_even_when_its_etag_was_seen_before() -> None:
    decided = sync([facts(status="pending")], size=0, known_etag='"etag-1"')

    assert decided.outcome == "skip"
    assert decided.decision.rule == Rule.EMPTY_FILE


def test_a_one_byte_file_is_not_empty() -> None:
    assert sync([facts(status="pending")], size=1).outcome == "complete"


def test_same_etag_as_recorded_is_unchanged_whatever_the_versions() -> None:
    decided = sync([facts(status="pending")], known_etag='"etag-1"')

    assert decided.outcome == "unchanged"
    assert decided.lora_url is None
    assert decided.decision.rule == Rule.UNCHANGED_ETAG
    assert decided.decision.candidates == ()


def test_a_new_etag_is_matched_again() -> None:
    decided = sync([facts(status="pending")], known_etag='"etag-0"')

    assert decided.outcome == "complete"


def test_style_candidates_reindex_a_version_when_its_facts_change() -> None:
    candidates = StyleCandidates([facts(status="pending")])
    candidates.put(facts(status="completed", lora_url=PLAIN + "style_1_vV8.safetensors"))
    candidates.put(facts(status="completed", lora_url=ACCEL + "style_1_vV8.safetensors"))

    assert candidates.by_url_file == {"style_1_vV8.safetensors": ["V8"]}
    assert candidates.by_id == {JOB: ["V8"]}
    assert candidates.by_name["V8"].lora_url == ACCEL + "style_1_vV8.safetensors"


def test_url_file_name_is_the_decoded_last_path_segment() -> None:
    assert (
        url_file_name("https://b.s3.amazonaws.com/p/style_1_vV8.safetensors?x=1") == "style_1_vV8.safetensors"
    )
    assert url_file_name("https://b/p/a%20b.safetensors") == "a b.safetensors"


# -- URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://s3-accelerate.amazonaws.com/bucket/k", "https://bucket.s3-accelerate.amazonaws.com/k"),
        (
            "https://s3-accelerate.amazonaws.com/storyboard-user-files/a/style_1_vV8.safetensors",
            "https://storyboard-user-files.s3-accelerate.amazonaws.com/a/style_1_vV8.safetensors",
        ),
        ("https://s3.us-west-1.amazonaws.com/bucket/a/b", "https://bucket.s3.us-west-1.amazonaws.com/a/b"),
        ("https://s3.amazonaws.com/bucket/k", "https://bucket.s3.amazonaws.com/k"),
        ("https://bucket.s3-accelerate.amazonaws.com/k", "https://bucket.s3-accelerate.amazonaws.com/k"),
        ("https://example.com/bucket/k", "https://example.com/bucket/k"),
        ("https://s3.amazonaws.com/bucket", "https://s3.amazonaws.com/bucket"),
    ],
)
def test_path_style_s3_urls_become_virtual_hosted(url: str, expected: str) -> None:
    assert virtual_hosted(url) == expected


@pytest.mark.parametrize(
    ("current", "offered", "expected"),
    [
        (None, PLAIN + "f", True),
        (PLAIN + "f", ACCEL + "f", True),
        (ACCEL + "f", PLAIN + "f", False),
        (ACCEL + "f", ACCEL + "f", False),
        (PLAIN + "f", PLAIN + "g", False),
    ],
)
def test_should_replace_only_ever_upgrades_to_acceleration(
    current: str | None, offered: str, expected: bool
) -> None:
    assert should_replace(current, offered) is expected


# -- job reports ----------------------------------------------------------------------------------

DERIVED = PLAIN + "style_1_vV8.safetensors"


def report(
    status: str = "COMPLETED",
    *,
    job_id: str = JOB,
    output_status: str | None = "success",
    lora_url: str | None = None,
    error: str | None = None,
    model_name: str | None = "style_1_vV8",
) -> JobReport:
    return JobReport(
        job_id=job_id,
        status=status,
        output_status=output_status,
        model_name=model_name,
        lora_url=lora_url,
        error=error,
    )


def started(**changes: object) -> VersionFacts:
    base: dict[str, object] = {"id": JOB, "status": "pending", "job_ids": (JOB,)}
    base.update(changes)
    return facts(**base)  # type: ignore[arg-type]


def test_completed_report_matched_by_exact_job_id_completes_the_version() -> None:
    match = JobMatch(Rule.JOB_ID_EXACT, started(), f"job id {JOB}")
    decided = decide_report(report(), match, "webhook", DERIVED)

    assert decided.outcome == "complete"
    assert decided.attempt_id == JOB
    assert decided.lora_url == DERIVED  # no URL in the report: derived from the model name
    assert decided.error is None
    assert decided.decision.rule == Rule.JOB_ID_EXACT
    assert decided.decision.source == "webhook"
    assert taken(decided.decision) == ["V8"]
    assert decided.decision.input == {
        "job_id": JOB,
        "status": "COMPLETED",
        "output_status": "success",
        "model_name": "style_1_vV8",
    }


@pytest.mark.parametrize(
    ("known", "reported"),
    [(JOB, JOB_BASE), (JOB_BASE, JOB), (JOB_BASE + "-e1", JOB_BASE + "-e2"), (JOB_BASE + "-u1", JOB)],
)
def test_report_matched_with_suffix_removed_is_the_versions_own_attempt(known: str, reported: str) -> None:
    match = JobMatch(Rule.JOB_ID_SUFFIX, started(id=known, job_ids=(known,)), f"job id {known} ~ {reported}")
    decided = decide_report(report(job_id=reported), match, "webhook", DERIVED)

    assert decided.outcome == "complete"
    assert decided.attempt_id == known  # the version's spelling of the id is kept
    assert decided.decision.rule == Rule.JOB_ID_SUFFIX


def test_report_matched_by_model_name_adopts_the_reported_job() -> None:
    version = facts(id="style_1_vV8", status="pending", job_ids=())
    match = JobMatch(Rule.MODEL_NAME, version, "model name style_1_vV8")
    decided = decide_report(report(job_id="new-job-e1"), match, "webhook", DERIVED)

    assert decided.outcome == "complete"
    assert decided.attempt_id == "new-job-e1"
    assert decided.decision.rule == Rule.MODEL_NAME


def test_unmatched_report_is_parked() -> None:
    match = JobMatch(Rule.UNMATCHED, None, "job x not known, no model name")
    decided = decide_report(report(job_id="x", model_name=None), match, "webhook", None)

    assert decided.outcome == "park"
    assert decided.attempt_id is None
    assert decided.decision.rule == Rule.UNMATCHED
    assert decided.decision.candidates == ()
    assert "output_status" in decided.decision.input


def test_repeat_of_a_reported_job_is_a_repeat_not_a_second_completion() -> None:
    version = started(status="completed", lora_url=DERIVED, reported=frozenset({JOB}))
    match = JobMatch(Rule.JOB_ID_EXACT, version, "job id")
    decided = decide_report(report(), match, "webhook", DERIVED)

    assert decided.outcome == "repeat"
    assert decided.decision.rule == Rule.REPEAT
    assert decided.lora_url is None
    assert decided.attempt_id == JOB


def test_repeat_may_still_upgrade_a_plain_url_to_an_accelerated_one() -> None:
    version = started(status="completed", lora_url=DERIVED, reported=frozenset({JOB}))
    match = JobMatch(Rule.JOB_ID_EXACT, version, "job id")
    decided = decide_report(report(lora_url=ACCEL + "style_1_vV8.safetensors"), match, "webhook", DERIVED)

    assert decided.outcome == "repeat"
    assert decided.lora_url == ACCEL + "style_1_vV8.safetensors"


def test_report_of_an_older_attempt_is_ignored() -> None:
    version = started(id="job-b", job_ids=("job-a", "job-b"), status="pending")
    match = JobMatch(Rule.JOB_ID_EXACT, version, "job id job-a")
    decided = decide_report(report(job_id="job-a"), match, "webhook", DERIVED)

    assert decided.outcome == "ignore"
    assert decided.decision.rule == Rule.STALE_ATTEMPT
    assert decided.lora_url is None
    assert "job-a is an older attempt" in decided.decision.candidates[0].why


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED", "TIMED_OUT"])
def test_failure_report_after_completion_is_ignored(status: str) -> None:
    version = started(status="completed", lora_url=DERIVED)
    match = JobMatch(Rule.JOB_ID_EXACT, version, "job id")
    decided = decide_report(report(status, output_status=None), match, "webhook", DERIVED)

    assert decided.outcome == "ignore"
    assert decided.decision.rule == Rule.FAILURE_AFTER_COMPLETION
    assert decided.error is None


@pytest.mark.parametrize("output_status", ["error", "failed", "ERROR", ""])
def test_completed_with_an_error_output_status_fails_the_version(output_status: str) -> None:
    match = JobMatch(Rule.JOB_ID_EXACT, started(), "job id")
    decided = decide_report(report(output_status=output_status), match, "webhook", DERIVED)

    assert decided.outcome == "fail"
    assert decided.lora_url is None
    assert decided.error == f"worker reported output.status {output_status!r}"


@pytest.mark.parametrize(
    "output_status", ["success", "SUCCESS", "succeeded", "ok", "completed", "done", None]
)
def test_completed_with_a_success_like_output_status_completes(output_status: str | None) -> None:
    match = JobMatch(Rule.JOB_ID_EXACT, started(), "job id")
    decided = decide_report(report(output_status=output_status), match, "webhook", DERIVED)

    assert decided.outcome == "complete"


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED", "TIMED_OUT"])
def test_failed_cancelled_and_timed_out_fail_the_version(status: str) -> None:
    match = JobMatch(Rule.JOB_ID_EXACT, started(), "job id")
    decided = decide_report(report(status, output_status=None), match, "webhook", DERIVED)

    assert decided.outcome == "fail"
    assert decided.attempt_id == JOB
    assert decided.error == f"RunPod job ended {status}"
    assert decided.decision.rule == Rule.JOB_ID_EXACT


def test_failure_report_keeps_the_workers_error_text() -> None:
    match = JobMatch(Rule.JOB_ID_EXACT, started(), "job id")
    decided = decide_report(report("FAILED", error="CUDA out of memory"), match, "webhook", DERIVED)

    assert decided.error == "CUDA out of memory"


@pytest.mark.parametrize("status", ["IN_PROGRESS", "IN_QUEUE"])
def test_running_job_is_reported_as_running_and_changes_nothing(status: str) -> None:
    match = JobMatch(Rule.JOB_ID_EXACT, started(), "job id")
    decided = decide_report(report(status, output_status=None), match, "reconcile", DERIVED)

    assert decided.outcome == "running"
    assert decided.decision.rule == Rule.STILL_RUNNING
    assert decided.decision.source == "reconcile"
    assert decided.lora_url is None


def test_reported_path_style_url_is_turned_virtual_hosted() -> None:
    match = JobMatch(Rule.JOB_ID_EXACT, started(), "job id")
    path_style = "https://s3-accelerate.amazonaws.com/bucket/prefix/style_1_vV8.safetensors"
    decided = decide_report(report(lora_url=path_style), match, "webhook", DERIVED)

    assert decided.lora_url == "https://bucket.s3-accelerate.amazonaws.com/prefix/style_1_vV8.safetensors"


def test_completion_after_sync_keeps_an_accelerated_url_and_notes_the_refused_one() -> None:
    version = started(status="completed", lora_url=ACCEL + "style_1_vV8.safetensors")
    match = JobMatch(Rule.JOB_ID_EXACT, version, "job id")
    decided = decide_report(report(lora_url=PLAIN + "style_1_vV8.safetensors"), match, "webhook", DERIVED)

    assert decided.outcome == "complete"  # the first report of the job's end is still recorded
    assert decided.lora_url is None
    assert decided.decision.notes == (
        f"kept loraUrl {ACCEL}style_1_vV8.safetensors; not replaced by {PLAIN}style_1_vV8.safetensors",
    )


def test_completion_without_any_url_source_leaves_the_url_unset() -> None:
    match = JobMatch(Rule.JOB_ID_EXACT, started(), "job id")
    decided = decide_report(report(), match, "webhook", None)

    assert decided.outcome == "complete"
    assert decided.lora_url is None


# -- properties -----------------------------------------------------------------------------------

NAMES = [f"V{n}" for n in range(1, 6)]
JOBS = ["job-a", "job-a-e1", "job-b-e1", "job-c"]


@st.composite
def version_facts(draw: st.DrawFn, name: str) -> VersionFacts:
    number = name[1:]
    url_file = draw(
        st.sampled_from(
            [None, f"style_1_vV{number}.safetensors", "style_1_vV1.safetensors", "other.safetensors"]
        )
    )
    lora_url = None if url_file is None else draw(st.sampled_from([PLAIN, ACCEL])) + url_file
    job_ids = tuple(draw(st.lists(st.sampled_from(JOBS), max_size=3, unique=True)))
    id_ = draw(st.sampled_from([None, f"style_1_vV{number}", "style_1_vV2", *job_ids]))
    reported = frozenset(draw(st.lists(st.sampled_from(job_ids), max_size=3))) if job_ids else frozenset()
    return VersionFacts(
        name=name,
        id=id_,
        status=draw(st.sampled_from([None, "pending", "completed", "failed"])),
        lora_url=lora_url,
        job_ids=job_ids,
        reported_jobs=reported,
    )


@st.composite
def style_versions(draw: st.DrawFn) -> list[VersionFacts]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    return [draw(version_facts(name)) for name in names]


lora_files = st.lists(
    st.tuples(
        st.integers(1, 6),
        st.sampled_from(["vV", "vv", "v"]),
        st.sampled_from(['"e1"', '"e2"']),
        st.sampled_from([PLAIN, ACCEL]),
        st.sampled_from([None, '"e1"']),
    ),
    max_size=8,
)


def _assert_well_formed(decision: Decision) -> None:
    assert decision.rule in Rule.all()
    assert sum(1 for candidate in decision.candidates if candidate.taken) <= 1
    names = [candidate.name for candidate in decision.candidates]
    assert len(names) == len(set(names))


@settings(max_examples=300, deadline=None)
@given(style_versions(), lora_files)
def test_sync_decisions_name_known_rules_take_at_most_one_and_never_create_an_existing_version(
    versions: list[VersionFacts],
    files: list[tuple[int, str, str, str, str | None]],
) -> None:
    candidates = StyleCandidates(versions)
    for number, spelling, etag, base, known in files:
        key = f"prefix/style_1_{spelling}{number}.safetensors"
        model = parse_lora_key(key)
        existing = set(candidates.by_name)
        current = candidates.by_name.get(model.version_name)
        decided = match_lora_file(lora(key, etag), model, candidates, base + key[7:], known)

        _assert_well_formed(decided.decision)
        if decided.outcome == "create":
            assert model.version_name not in existing
        else:
            assert decided.version_name in existing or decided.outcome == "unchanged"
        if decided.outcome in ("complete", "synced"):
            assert taken(decided.decision) == [decided.version_name]
        if decided.outcome == "synced" and decided.lora_url is not None:
            chosen = candidates.by_name[decided.version_name]  # type: ignore[index]
            assert should_replace(chosen.lora_url, decided.lora_url)
            if chosen.lora_url is not None:
                assert is_accelerated(decided.lora_url) and not is_accelerated(chosen.lora_url)
        if current is not None and current.status == "completed" and current.lora_url:
            assert decided.outcome != "complete"
        # apply the decision as the ledger does, so later files see it
        if decided.outcome in ("complete", "synced", "create"):
            assert decided.version_name is not None
            before = candidates.by_name.get(decided.version_name)
            candidates.put(
                VersionFacts(
                    name=decided.version_name,
                    id=before.id if before else model.canonical,
                    status="completed",
                    lora_url=decided.lora_url or (before.lora_url if before else None),
                    job_ids=before.job_ids if before else (),
                    reported_jobs=before.reported_jobs if before else frozenset(),
                )
            )
        assert list(candidates.by_name) == list(dict.fromkeys(candidates.by_name))


MATCH_RULES = [Rule.JOB_ID_EXACT, Rule.JOB_ID_SUFFIX, Rule.MODEL_NAME, Rule.PARKED_APPLIED]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.none(), version_facts("V3")),
    st.sampled_from(MATCH_RULES),
    st.sampled_from([*JOBS, "job-b", "job-d"]),
    st.sampled_from(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT", "IN_PROGRESS", "IN_QUEUE"]),
    st.sampled_from([None, "success", "error", "ok"]),
    st.sampled_from(
        [
            None,
            PLAIN + "style_1_vV3.safetensors",
            "https://s3-accelerate.amazonaws.com/bucket/style_1_vV3.safetensors",
        ]
    ),
    st.sampled_from([None, DERIVED]),
)
def test_report_decisions_name_known_rules_take_at_most_one_and_never_downgrade(
    version: VersionFacts | None,
    rule: str,
    job_id: str,
    status: str,
    output_status: str | None,
    reported_url: str | None,
    derived: str | None,
) -> None:
    match = JobMatch(rule if version else Rule.UNMATCHED, version, "why")
    job_report = report(status, job_id=job_id, output_status=output_status, lora_url=reported_url)
    decided = decide_report(job_report, match, "webhook", derived)

    _assert_well_formed(decided.decision)
    assert decided.decision.outcome == decided.outcome
    if version is None:
        assert decided.outcome in ("park", "running")
        return
    if decided.lora_url is not None:
        assert decided.outcome in ("complete", "repeat")
        assert should_replace(version.lora_url, decided.lora_url)
        assert "amazonaws.com/bucket/" not in decided.lora_url  # path-style never stored
    if version.status == "completed" and version.lora_url:
        assert decided.outcome != "fail"
    if decided.outcome == "fail":
        assert decided.error
    if decided.outcome in ("complete", "fail"):
        assert decided.attempt_id not in version.reported_jobs


def test_model_name_helper_values_used_above_are_canonical() -> None:
    assert parse_lora_key("prefix/style_1_vV8.safetensors") == ModelName(1, "V8")


def test_a_legacy_spelled_copy_never_repoints_the_lora_url_at_another_file() -> None:
    current = PLAIN + "style_1_vV8.safetensors"
    decided = sync([facts(status="completed", lora_url=current)], "prefix/style_1_v8.safetensors", base=ACCEL)

    # the listed file is style_1_v8.safetensors; the version's loraUrl names style_1_vV8.safetensors
    assert decided.lora_url is None
