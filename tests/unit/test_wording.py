"""Counts in the commands' lines read as English: `1 event`, `2 events`, `0 styles`."""

from __future__ import annotations

from loraledger.api.render import history_text
from loraledger.api.wording import plural


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert [plural(n, "event") for n in (0, 1, 2)] == ["0 events", "1 event", "2 events"]
    assert plural(1, "style") == "1 style" and plural(1, "skipped file") == "1 skipped file"


def test_a_history_of_one_event_says_1_event() -> None:
    one = {"style_id": 1, "version": "V8", "events": [{"type": "Imported", "at": "t", "data": {}}]}
    assert history_text(one).splitlines()[0] == "style 1 V8: 1 event"
