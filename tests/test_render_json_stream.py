"""The JSON writer streams (issue 12): ``iter_dumps`` gives ``dumps``'s text, a call at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sipflow.pipeline import analyze
from sipflow.render.json import dumps, entry_text, entry_text_of, iter_dumps, leg_text

from .conftest import sample_captures, shared_captures


@pytest.mark.parametrize("path", sample_captures(), ids=lambda p: p.name)
def test_pieces_make_the_document(path: Path) -> None:
    analysis = analyze([path])
    for indent in (None, 2, 4):
        for with_flow in (False, True):
            for calls in (analysis.calls, analysis.calls[:1], ()):
                whole = dumps(analysis, calls, indent=indent, with_flow=with_flow)
                pieces = list(iter_dumps(analysis, calls, indent=indent, with_flow=with_flow))
                assert "".join(pieces) == whole
                assert len(json.loads(whole)["calls"]) == len(calls)
                assert len(pieces) == len(calls) + 2  # head, one per call, tail


def test_calls_are_encoded_one_at_a_time() -> None:
    """The writer asks for the next call only after handing out the previous one's text."""
    analysis = analyze([sample_captures()[0]])
    asked: list[int] = []

    def calls():  # type: ignore[no-untyped-def]
        for call in analysis.calls * 3:
            asked.append(call.index)
            yield call

    stream = iter_dumps(analysis, calls())
    next(stream)  # the head
    assert asked == []
    next(stream)
    assert len(asked) == 1


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_entry_from_legs_made_ahead_is_the_entry(path: Path) -> None:
    """``entry_text_of`` (a shard worker's legs' JSON made before their calls are known) gives
    ``entry_text``'s text for every item, one-leg calls (whose legs take the call's state) and
    correlated ones alike."""
    analysis = analyze([path])
    for call in analysis.select(all_kinds=True):
        assert entry_text_of(call, [leg_text(leg) for leg in call.legs]) == entry_text(call)
