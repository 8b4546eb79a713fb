"""CONTRACT §1: style ids, version names, model names, LoRA file keys and legacy entry names."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loraledger.domain.naming import (
    ModelName,
    NameRejected,
    format_model_name,
    job_base_id,
    key_basename,
    next_version_name,
    parse_legacy_name,
    parse_lora_key,
    parse_model_name,
    parse_style_id,
    parse_version_name,
    version_number,
)

# -- style ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("1", 1), ("82", 82), ("100", 100), ("123456789", 123456789)])
def test_style_id_accepts_positive_integers_without_leading_zeros(text: str, expected: int) -> None:
    assert parse_style_id(text) == expected


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (82, 82), (100, 100)])
def test_style_id_accepts_positive_ints(value: int, expected: int) -> None:
    assert parse_style_id(value) == expected


@pytest.mark.parametrize(
    "text", ["0", "01", "-1", "abc", "../x", "", " 1", "1 ", "1\n", "+1", "1.0", "\uff11", "1234567890"]
)
def test_style_id_rejects_malformed_text_with_a_reason(text: str) -> None:
    with pytest.raises(NameRejected) as rejected:
        parse_style_id(text)
    assert repr(text) in rejected.value.reason
    assert "positive integer without leading zeros" in rejected.value.reason


@pytest.mark.parametrize("value", [0, -1, True, False, 1234567890])
def test_style_id_rejects_non_positive_boolean_and_oversized_ints(value: int) -> None:
    with pytest.raises(NameRejected) as rejected:
        parse_style_id(value)
    assert rejected.value.reason


# -- version names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"), [("V8", "V8"), ("v8", "V8"), ("V1", "V1"), ("v10", "V10"), ("V100", "V100")]
)
def test_version_name_is_case_insensitive_and_canonicalised_to_upper_v(text: str, expected: str) -> None:
    assert parse_version_name(text) == expected


@pytest.mark.parametrize(
    "text",
    ["V08", "V0", "8", "V", "", "V8a", "VV8", "V 8", " V8", "V8\n", "V-8", "W8", "V\uff18", "V1234567890"],
)
def test_version_name_rejects_anything_but_v_n_with_a_reason(text: str) -> None:
    with pytest.raises(NameRejected) as rejected:
        parse_version_name(text)
    assert repr(text) in rejected.value.reason
    assert "V<n>" in rejected.value.reason


@pytest.mark.parametrize(
    ("names", "expected"),
    [([], "V1"), (["V1"], "V2"), (["V9", "V10", "V3"], "V11"), (["V999999998"], "V999999999")],
)
def test_next_version_name_is_one_above_the_highest(names: list[str], expected: str) -> None:
    assert next_version_name(names) == expected


def test_there_is_no_next_version_name_after_the_highest_number() -> None:
    assert next_version_name(["V1", "V999999999"]) is None


def test_version_number_orders_numerically_not_lexically() -> None:
    assert sorted(["V2", "V10", "V1"], key=version_number) == ["V1", "V2", "V10"]


# -- model names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style_id", "version", "expected"),
    [(1, "V8", "style_1_vV8"), (82, "V5", "style_82_vV5"), (100, "v2", "style_100_vV2")],
)
def test_format_model_name_follows_the_design_note(style_id: int, version: str, expected: str) -> None:
    assert format_model_name(style_id, version) == expected


@pytest.mark.parametrize(("style_id", "version"), [(0, "V8"), (1, "V08"), (1, "../V8"), (1, "V8/../x")])
def test_format_model_name_never_builds_a_name_from_unchecked_parts(style_id: int, version: str) -> None:
    with pytest.raises(NameRejected):
        format_model_name(style_id, version)


def test_model_name_value_gives_canonical_and_file_name() -> None:
    model = ModelName(1, "V8", "style_1_v8")
    assert model.canonical == "style_1_vV8"
    assert model.file_name == "style_1_vV8.safetensors"
    assert model.normalisation == "legacy spelling 'style_1_v8' read as 'style_1_vV8'"
    assert ModelName(1, "V8").normalisation is None


# -- S3 keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "style_id", "version", "spelling"),
    [
        ("style_1_vV8.safetensors", 1, "V8", None),
        ("style_1_vv8.safetensors", 1, "V8", "style_1_vv8"),
        ("style_1_v8.safetensors", 1, "V8", "style_1_v8"),
        ("style_82_vV5.safetensors", 82, "V5", None),
        ("style_100_vV2.safetensors", 100, "V2", None),
        ("actor_maker_user/custom-styles-models/style_1_vV8.safetensors", 1, "V8", None),
        ("a/b/c/style_1_v8.safetensors", 1, "V8", "style_1_v8"),
    ],
)
def test_lora_key_reads_canonical_and_legacy_spellings_as_one_version(
    key: str, style_id: int, version: str, spelling: str | None
) -> None:
    model = parse_lora_key(key)
    assert (model.style_id, model.version_name, model.spelling) == (style_id, version, spelling)
    assert model.canonical == f"style_{style_id}_v{version}"


@pytest.mark.parametrize("key", ["style_1_vv8.safetensors", "prefix/style_1_v8.safetensors"])
def test_legacy_spelling_records_a_normalisation_note(key: str) -> None:
    note = parse_lora_key(key).normalisation
    assert note is not None
    assert "'style_1_vV8'" in note
    assert key_basename(key).removesuffix(".safetensors") in note


def test_canonical_key_records_no_normalisation() -> None:
    assert parse_lora_key("p/style_1_vV8.safetensors").normalisation is None


@pytest.mark.parametrize(
    ("key", "reason_part"),
    [
        ("style_1_vV8.bin", "does not end in .safetensors"),
        ("style_1_vV8.ckpt", "does not end in .safetensors"),
        ("style_1_vV8.SAFETENSORS", "does not end in .safetensors"),
        ("style_1_vV8", "does not end in .safetensors"),
        ("style_1_vV8 (1).safetensors", "version 'V8 (1)'"),
        ("style_01_vV8.safetensors", "style id '01'"),
        ("style_0_vV8.safetensors", "style id '0'"),
        ("style_1_vV08.safetensors", "version 'V08'"),
        ("style_1_vV0.safetensors", "version 'V0'"),
        ("style_1_v.safetensors", "version name is missing"),
        ("style_1_vvV8.safetensors", "version 'vV8'"),
        ("style_1_VV8.safetensors", "not a model name"),
        ("style_1_vV8.safetensors.tmp", "temporary or hidden"),
        ("style_1_vV8.safetensors.part", "temporary or hidden"),
        ("style_1_vV8.safetensors.partial", "temporary or hidden"),
        ("style_1_vV8.safetensors.crdownload", "temporary or hidden"),
        ("style_1_vV8.safetensors~", "temporary or hidden"),
        (".style_1_vV8.safetensors", "temporary or hidden"),
        ("prefix/.style_1_vV8.safetensors", "temporary or hidden"),
        ("prefix/", "folder marker"),
        ("", "folder marker"),
        ("actor_1_V1.safetensors", "not a style LoRA"),
        ("STYLE_1_vV8.safetensors", "not a style LoRA"),
        ("style_1_vV8.safetensors/readme.txt", "does not end in .safetensors"),
    ],
)
def test_lora_key_rejects_everything_else_with_a_reason(key: str, reason_part: str) -> None:
    with pytest.raises(NameRejected) as rejected:
        parse_lora_key(key)
    assert reason_part in rejected.value.reason


def test_only_the_basename_of_a_key_counts() -> None:
    # A folder named like a LoRA does not make its content one; a deep path does not change the name.
    assert key_basename("a/style_2_vV3.safetensors/style_1_vV8.safetensors") == "style_1_vV8.safetensors"
    assert parse_lora_key("style_2_vV3.safetensors/style_1_vV8.safetensors") == ModelName(1, "V8")
    with pytest.raises(NameRejected):
        parse_lora_key("style_1_vV8.safetensors/notes.txt")


def test_long_rejected_name_is_cut_in_the_reason() -> None:
    key = "style_1_v" + "x" * 5000 + ".safetensors"
    with pytest.raises(NameRejected) as rejected:
        parse_lora_key(key)
    assert len(rejected.value.reason) < 400


# -- legacy entry names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("V8", ("V8", None)),
        ("v8", ("V8", "case")),
        ("style_1_vV8.safetensors", ("V8", "file-name")),
        ("style_1_vV8", ("V8", "model-name")),
        ("style_1_v8", ("V8", "model-name")),
        ("style_1_vv8.safetensors", ("V8", "file-name")),
    ],
)
def test_legacy_entry_name_reads_as_its_version(name: str, expected: tuple[str, str | None]) -> None:
    assert parse_legacy_name(name, 1) == expected


@pytest.mark.parametrize(
    ("name", "reason_part"),
    [
        ("style_2_vV8.safetensors", "belongs to style 2, not style 1"),
        ("style_2_vV8", "belongs to style 2, not style 1"),
        ("8", "neither V<n> nor a model or file name"),
        ("V08", "neither V<n> nor a model or file name"),
        ("style_1_vV8.bin", "neither V<n> nor a model or file name"),
        ("", "neither V<n> nor a model or file name"),
    ],
)
def test_legacy_entry_name_of_another_style_or_malformed_is_rejected(name: str, reason_part: str) -> None:
    with pytest.raises(NameRejected) as rejected:
        parse_legacy_name(name, 1)
    assert reason_part in rejected.value.reason


# -- job ids --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_id", "base"),
    [
        ("ec487842-b853-4ca1-ba91-76bba6a59006-e2", "ec487842-b853-4ca1-ba91-76bba6a59006"),
        ("ec487842-b853-4ca1-ba91-76bba6a59006-u1", "ec487842-b853-4ca1-ba91-76bba6a59006"),
        ("ec487842-b853-4ca1-ba91-76bba6a59006", "ec487842-b853-4ca1-ba91-76bba6a59006"),
        ("job-e1x", "job-e1x"),
    ],
)
def test_job_base_id_removes_only_the_runpod_suffix(job_id: str, base: str) -> None:
    assert job_base_id(job_id) == base


# -- properties -----------------------------------------------------------------------------------

ANY_CHAR = st.characters(codec=None, exclude_categories=())
NASTY = st.sampled_from(
    ["/", "\\", "\x00", ".", "_", "v", "V", "style_", ".safetensors", "..", " ", "0", "1", "9"]
)
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=60),
    st.text(ANY_CHAR, min_size=2_000, max_size=6_000),
    st.lists(st.one_of(NASTY, st.text(ANY_CHAR, max_size=3)), max_size=20).map("".join),
)


@st.composite
def plausible_keys(draw: st.DrawFn) -> str:
    """Keys close to LoRA names, with each part drawn from good and bad spellings."""
    folder = draw(st.sampled_from(["", "prefix/", "a/b/", "../", "style_1_vV2.safetensors/", "x\\"]))
    style = draw(
        st.one_of(
            st.sampled_from(["1", "01", "0", "-1", "\uff11", "", "1 ", "82"]),
            st.integers(1, 10**10).map(str),
        )
    )
    separator = draw(st.sampled_from(["V", "v", "", "vV", "VV", "W", "\x00"]))
    number = draw(
        st.one_of(
            st.sampled_from(["8", "08", "0", "", "8 (1)", "8a", "\u0668"]), st.integers(1, 10**10).map(str)
        )
    )
    extension = draw(st.sampled_from([".safetensors", ".safetensors.tmp", ".bin", "", ".SAFETENSORS"]))
    head = draw(st.sampled_from(["style_", "Style_", ".style_", "style"]))
    mid = draw(st.sampled_from(["_v", "_V", "_", "_vv"]))
    return f"{folder}{head}{style}{mid}{separator}{number}{extension}"


def _assert_parse_is_total_and_round_trips(key: str) -> None:
    try:
        model = parse_lora_key(key)
    except NameRejected as rejected:
        assert isinstance(rejected.reason, str)
        assert rejected.reason
        return
    again = parse_model_name(model.canonical)
    assert (again.style_id, again.version_name, again.spelling) == (model.style_id, model.version_name, None)
    from_file = parse_lora_key(model.file_name)
    assert (from_file.style_id, from_file.version_name) == (model.style_id, model.version_name)
    assert model.canonical == format_model_name(model.style_id, model.version_name)
    assert parse_version_name(model.version_name) == model.version_name
    # the basename is the only input: any folder gives the same answer
    assert parse_lora_key("any/folder/" + key_basename(key)) == model


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_any_text_either_rejected_or_a_round_tripping_model_name(key: str) -> None:
    _assert_parse_is_total_and_round_trips(key)


@settings(max_examples=300, deadline=None)
@given(plausible_keys())
def test_near_miss_keys_either_rejected_or_a_round_tripping_model_name(key: str) -> None:
    _assert_parse_is_total_and_round_trips(key)


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_every_parser_raises_only_name_rejected(text: str) -> None:
    with contextlib.suppress(NameRejected):
        assert 1 <= parse_style_id(text) <= 999_999_999
    with contextlib.suppress(NameRejected):
        assert parse_version_name(text).lower() == text.lower()
    try:
        model = parse_model_name(text)
    except NameRejected:
        pass
    else:
        assert (model.spelling is None) == (model.canonical == text)
    for style_id in (1, 2):
        try:
            name, _ = parse_legacy_name(text, style_id)
        except NameRejected:
            continue
        assert parse_version_name(name) == name


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 999_999_999),
    st.integers(1, 999_999_999),
    st.sampled_from(["vV", "vv", "v"]),
    st.sampled_from(["", "prefix/", "deep/er/"]),
)
def test_all_three_spellings_of_a_valid_name_are_the_same_version(
    style_id: int, number: int, spelling: str, folder: str
) -> None:
    model = parse_lora_key(f"{folder}style_{style_id}_{spelling}{number}.safetensors")
    assert (model.style_id, model.version_name) == (style_id, f"V{number}")
    assert model.file_name == f"style_{style_id}_vV{number}.safetensors"
    assert (model.spelling is None) == (spelling == "vV")
