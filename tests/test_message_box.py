"""The context meter's element as the server draws it (pages/sections/message_box.py); what
its script does with it is tested in a real browser (tests/e2e/test_message_box.py)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pages.sections.message_box import MeterNumbers, meter_html


class _Attributes(HTMLParser):
    """The attributes of the first element of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs) -> None:
        if self.found is None:
            self.found = dict(attrs)


def _attributes(fragment: str) -> dict[str, str | None]:
    parser = _Attributes()
    parser.feed(fragment)
    return parser.found or {}


numbers = st.builds(
    MeterNumbers,
    conversation=st.integers(0, 10**7),
    window=st.none() | st.integers(1, 10**7),
    reply_room=st.integers(0, 10**6),
    tokens_per_character=st.floats(0.01, 4, allow_nan=False),
    exact=st.booleans(),
    attachments_waiting=st.integers(0, 10**6),
)


@given(numbers)
def test_the_meter_element_carries_every_number(shown: MeterNumbers):
    """Property: each number the server knows is in the element's data-* attributes, read back
    as the script reads them, and it is an ARIA meter exactly when the window is known."""
    found = _attributes(meter_html(shown))
    assert found["class"] == "sb-meter"
    assert int(found["data-conversation"]) == shown.conversation
    assert int(found["data-reply-room"]) == shown.reply_room
    assert int(found["data-waiting"]) == shown.attachments_waiting
    assert float(found["data-tokens-per-character"]) == shown.tokens_per_character
    assert found["data-exact"] == ("true" if shown.exact else "false")
    if shown.window is None:
        assert found["data-window"] == ""
        assert found["role"] != "meter"
    else:
        assert int(found["data-window"]) == shown.window
        assert (found["role"], found["aria-valuemax"]) == ("meter", str(shown.window))


@pytest.mark.parametrize("wrong", [
    {"conversation": -1}, {"reply_room": -1}, {"attachments_waiting": -1}, {"window": 0},
    {"tokens_per_character": 0.0}, {"tokens_per_character": float("nan")},
])
def test_numbers_that_cannot_be_are_refused(wrong):
    given_numbers = {"conversation": 1, "window": 100, "reply_room": 10,
                     "tokens_per_character": 0.25, "exact": True, **wrong}
    with pytest.raises(ValueError):
        MeterNumbers(**given_numbers)
