"""A retiring tracker (issue 12: memory bounded by the calls up at once, not by the capture):
the legs it lets go while messages are still fed are those a tracker that holds everything
builds at the end, and a message that comes for a retired Call-ID after all is told apart."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from sipflow.capture.reader import CaptureReader
from sipflow.capture.types import SipPayload
from sipflow.model.call import Leg, leg_outline
from sipflow.model.tracker import QUIET, Tally, Tracker
from sipflow.readahead import ParseFailure, parse_or_failure
from sipflow.render.json import leg_text
from sipflow.sip.message import SipRequest, SipResponse

from .conftest import SAMPLES, sample_captures, shared_captures

GAP = 100.0
"""Seconds between two replays of a capture: more than ``QUIET``."""


def _packets(path: Path) -> list[tuple[SipPayload, SipRequest | SipResponse]]:
    with CaptureReader(path) as reader:
        pairs = [(p, parse_or_failure(p)) for p in reader]
    return [(p, s) for p, s in pairs if not isinstance(s, ParseFailure)]


def _replayed(path: Path, times: int, *, again: bool) -> list[tuple[SipPayload, SipRequest | SipResponse]]:
    """The capture's messages ``times`` over, ``GAP`` seconds apart, each replay's Call-IDs
    made its own; with ``again``, once more at the end with the first replay's Call-IDs."""
    pairs = _packets(path)
    if not pairs:
        return []
    t0 = min(p.timestamp for p, _ in pairs)
    span = max(p.timestamp for p, _ in pairs) - t0 + GAP
    ids = sorted({s.call_id for _, s in pairs if s.call_id}, key=len, reverse=True)
    pattern = re.compile(b"|".join(re.escape(i.encode()) for i in ids)) if ids else None
    out = []
    for n in range(times + again):
        suffix = f"-r{n % times}".encode()
        for packet, _ in pairs:
            payload = packet.payload
            if pattern is not None and n % times:
                payload = pattern.sub(lambda m, s=suffix: m[0] + s, payload)
            moved = replace(packet, payload=payload, timestamp=packet.timestamp + n * span)
            parsed = parse_or_failure(moved)
            if not isinstance(parsed, ParseFailure):
                out.append((moved, parsed))
    return out


def _seen(leg: Leg) -> tuple[object, ...]:
    """What a leg is to its outputs (transaction ids differ between trackers fed differently)."""
    return (leg_text(leg), leg_outline(leg), tuple(m.index for m in leg.messages))


def _run(
    pairs: list[tuple[SipPayload, SipRequest | SipResponse]],
) -> tuple[dict[str, Leg], dict[str, Leg], set[str], Tally, Tally]:
    whole, retiring = Tracker(), Tracker(retiring=True)
    retired: dict[str, Leg] = {}
    reopened: set[str] = set()
    for index, (packet, sip) in enumerate(pairs):
        whole.feed(packet, sip, index=index)
        if retiring.has_retired(sip.call_id):
            reopened.add(sip.call_id or "")
            continue
        retiring.feed(packet, sip, index=index)
        for leg in retiring.retire():
            assert leg.call_id not in retired
            retired[leg.call_id] = leg
    end = max((p.timestamp for p, _ in pairs), default=0.0)
    whole_model, rest = whole.finish(end), retiring.finish(end)
    held = {leg.call_id: leg for leg in rest.legs}
    assert not set(held) & set(retired)
    assert [leg.call_id for leg in rest.legs] == sorted(held, key=lambda c: held[c].messages[0].index)
    return (
        {leg.call_id: leg for leg in whole_model.legs},
        {**retired, **held},
        reopened,
        whole_model.tally,
        rest.tally,
    )


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_retired_legs_are_the_legs_of_the_whole(path: Path) -> None:
    pairs = _replayed(path, 3, again=True)
    whole, kept, reopened, _, _ = _run(pairs)
    # A Call-ID replayed at the end was retired, or is still held; every other is the same.
    assert set(kept) == set(whole)
    for call_id, leg in whole.items():
        if call_id not in reopened:
            assert _seen(kept[call_id]) == _seen(leg), call_id


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_a_retiring_tracker_counts_every_message(path: Path) -> None:
    whole, kept, reopened, whole_tally, tally = _run(_replayed(path, 2, again=False))
    assert not reopened
    assert tally == whole_tally
    assert {c: _seen(leg) for c, leg in kept.items()} == {c: _seen(leg) for c, leg in whole.items()}


def test_calls_over_are_retired_and_a_late_message_is_told() -> None:
    """A completed call replayed ``GAP`` seconds on: the first one is let go while the others
    are fed (after ``QUIET`` seconds, not before), and the replay of its Call-ID is told."""
    pairs = _replayed(SAMPLES / "basic-call.pcap", 3, again=True)
    tracker = Tracker(retiring=True)
    retired_at: dict[str, float] = {}
    told = set()
    for index, (packet, sip) in enumerate(pairs):
        if tracker.has_retired(sip.call_id):
            told.add(sip.call_id)
            continue
        tracker.feed(packet, sip, index=index)
        for leg in tracker.retire():
            retired_at[leg.call_id] = packet.timestamp
            assert packet.timestamp - leg.end >= QUIET
    assert len(retired_at) >= 2  # the first two replays; the third is still held at the end
    assert told == {pairs[0][1].call_id}
    with pytest.raises(AssertionError):
        list(tracker.retire(quiet=QUIET / 2))
