"""The JSON writer streams (issue 12): ``iter_dumps`` gives ``dumps``'s text, a call at a time."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from sipflow.model.analysis import call_filter, outcome_filter
from sipflow.model.call import CallOutcome, call_outcome, leg_outcome, leg_outline, outline_outcome
from sipflow.pipeline import analyze
from sipflow.render.json import (
    dumps,
    entry_text,
    entry_text_of,
    iter_dumps,
    leg_text,
    member_text,
    outline_member_text,
    outlined_entry_text,
    single_entry_cut,
    single_entry_text,
)

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


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_entry_from_an_outcome_and_outlines_is_the_entry(path: Path) -> None:
    """A shard worker builds a call whose legs are held by several workers from each leg's
    outline (``call_outcome``) and renders it from that outcome and each leg's
    ``member_text``: the same outcome as ``build_call``, the same text as ``entry_text``, and
    the same choice by every selection the outcome decides (``outcome_filter``). A leg's own
    outcome from its outline alone is ``leg_outcome``'s."""
    analysis = analyze([path])
    selections = [
        {},
        {"all_kinds": True},
        {"state": ["completed", "cancelled"]},
        {"status": "4xx"},
        {"index": 1},
        {"call_id": analysis.calls[-1].legs[-1].call_id if analysis.calls else "x"},
    ]
    for call in analysis.select(all_kinds=True):
        outlines = [leg_outline(leg) for leg in call.legs]
        outcome = call_outcome(call.index, outlines, call.correlation, call.related)
        for name in (f.name for f in fields(CallOutcome)):
            expected = {"messages": len(call.messages), "retransmissions": call.retransmissions}.get(name)
            assert getattr(outcome, name) == (getattr(call, name) if expected is None else expected), name
        for selection in selections:
            assert outcome_filter(**selection)(outcome) == call_filter(**selection)(call), selection
        for leg, outline in zip(call.legs, outlines, strict=True):
            assert outline_outcome(outline) == leg_outcome(leg)
        for leg, outline in zip(call.legs, outlines, strict=True):
            assert outline_member_text(outline, leg_text(leg)) == member_text(leg, leg_text(leg))
        if len(call.legs) == 1:
            (leg,) = call.legs
            assert single_entry_text(outcome, leg_text(leg)) == entry_text(call)
            if not call.related:  # cut before the call has its number, numbered after
                cut = single_entry_cut(call_outcome(0, outlines), leg_text(leg))
                assert cut.numbered(call.index) == entry_text(call)
                assert single_entry_text(outcome, cut.member) == entry_text(call)
        if len(call.legs) > 1:
            parts = [member_text(leg, leg_text(leg)) for leg in call.legs]
            assert outlined_entry_text(outcome, parts) == entry_text(call)
