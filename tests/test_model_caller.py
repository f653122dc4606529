"""The caller's view of a leg (issue 13): one place decides which transactions are the caller's
attempts and what answered them; the call, the statistics and correlation read it."""

from __future__ import annotations

import itertools

from sipflow.model.call import CallKind, build_call
from sipflow.model.caller import caller_view
from sipflow.pipeline import analyze

from .conftest import SAMPLES


def _legs(name: str) -> list[object]:
    return [leg for call in analyze([SAMPLES / name]).calls for leg in call.legs]


def test_a_challenged_call_has_two_attempts_and_the_second_answers() -> None:
    (leg,) = _legs("auth-407.pcap")
    view = caller_view(leg)  # type: ignore[arg-type]
    assert view.kind is CallKind.CALL
    assert len(view.attempts) == 2
    assert view.attempts[0].final_status == 407
    assert view.answered is view.attempts[1] and view.decisive is view.answered
    assert view.attempts[0].request is not None and view.start == view.attempts[0].request.timestamp
    assert view.answer_time == view.answered.final.timestamp  # type: ignore[union-attr]


def test_a_proxied_call_counts_only_the_callers_hop() -> None:
    (leg,) = _legs("proxy-call.pcap")
    view = caller_view(leg)  # type: ignore[arg-type]
    assert len(view.initial) == 2  # caller -> proxy, proxy -> callee
    assert len(view.attempts) == 1 and view.attempts[0] is view.initial[0]
    assert view.caller == view.initial[0].client
    call = build_call(1, (leg,))  # type: ignore[arg-type]
    ringing = view.first_provisional
    assert ringing is not None and call.pdd_ms == round((ringing.timestamp - view.start) * 1000, 3)


def test_an_unanswered_call_is_decided_by_its_last_attempt() -> None:
    (leg,) = _legs("cancel.pcap")
    view = caller_view(leg)  # type: ignore[arg-type]
    assert view.answered is None and view.answer_time is None
    assert view.decisive is view.last is view.attempts[-1]
    assert view.last is not None and view.last.final_status == 487


def test_every_item_kind_has_a_view() -> None:
    for path in sorted(SAMPLES.glob("*.pcap")):
        for call in analyze([path]).calls:
            for leg in call.legs:
                view = caller_view(leg)
                assert all(any(a is i for i in view.initial) for a in view.attempts)
                assert all(a.client == view.caller for a in view.attempts) or view.attempts == view.initial
                assert all(a.start <= b.start for a, b in itertools.pairwise(view.attempts))
            assert caller_view(call.legs[0]).kind is call.kind
