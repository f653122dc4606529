"""Leg correlation: headers, charging vectors, Session-ID, and the B2BUA heuristic."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipflow import analyze
from sipflow.capture.types import Endpoint
from sipflow.correlate import CorrelationOptions, HeaderRule, correlate
from sipflow.correlate.facts import _normalize_user
from sipflow.model.call import Leg
from tests.conftest import SAMPLES, SHARED_CAPTURES, shared_captures
from tests.sipmsg import Feeder, request, response

ALICE = Endpoint("10.0.0.1", 5060)
B2BUA = Endpoint("10.0.0.5", 5060)
BOB = Endpoint("10.0.0.9", 5060)


def _sdp(address: str, port: int) -> str:
    return (
        f"v=0\r\no=- {port} 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\n"
    )


def _with_body(data: bytes, body: str) -> bytes:
    head = data.replace(b"Content-Length: 0\r\n\r\n", b"")
    return head + f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()


def b2bua_call(
    feed: Feeder,
    n: int,
    t0: float,
    answer_after: float,
    outcome: int,
    *,
    extra: str = "",
    extra_in: str = "",
    anchored: bool = True,
) -> tuple[str, str]:
    """Alice → B2BUA (Call-ID in-n) and B2BUA → Bob (Call-ID out-n), outcome mirrored back."""
    a_id, b_id = f"in-{n}@10.0.0.1", f"out-{n}@10.0.0.5"
    offer_a = _sdp("10.0.0.1", 20000 + 2 * n)
    offer_b = _sdp("10.0.0.5", 30000 + 2 * n) if anchored else offer_a
    inv_a = request(
        "INVITE", call_id=a_id, from_tag=f"a{n}", branch=f"z9hG4bK-a{n}", body=offer_a, extra=extra_in
    )
    feed(t0, ALICE, B2BUA, inv_a)
    inv_b = request(
        "INVITE", call_id=b_id, from_tag=f"x{n}", branch=f"z9hG4bK-b{n}", vias=("10.0.0.5:5060",),
        body=offer_b, extra=extra,
    )  # fmt: skip
    feed(t0 + 0.004, B2BUA, BOB, inv_b)
    feed(t0 + 0.1, BOB, B2BUA, response(inv_b, 180, "Ringing", to_tag=f"y{n}"))
    feed(t0 + 0.101, B2BUA, ALICE, response(inv_a, 180, "Ringing", to_tag=f"z{n}"))
    t = t0 + answer_after
    if outcome == 200:
        feed(
            t, BOB, B2BUA, _with_body(response(inv_b, 200, "OK", to_tag=f"y{n}"), _sdp("10.0.0.9", 40000 + n))
        )
        feed(
            t + 0.002,
            B2BUA,
            ALICE,
            _with_body(response(inv_a, 200, "OK", to_tag=f"z{n}"), _sdp("10.0.0.5", 30001 + 2 * n)),
        )
    else:
        feed(t, BOB, B2BUA, response(inv_b, outcome, "Busy Here", to_tag=f"y{n}"))
        feed(t + 0.002, B2BUA, ALICE, response(inv_a, outcome, "Busy Here", to_tag=f"z{n}"))
    return a_id, b_id


def _groups(feed: Feeder, options: CorrelationOptions | None = None) -> set[frozenset[str]]:
    legs: tuple[Leg, ...] = feed.tracker.finish().legs
    return {frozenset(leg.call_id for leg in g.legs) for g in correlate(legs, options)}


def test_header_names_the_other_leg() -> None:
    feed = Feeder()
    a, b = b2bua_call(feed, 1, 0.0, 1.0, 200, extra="X-CID: in-1@10.0.0.1\r\n")
    legs = feed.tracker.finish().legs
    (group,) = correlate(legs)
    assert [leg.call_id for leg in group.legs] == [a, b]
    (link,) = group.links
    assert link.method == "header:X-CID" and link.confidence == 0.99 and link.legs == (0, 1)


def test_user_header_rule_with_regex() -> None:
    rule = HeaderRule.parse("X-Info:orig=([^;]+)")
    assert rule.extract("foo;orig=abc@host;bar") == "abc@host"
    feed = Feeder()
    b2bua_call(feed, 1, 0.0, 1.0, 200, extra="X-Info: foo;orig=in-1@10.0.0.1;x\r\n")
    options = CorrelationOptions(headers=(rule,), window=0.0)  # the heuristic cannot reach it
    legs = feed.tracker.finish().legs
    (group,) = correlate(legs, options)
    assert group.links[0].method == "header:X-Info"


@pytest.mark.parametrize("bad", ["", "X-Info:(", "X-Info:no-group", "bad name:x"])
def test_bad_header_rules(bad: str) -> None:
    with pytest.raises(ValueError):
        HeaderRule.parse(bad)


@pytest.mark.parametrize(
    ("header", "method"),
    [
        ('P-Charging-Vector: icid-value="abc123";orig-ioi=x\r\n', "p-charging-vector"),
        (f"Session-ID: {'ab' * 16};remote={'0' * 32}\r\n", "session-id"),
    ],
)
def test_shared_charging_vector_or_session_id(header: str, method: str) -> None:
    feed = Feeder()
    b2bua_call(feed, 1, 0.0, 1.0, 200, extra=header, extra_in=header)
    b2bua_call(feed, 2, 0.5, 1.0, 200)  # another call, nothing shared
    legs = feed.tracker.finish().legs
    groups = correlate(legs, CorrelationOptions(window=0.0))  # the heuristic cannot reach them
    joined = [g for g in groups if len(g.legs) > 1]
    assert [{leg.call_id for leg in g.legs} for g in joined] == [{"in-1@10.0.0.1", "out-1@10.0.0.5"}]
    assert joined[0].links[0].method == method and joined[0].links[0].confidence == 0.95


def test_heuristic_joins_one_b2bua_call_with_its_evidence() -> None:
    feed = Feeder()
    b2bua_call(feed, 1, 0.0, 1.5, 200)
    (group,) = correlate(feed.tracker.finish().legs)
    (link,) = group.links
    assert link.method == "b2bua-heuristic" and 0.5 <= link.confidence <= 0.95
    assert any("18x mirrored" in e for e in link.evidence)
    assert any("anchored" in e for e in link.evidence)


def _strangers(data: bytes) -> bytes:
    """The same message between two other people: no user in common with Alice's call."""
    return data.replace(b"bob@example.com", b"carol@example.net").replace(b"alice@", b"dave@")


def _anchored_invites() -> tuple[bytes, bytes]:
    """Alice's INVITE to the B2BUA, and the B2BUA's INVITE to Bob between other users, with its
    own relay address in the offer: nothing but timing and media ties them."""
    inv_a = request("INVITE", call_id="in-1@10.0.0.1", from_tag="a1", branch="z9hG4bK-a1",
                    body=_sdp("10.0.0.1", 20000))  # fmt: skip
    inv_b = _strangers(request("INVITE", call_id="out-9@10.0.0.5", from_tag="x9", branch="z9hG4bK-b9",
                               vias=("10.0.0.5:5060",), body=_sdp("10.0.0.5", 30000)))  # fmt: skip
    return inv_a, inv_b


def _anchored_pair(feed: Feeder, *, passes_cancel: bool) -> None:
    """Alice's call to the B2BUA is cancelled after 2 s; the B2BUA's call to Bob (other users,
    its own relay address in the offer) either is that call's B leg, cancelled in turn, or
    another call, refused with 486 60 ms before Alice's CANCEL."""
    inv_a, inv_b = _anchored_invites()
    feed(0.0, ALICE, B2BUA, inv_a)
    feed(0.09, B2BUA, BOB, inv_b)
    if passes_cancel:
        feed(0.3, BOB, B2BUA, response(inv_b, 180, "Ringing", to_tag="y9"))
    feed(0.301, B2BUA, ALICE, response(inv_a, 180, "Ringing", to_tag="z1"))
    if not passes_cancel:
        feed(1.94, BOB, B2BUA, response(inv_b, 486, "Busy Here", to_tag="y9"))
    cancel_a = request("CANCEL", call_id="in-1@10.0.0.1", from_tag="a1", branch="z9hG4bK-a1")
    feed(2.0, ALICE, B2BUA, cancel_a)
    feed(2.001, B2BUA, ALICE, response(cancel_a, 200, "OK"))
    feed(2.001, B2BUA, ALICE, response(inv_a, 487, "Request Terminated", to_tag="z1"))
    if passes_cancel:
        cancel_b = _strangers(request("CANCEL", call_id="out-9@10.0.0.5", from_tag="x9", branch="z9hG4bK-b9",
                                      vias=("10.0.0.5:5060",)))  # fmt: skip
        feed(2.003, B2BUA, BOB, cancel_b)
        feed(2.004, BOB, B2BUA, response(cancel_b, 200, "OK"))
        feed(2.005, BOB, B2BUA, response(inv_b, 487, "Request Terminated", to_tag="y9"))


@pytest.mark.parametrize("passes_cancel", [True, False])
def test_anchored_media_alone_needs_the_cancel_passed_on(passes_cancel: bool) -> None:
    """Media anchored at the B2BUA ties every pair of its calls: a final response that meets
    another call's by chance must not join them when the CANCEL was not passed on (A's 487
    answers its own CANCEL, not B's 486); the B leg that got the CANCEL is joined."""
    feed = Feeder()
    _anchored_pair(feed, passes_cancel=passes_cancel)
    groups = _groups(feed)
    if passes_cancel:
        assert groups == {frozenset({"in-1@10.0.0.1", "out-9@10.0.0.5"})}
    else:
        assert groups == {frozenset({"in-1@10.0.0.1"}), frozenset({"out-9@10.0.0.5"})}


@pytest.mark.parametrize("bye_lag", [0.002, 50.0])
def test_anchored_media_alone_needs_the_bye_passed_on(bye_lag: float) -> None:
    """Two answered calls whose 180 and 200 met by chance, tied only by the B2BUA's relay
    address, are two calls when their BYEs are 50 s apart (a B2BUA passes a BYE on at once)."""
    feed = Feeder()
    inv_a, inv_b = _anchored_invites()
    feed(0.0, ALICE, B2BUA, inv_a)
    feed(0.004, B2BUA, BOB, inv_b)
    feed(0.3, BOB, B2BUA, response(inv_b, 180, "Ringing", to_tag="y9"))
    feed(0.301, B2BUA, ALICE, response(inv_a, 180, "Ringing", to_tag="z1"))
    feed(3.0, BOB, B2BUA, _with_body(response(inv_b, 200, "OK", to_tag="y9"), _sdp("10.0.0.9", 40000)))
    feed(3.002, B2BUA, ALICE, _with_body(response(inv_a, 200, "OK", to_tag="z1"), _sdp("10.0.0.5", 30002)))
    bye_a = request("BYE", call_id="in-1@10.0.0.1", from_tag="a1", to_tag="z1", branch="z9hG4bK-a2", cseq=2)
    feed(30.0, ALICE, B2BUA, bye_a)
    bye_b = _strangers(request("BYE", call_id="out-9@10.0.0.5", from_tag="x9", to_tag="y9",
                               branch="z9hG4bK-b2", cseq=2, vias=("10.0.0.5:5060",)))  # fmt: skip
    feed(30.0 + bye_lag, B2BUA, BOB, bye_b)
    groups = _groups(feed)
    if bye_lag < 1:
        assert groups == {frozenset({"in-1@10.0.0.1", "out-9@10.0.0.5"})}
    else:
        assert groups == {frozenset({"in-1@10.0.0.1"}), frozenset({"out-9@10.0.0.5"})}


def test_no_correlate_keeps_one_call_per_call_id() -> None:
    feed = Feeder()
    b2bua_call(feed, 1, 0.0, 1.5, 200)
    assert len(correlate(feed.tracker.finish().legs, CorrelationOptions(enabled=False))) == 2


def test_many_concurrent_calls_between_the_same_users_are_not_mixed() -> None:
    """40 calls alice → bob through one B2BUA, overlapping, varied answer delays and outcomes:
    identities are all the same, so only timing and mirrored events can tell them apart."""
    rng = random.Random(7)
    feed = Feeder()
    truth = set()
    events = []
    for n in range(40):
        events.append((round(n * 0.05, 3), n, round(rng.uniform(0.3, 3.0), 3), rng.choice([200, 200, 486])))
    # Feed in time order: build each call's messages, then sort all of them by time.
    recorder = _Recorder()
    for t0, n, delay, outcome in events:
        truth.add(frozenset(b2bua_call(recorder, n, t0, delay, outcome)))  # type: ignore[arg-type]
    for t, src, dst, data in sorted(recorder.items, key=lambda item: item[0]):
        feed(t, src, dst, data)
    assert _groups(feed) == truth


class _Recorder:
    """Collects what ``b2bua_call`` would feed, to replay it in time order."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Endpoint, Endpoint, bytes]] = []

    def __call__(self, t: float, src: Endpoint, dst: Endpoint, data: bytes) -> None:
        self.items.append((t, src, dst, data))


@pytest.mark.skipif(not SHARED_CAPTURES.is_dir(), reason="../shared/captures not present")
@pytest.mark.parametrize(
    ("name", "call_ids"),
    [
        ("voip1b.pcapng", {"342701946", "390cbc3372b15a0d07903c6a6b66ab6a@172.16.98.180:5060"}),
        ("sip_tcp_websocket.pcap", {"kovfhoptshgn59q712sr", "926ffd16-6154-1237-09ba-0270b3230128"}),
    ],
)
def test_public_b2bua_captures_come_out_as_one_call(name: str, call_ids: set[str]) -> None:
    analysis = analyze([SHARED_CAPTURES / name])
    calls = analysis.select()
    (call,) = [c for c in calls if set(c.call_ids) & call_ids]
    assert set(call.call_ids) == call_ids
    (link,) = call.correlation
    assert link.method == "b2bua-heuristic" and link.confidence >= 0.7
    assert call.state.value == "completed" and call.final_status == 200
    assert call.legs[0].caller.host != call.legs[1].caller.host  # the caller's leg first


@pytest.mark.skipif(not SHARED_CAPTURES.is_dir(), reason="../shared/captures not present")
def test_transfer_is_related_not_merged() -> None:
    analysis = analyze([SHARED_CAPTURES / "voip-extension.pcap"])
    first, second = analysis.select()
    assert len(first.legs) == len(second.legs) == 1
    assert first.related == (second.id,) and second.related == (first.id,)


def _pairs(groups: Iterable[Iterable[str]]) -> set[tuple[str, str]]:
    return {pair for group in groups for pair in itertools.combinations(sorted(group), 2)}


def _truth_files() -> list[Path]:
    return sorted(SAMPLES.glob("*.truth.json"))


@pytest.mark.parametrize("truth_path", _truth_files(), ids=lambda p: p.name.removesuffix(".truth.json"))
def test_sample_leg_grouping_matches_what_the_generator_knows(truth_path: Path) -> None:
    """Each correlation sample (samples/make-correlation-samples.sh) ships the grouping its
    generator knows; sipflow must find exactly it. Precision and recall of the leg pairs are
    printed (``pytest -s``); the test fails below 0.99 precision."""
    truth = [frozenset(ids) for ids in json.loads(truth_path.read_text())["calls"]]
    analysis = analyze([truth_path.with_name(truth_path.name.removesuffix(".truth.json") + ".pcap")])
    got = [frozenset(c.call_ids) for c in analysis.calls if c.kind.value == "call"]
    expected, found = _pairs(truth), _pairs(got)
    precision = len(expected & found) / len(found) if found else 1.0
    recall = len(expected & found) / len(expected) if expected else 1.0
    print(f"{truth_path.name}: {len(truth)} calls, precision {precision:.4f}, recall {recall:.4f}")
    assert precision >= 0.99
    assert set(got) == set(truth)
    methods = {link.method for c in analysis.calls for link in c.correlation}
    assert methods == {EXPECTED_METHOD[truth_path.name.removesuffix(".truth.json")]}


EXPECTED_METHOD = {
    "topoh-xcid": "header:X-CID",  # Kamailio adds X-CID with the caller-side Call-ID
    "topoh-plain": "b2bua-heuristic",  # no header: same From tag, relayed SDP, mirrored outcomes
    "b2bua-3pcc": "b2bua-heuristic",
    "b2bua-load": "b2bua-heuristic",
}


def test_topology_hiding_proxy_evidence() -> None:
    calls = analyze([SAMPLES / "topoh-plain.pcap"]).calls
    for call in calls:
        (link,) = call.correlation
        assert "same From tag" in link.evidence
        assert any(e.startswith("SDP offer relayed unchanged") for e in link.evidence)
    assert [c.state.value for c in calls] == ["completed", "rejected", "cancelled"]


@pytest.mark.skipif(not SHARED_CAPTURES.is_dir(), reason="../shared/captures not present")
@pytest.mark.parametrize("path", shared_captures(), ids=lambda p: p.name)
def test_no_false_merges_in_public_captures(path: Path) -> None:
    """Only the two captures with a real B2BUA in them hold a call of several legs. (The SIPp
    load run on loopback is the trap: caller and callee share an IP, so every call "leaves the
    host its predecessor reached"; but each was answered before the next began.)"""
    multi = [c for c in analyze([path]).calls if len(c.legs) > 1]
    expected = 1 if path.name in ("voip1b.pcapng", "sip_tcp_websocket.pcap") else 0
    assert len(multi) == expected


SBC = Endpoint("10.0.0.7", 5060)


def test_chain_of_two_b2buas_is_one_call_of_three_legs() -> None:
    feed = Feeder()
    offer = _sdp("10.0.0.1", 20000)
    legs = [("c-1", ALICE, SBC), ("c-2", SBC, B2BUA), ("c-3", B2BUA, BOB)]
    invites = []
    for i, (call_id, src, dst) in enumerate(legs):
        inv = request(
            "INVITE", call_id=call_id, from_tag=f"f{i}", branch=f"z9hG4bK-{i}",
            vias=(f"{src.host}:5060",), body=offer,
        )  # fmt: skip
        feed(0.003 * i, src, dst, inv)
        invites.append(inv)
    for i in (2, 1, 0):  # 180 and 200 travel back hop by hop
        feed(
            0.2 + 0.001 * (2 - i),
            legs[i][2],
            legs[i][1],
            response(invites[i], 180, "Ringing", to_tag=f"t{i}"),
        )
    for i in (2, 1, 0):
        feed(1.0 + 0.001 * (2 - i), legs[i][2], legs[i][1], response(invites[i], 200, "OK", to_tag=f"t{i}"))
    (group,) = correlate(feed.tracker.finish().legs)
    assert [leg.call_id for leg in group.legs] == ["c-1", "c-2", "c-3"]
    assert sorted(link.legs for link in group.links) == [(0, 1), (1, 2)]


def test_hunting_keeps_every_outbound_leg_tried() -> None:
    """One inbound leg; the B2BUA tries bob (486), then a second target that answers."""
    feed = Feeder()
    offer = _sdp("10.0.0.1", 20000)
    inv_a = request("INVITE", call_id="in", from_tag="a", branch="z9hG4bK-a", body=offer)
    feed(0.0, ALICE, B2BUA, inv_a)
    feed(0.05, B2BUA, ALICE, response(inv_a, 180, "Ringing", to_tag="z"))
    inv_b1 = request(
        "INVITE", call_id="out-1", from_tag="x1", branch="z9hG4bK-b1", vias=("10.0.0.5:5060",), body=offer
    )
    feed(0.004, B2BUA, BOB, inv_b1)
    feed(5.0, BOB, B2BUA, response(inv_b1, 486, "Busy Here", to_tag="y1"))
    second = Endpoint("10.0.0.8", 5060)
    inv_b2 = request(
        "INVITE", call_id="out-2", from_tag="x2", branch="z9hG4bK-b2", vias=("10.0.0.5:5060",), body=offer
    )
    feed(5.01, B2BUA, second, inv_b2)
    feed(5.3, second, B2BUA, response(inv_b2, 180, "Ringing", to_tag="y2"))
    feed(7.0, second, B2BUA, response(inv_b2, 200, "OK", to_tag="y2"))
    feed(7.002, B2BUA, ALICE, response(inv_a, 200, "OK", to_tag="z"))
    (group,) = correlate(feed.tracker.finish().legs)
    assert [leg.call_id for leg in group.legs] == ["in", "out-1", "out-2"]
    hunting = [link for link in group.links if any("hunting" in e for e in link.evidence)]
    assert [link.legs for link in hunting] == [(0, 2)]


def _normalized_as_written(user: str | None) -> str:
    """``_normalize_user`` as first written, without its fast path for plain numbers."""
    if not user:
        return ""
    user = user.split(";", 1)[0].strip().lower()
    digits = re.sub(r"\D", "", user)
    if digits and len(digits) >= len(user.lstrip("+")) - 1:
        return digits.lstrip("0")
    lead = re.match(r"\+?(\d{6,})\D", user)
    return lead.group(1).lstrip("0") if lead else user


@given(
    st.one_of(st.none(), st.text(alphabet="0123456789+;- _aB\u0663\u00b2", max_size=16), st.text(max_size=12))
)
def test_users_normalize_as_first_written(user: str | None) -> None:
    assert _normalize_user(user) == _normalized_as_written(user)
