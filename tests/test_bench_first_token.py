"""bench/first_token.py: its questions, its verdict, and one tiny real run (SmolLM2 on
llama.cpp's server, the app in Chromium, the raw SDK)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.first_token import AppRun, FirstToken, RawRun, measure, question
from bench.stream import BenchError, CHROMIUM
from tests.fixtures.common import missing


def test_each_question_is_its_own_and_all_have_one_shape():
    asked = [question(n) for n in range(40)]
    assert len(set(asked)) == 40  # llama.cpp reuses a prompt it has just seen
    shapes = {re.sub(r"\d+", "N", q) for q in asked}
    assert shapes == {"What is N plus N? Answer in one short sentence."}
    assert {len(q) for q in asked} == {len(asked[0])}


def _app(visible: float) -> AppRun:
    return AppRun(visible, visible, 0.1, 0.05, "42")


@pytest.mark.parametrize("app, raw, passed", [
    ([0.30, 0.31, 0.90], [0.20, 0.22, 0.25], True),  # medians 0.31 and 0.22
    ([0.33, 0.34, 0.10], [0.20, 0.22, 0.25], False),  # medians 0.33 and 0.22
])
def test_the_app_may_add_a_tenth_of_a_second_to_the_median(app, raw, passed):
    result = FirstToken([_app(v) for v in app], [RawRun(v, 0.05) for v in raw])
    assert result.passed is passed


def test_a_tiny_real_run(tmp_path):
    """One question each way: the page's first words came after the server's first event
    (measure refuses the run otherwise), and every figure is there."""
    if not Path(CHROMIUM).exists():
        missing(f"Chromium ({CHROMIUM})")
    try:
        result = measure(1, tmp_path)
    except BenchError as exc:
        if "not installed" in str(exc) or "missing" in str(exc):
            missing(str(exc))
        raise
    [app], [raw] = result.app, result.raw
    assert app.first_text and app.first_text != "Stop"
    assert 0 < app.in_dom <= app.visible < 60 and 0 < raw.first_token < 60
    assert 0 <= app.to_request < app.visible and app.server_first > 0 and raw.server_first > 0
