"""js_stringify must write exactly what JavaScript's JSON.stringify(value, null, 2) writes."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loraledger.projections.js_json import js_iso, js_number, js_quote, js_stringify

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
LEGACY_FILES = sorted(LEGACY.glob("*.json"))

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not on PATH")

# Reads one JSON array of cases from stdin, answers with a JSON array holding
# JSON.stringify(case, null, 2) for each case, in order.
NODE_SCRIPT = r"""
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const cases = JSON.parse(input);
  process.stdout.write(JSON.stringify(cases.map((c) => JSON.stringify(c, null, 2))));
});
"""


def node_stringify_all(cases: list[object]) -> list[str]:
    """Run ONE node process for all cases; return JSON.stringify(case, null, 2) for each."""
    assert NODE is not None
    payload = json.dumps(cases, ensure_ascii=True, allow_nan=False)  # lone surrogates as \udxxx
    proc = subprocess.run(
        [NODE, "-e", NODE_SCRIPT],
        input=payload.encode("ascii"),
        capture_output=True,
        check=True,
        timeout=120,
    )
    answers = json.loads(proc.stdout.decode("utf-8"))
    assert isinstance(answers, list)
    assert len(answers) == len(cases)
    return [str(a) for a in answers]


def assert_all_match_node(cases: list[object]) -> None:
    expected = node_stringify_all(cases)
    mismatches = [
        (case, js_stringify(case), want)
        for case, want in zip(cases, expected, strict=True)
        if js_stringify(case) != want
    ]
    # Collected outside Hypothesis, so there is no shrinking: show the smallest failures.
    mismatches.sort(key=lambda m: len(json.dumps(m[0])))
    assert not mismatches, "\n".join(
        f"case={case!r}\n  python={got!r}\n  node  ={want!r}" for case, got, want in mismatches[:5]
    )


# --------------------------------------------------------------------------- legacy fixtures


@pytest.mark.parametrize("path", LEGACY_FILES, ids=[p.name for p in LEGACY_FILES])
def test_legacy_file_is_reproduced_byte_for_byte(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert js_stringify(json.loads(text)) == text.rstrip("\n")


def test_legacy_fixtures_are_present() -> None:
    assert len(LEGACY_FILES) >= 20


# --------------------------------------------------------------------------- numbers

# (python float, what JavaScript's JSON.stringify writes for it)
FLOAT_CASES: list[tuple[float, str]] = [
    (0.0, "0"),
    (-0.0, "0"),
    (5.0, "5"),
    (-5.0, "-5"),
    (100.0, "100"),
    (0.1, "0.1"),
    (0.1 + 0.2, "0.30000000000000004"),
    (-1.5, "-1.5"),
    (0.0003, "0.0003"),
    (0.0001, "0.0001"),
    (0.00001, "0.00001"),
    (0.0000123, "0.0000123"),
    (1e-6, "0.000001"),
    (-1e-6, "-0.000001"),
    (1.5e-6, "0.0000015"),
    (9.99e-7, "9.99e-7"),
    (1e-7, "1e-7"),
    (-1e-7, "-1e-7"),
    (1.5e-7, "1.5e-7"),
    (1.23e-18, "1.23e-18"),
    (5e-324, "5e-324"),
    (2.2250738585072014e-308, "2.2250738585072014e-308"),
    (1e15, "1000000000000000"),
    (1e16, "10000000000000000"),
    (2.0**53, "9007199254740992"),
    (2.0**53 + 2, "9007199254740994"),
    (1.5e16, "15000000000000000"),
    (1e20, "100000000000000000000"),
    (123456789012345680000.0, "123456789012345680000"),
    (9.999999999999999e20, "999999999999999900000"),
    (1e21, "1e+21"),
    (-1e21, "-1e+21"),
    (2.5e21, "2.5e+21"),
    (1.2345e22, "1.2345e+22"),
    (1e100, "1e+100"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (123.456, "123.456"),
    (4.35, "4.35"),
    (1 / 3, "0.3333333333333333"),
]

NON_FINITE_CASES: list[tuple[float, str]] = [
    (math.nan, "null"),
    (math.inf, "null"),
    (-math.inf, "null"),
]


@pytest.mark.parametrize(("value", "js"), FLOAT_CASES, ids=[js for _, js in FLOAT_CASES])
def test_float_is_written_like_javascript_number_to_string(value: float, js: str) -> None:
    assert js_stringify(value) == js
    assert js_number(value) == js


@pytest.mark.parametrize(("value", "js"), NON_FINITE_CASES, ids=["nan", "inf", "-inf"])
def test_nan_and_infinity_are_written_as_null(value: float, js: str) -> None:
    assert js_stringify(value) == js


def test_overflowing_json_numbers_become_null_like_javascript_infinity() -> None:
    assert js_stringify(json.loads("[1e400, -1e400]")) == "[\n  null,\n  null\n]"


@needs_node
def test_float_table_matches_node() -> None:
    values: list[object] = [v for v, _ in FLOAT_CASES]
    assert node_stringify_all(values) == [js for _, js in FLOAT_CASES]


@pytest.mark.parametrize(
    ("value", "js"),
    [
        (0, "0"),
        (-7, "-7"),
        (4000, "4000"),
        (2**53, "9007199254740992"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ([True, 1, False, 0], "[\n  true,\n  1,\n  false,\n  0\n]"),
    ],
)
def test_ints_bools_and_null_are_written_as_javascript_literals(value: object, js: str) -> None:
    assert js_stringify(value) == js


def test_ints_beyond_double_precision_are_written_exactly() -> None:
    # Documented deviation: JavaScript would have rounded this to a double when parsing.
    assert js_stringify(12345678901234567891) == "12345678901234567891"


# --------------------------------------------------------------------------- strings

STRING_CASES: list[tuple[str, str]] = [
    ("", '""'),
    ("plain", '"plain"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'),
    ("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"'),
    ("\x0b\x1b", '"\\u000b\\u001b"'),
    ("\x7f", '"\x7f"'),
    ("/", '"/"'),
    ("café ñ 日本", '"café ñ 日本"'),
    ("\u2028\u2029", '"\u2028\u2029"'),
    ("emoji \U0001f600", '"emoji \U0001f600"'),
    ("\ud800", '"\\ud800"'),
    ("\udfff", '"\\udfff"'),
    ("a\udc00b\ud83d", '"a\\udc00b\\ud83d"'),
    ("\ud83d\ude00", '"\U0001f600"'),  # a pair of surrogate code points is one character in JS
    ("\ude00\ud83d", '"\\ude00\\ud83d"'),  # wrong order: two lone surrogates
]


@pytest.mark.parametrize(("value", "js"), STRING_CASES, ids=[repr(v) for v, _ in STRING_CASES])
def test_string_escapes_match_javascript(value: str, js: str) -> None:
    assert js_quote(value) == js
    assert js_stringify(value) == js
    assert js_stringify({value: value}) == "{\n  " + js + ": " + js + "\n}"


def test_lone_surrogate_parsed_by_python_json_is_escaped_lowercase() -> None:
    assert js_stringify(json.loads('"x\\uD800y"')) == '"x\\ud800y"'


@needs_node
def test_string_table_matches_node() -> None:
    cases: list[object] = [v for v, _ in STRING_CASES]
    assert node_stringify_all(cases) == [js for _, js in STRING_CASES]


# --------------------------------------------------------------------------- structure


def test_empty_containers_are_written_inline() -> None:
    assert js_stringify({}) == "{}"
    assert js_stringify([]) == "[]"
    assert js_stringify({"a": {}, "b": [], "c": [{}, []]}) == (
        '{\n  "a": {},\n  "b": [],\n  "c": [\n    {},\n    []\n  ]\n}'
    )


def test_nesting_uses_two_space_indent_and_no_trailing_newline() -> None:
    value = {"versions": [{"id": "x", "parameters": {"lr": 0.0003, "steps": 4000}}]}
    assert js_stringify(value) == (
        "{\n"
        '  "versions": [\n'
        "    {\n"
        '      "id": "x",\n'
        '      "parameters": {\n'
        '        "lr": 0.0003,\n'
        '        "steps": 4000\n'
        "      }\n"
        "    }\n"
        "  ]\n"
        "}"
    )


def test_dict_keeps_insertion_order_for_ordinary_keys() -> None:
    assert js_stringify({"b": 1, "a": 2}) == '{\n  "b": 1,\n  "a": 2\n}'


def test_array_index_keys_come_first_in_numeric_order_like_javascript_objects() -> None:
    value = {"b": 1, "10": 2, "2": 3, "4294967295": 4, "4294967294": 5, "01": 6, "0": 7}
    assert js_stringify(value) == (
        '{\n  "0": 7,\n  "2": 3,\n  "10": 2,\n  "4294967294": 5,\n  "b": 1,\n  "4294967295": 4,\n  "01": 6\n}'
    )


def test_tuples_are_written_as_arrays() -> None:
    assert js_stringify((1, "a")) == js_stringify([1, "a"])


class TaggedList(list[object]):
    pass


def test_dict_and_list_subclasses_are_written_like_plain_ones() -> None:
    value = OrderedDict([("b", TaggedList([1])), ("a", OrderedDict())])
    assert js_stringify(value) == js_stringify({"b": [1], "a": {}})
    assert js_stringify([OrderedDict(x=1)]) == js_stringify([{"x": 1}])


def test_non_string_dict_key_is_rejected() -> None:
    with pytest.raises(TypeError, match="keys must be str"):
        js_stringify({1: "x"})


def test_unsupported_value_type_is_rejected() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        js_stringify({"when": datetime.now(UTC)})


def test_circular_reference_is_rejected() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        js_stringify(loop)


def test_same_object_twice_is_not_mistaken_for_a_cycle() -> None:
    shared = {"a": [1]}
    assert js_stringify([shared, shared]) == (
        '[\n  {\n    "a": [\n      1\n    ]\n  },\n  {\n    "a": [\n      1\n    ]\n  }\n]'
    )


# --------------------------------------------------------------------------- js_iso


def test_js_iso_writes_utc_with_milliseconds_and_z() -> None:
    dt = datetime(2025, 10, 14, 11, 10, 28, 234000, tzinfo=UTC)
    assert js_iso(dt) == "2025-10-14T11:10:28.234Z"


def test_js_iso_floors_microseconds_to_the_millisecond() -> None:
    dt = datetime(2025, 10, 14, 11, 10, 28, 234999, tzinfo=UTC)
    assert js_iso(dt) == "2025-10-14T11:10:28.234Z"


def test_js_iso_writes_zero_milliseconds() -> None:
    assert js_iso(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05.000Z"


def test_js_iso_converts_other_timezones_to_utc() -> None:
    tz = timezone(timedelta(hours=-7))
    dt = datetime(2025, 12, 31, 20, 30, 0, 1500, tzinfo=tz)
    assert js_iso(dt) == "2026-01-01T03:30:00.001Z"


def test_js_iso_pads_small_years_to_four_digits() -> None:
    assert js_iso(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000Z"


def test_js_iso_rejects_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        js_iso(datetime(2025, 10, 14, 11, 10, 28))


@needs_node
def test_js_iso_matches_node_to_iso_string() -> None:
    assert NODE is not None
    dts = [
        datetime(2025, 10, 14, 11, 10, 28, 234567, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2000, 2, 29, 12, 0, 0, 1000, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ]
    # Date from epoch microseconds the way JS code would construct it: new Date(ms) floors.
    micros = [(dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) for dt in dts]
    script = (
        "const us = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(us.map((u) => new Date(Math.floor(u / 1000))"
        ".toISOString())));"
    )
    proc = subprocess.run(
        [NODE, "-e", script],
        input=json.dumps(micros).encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert json.loads(proc.stdout) == [js_iso(dt) for dt in dts]


# --------------------------------------------------------------------------- properties

# Keys that exercise JavaScript's array-index ordering as well as arbitrary text.
json_keys = st.one_of(
    st.text(max_size=6),
    st.from_regex(r"\A(0|[1-9][0-9]{0,10})\Z"),
    st.sampled_from(["4294967294", "4294967295", "01", "-1", "1.5", " 1", "1e3", "00"]),
)
special_chars = st.sampled_from(
    [
        *"\x00\x01\x08\x09\x0a\x0b\x0c\x0d\x1f\x20\x22\x2f\x5c\x7f\x80\u2028\u2029\ufeff",
        *["\U0001f600", "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d", "\ude00"],
    ]
)
js_strings = st.text(
    alphabet=st.one_of(st.characters(), st.characters(categories=["Cs"]), special_chars),
    max_size=12,
)
# Short digit strings at every exponent around the decimal/exponent switch points.
boundary_floats = st.builds(
    lambda mantissa, exp: float(f"{mantissa}e{exp}"),
    st.integers(-(10**17), 10**17),
    st.integers(-30, 30),
)
finite_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    boundary_floats,
    st.sampled_from([1e21, 1e-7, 1e-6, 9.999999999999999e20, 1e-6 - 1e-22, 5e-324, -0.0]),
)
safe_ints = st.integers(-(2**53), 2**53)
json_scalars = st.one_of(st.none(), st.booleans(), safe_ints, finite_floats, js_strings)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(json_keys, children, max_size=6),
    ),
    max_leaves=25,
)

COLLECT = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@needs_node
def test_property_json_values_match_node() -> None:
    cases: list[object] = []

    @COLLECT
    @given(json_values)
    def collect(value: object) -> None:
        cases.append(value)

    collect()
    assert_all_match_node(cases)


@needs_node
def test_property_floats_match_node() -> None:
    cases: list[object] = []

    @settings(COLLECT, max_examples=3000)
    @given(finite_floats)
    def collect(value: float) -> None:
        cases.append(value)

    collect()
    assert_all_match_node(cases)


@needs_node
def test_property_strings_with_surrogates_match_node() -> None:
    cases: list[object] = []

    @settings(COLLECT, max_examples=1000)
    @given(js_strings)
    def collect(value: str) -> None:
        cases.append(value)
        cases.append({value: [value]})

    collect()
    assert_all_match_node(cases)


def as_utf16_string(s: str) -> str:
    """The string JavaScript sees: adjacent surrogate code points joined into one character."""
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def same_json(parsed: object, original: object) -> bool:
    """Type-aware equality: bools stay bools, numbers compare as doubles, strings as UTF-16."""
    if isinstance(original, bool) or original is None:
        return parsed is original
    if isinstance(original, int | float):
        # A JSON number is a double: "64011910516351310" means 6.401191051635131e16 even
        # though Python parses it as a (different) int.
        return (
            isinstance(parsed, int | float)
            and not isinstance(parsed, bool)
            and float(parsed) == float(original)
        )
    if isinstance(original, str):
        return parsed == as_utf16_string(original)
    if isinstance(original, list):
        return (
            isinstance(parsed, list)
            and len(parsed) == len(original)
            and all(same_json(p, o) for p, o in zip(parsed, original, strict=True))
        )
    if isinstance(original, dict):
        if not isinstance(parsed, dict):
            return False
        expected = {as_utf16_string(k): v for k, v in original.items()}
        return parsed.keys() == expected.keys() and all(same_json(parsed[k], v) for k, v in expected.items())
    raise AssertionError(f"unexpected value {original!r}")


@settings(max_examples=500, deadline=None, database=None)
@given(json_values)
def test_property_output_parses_back_to_the_same_value(value: object) -> None:
    text = js_stringify(value)
    assert same_json(json.loads(text), value)


@settings(max_examples=300, deadline=None, database=None)
@given(json_values)
def test_property_output_is_valid_utf8_and_has_no_trailing_newline(value: object) -> None:
    text = js_stringify(value)
    text.encode("utf-8")  # no lone surrogates left in the output
    assert not text.endswith("\n")
