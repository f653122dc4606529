"""The built-in rules of ``sipflow check``, their settings and the Reason decoder.

Each rule fires on a minimal literal trace with its id and frames, stays quiet on the clean
bundled samples, fires alone on the faulty ones, and finds what we verified by hand (with
tshark) in real captures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sipflow.capture.types import Endpoint
from sipflow.checks.config import CheckConfig, load_config
from sipflow.checks.finding import Finding, Severity
from sipflow.checks.reason import decode_reason
from sipflow.checks.rules import RULES, rule, run_rules
from sipflow.errors import UsageError
from sipflow.model.analysis import Analysis, Summary
from sipflow.model.call import CallKind, build_call
from sipflow.pipeline import analyze
from tests.conftest import SAMPLES, SHARED_CAPTURES
from tests.sipmsg import ALICE, BOB, PROXY, SDP, Feeder, request, response

T0 = 1_700_000_000.0
PUBLIC = Endpoint("93.184.216.34", 5060)
ANSWER_PCMU = SDP.replace("10.0.0.1", "10.0.0.3")
ANSWER_PCMA = ANSWER_PCMU.replace("RTP/AVP 0 101", "RTP/AVP 8 101")


def analysis_of(feed: Feeder, end: float | None = None) -> Analysis:
    """What ``analyze`` would build from the literal messages fed (one call per Call-ID)."""
    model = feed.tracker.finish(None if end is None else T0 + end)
    legs = sorted(model.legs, key=lambda leg: leg.messages[0].index)
    calls = tuple(build_call(i, (leg,)) for i, leg in enumerate(legs, start=1))
    times = [m.timestamp for m in model.messages]
    summary = Summary(
        files=("test.pcap",),
        packets=feed.frame,
        sip_messages=len(model.messages),
        malformed=len(model.malformed),
        non_sip_packets=0,
        non_sip={},
        unsupported={},
        retransmissions=sum(1 for m in model.messages if m.retransmission),
        calls=sum(1 for c in calls if c.kind is CallKind.CALL),
        items=len(calls),
        partial=False,
        first_time=min(times, default=None),
        last_time=max(times, default=None),
    )
    return Analysis(
        files=("test.pcap",),
        summary=summary,
        calls=calls,
        messages=model.messages,
        malformed=model.malformed,
        transactions=model.transactions,
        dialogs=model.dialogs,
        warnings=(),
    )


def with_body(data: bytes, body: str) -> bytes:
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    lines = [line for line in head.split("\r\n") if not line.startswith(("Content-Length", "Content-Type"))]
    text = (
        "\r\n".join(lines) + f"\r\nContent-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )
    return text.encode()


def answer(req: bytes, status: int, reason: str, *, to_tag: str | None = None, body: str = "") -> bytes:
    """A response carrying Contact (mandatory in a 2xx to INVITE) and optionally a body."""
    data = response(req, status, reason, to_tag=to_tag)
    data = data.replace(b"\r\nContent-Length", b"\r\nContact: <sip:bob@10.0.0.3>\r\nContent-Length", 1)
    return with_body(data, body) if body else data


def drop_header(data: bytes, name: str) -> bytes:
    lines = data.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.lower().startswith(name.lower().encode() + b":"))


def call(
    feed: Feeder,
    *,
    invite: bytes | None = None,
    answer_sdp: str = ANSWER_PCMU,
    ring_at: float = 0.2,
    answer_at: float = 1.2,
    ack_at: float | None = 1.21,
    bye: bool = True,
    caller: Endpoint = ALICE,
    callee: Endpoint = BOB,
) -> bytes:
    """A clean call (INVITE/100/180/200/ACK/BYE/200) with knobs to break it; returns the INVITE."""
    inv = invite or request("INVITE", body=SDP)
    feed(0.0, caller, callee, inv)
    feed(0.01, callee, caller, response(inv, 100, "Trying"))
    feed(ring_at, callee, caller, answer(inv, 180, "Ringing", to_tag="b1"))
    feed(answer_at, callee, caller, answer(inv, 200, "OK", to_tag="b1", body=answer_sdp))
    if ack_at is not None:
        feed(ack_at, caller, callee, request("ACK", branch="z9hG4bK-2", to_tag="b1"))
    if bye:
        bye_req = request("BYE", branch="z9hG4bK-3", cseq=2, to_tag="b1")
        feed(answer_at + 5.0, caller, callee, bye_req)
        feed(answer_at + 5.01, callee, caller, response(bye_req, 200, "OK"))
    return inv


def frames(finding: Finding) -> list[int]:
    return [frame for _, frame in finding.frames]


def only(findings: list[Finding], rule_id: str) -> Finding:
    """The one finding, which must be of ``rule_id``."""
    assert [f.rule for f in findings] == [rule_id], [f.message for f in findings]
    return findings[0]


# ------------------------------------------------------------------------------- catalogue


def test_catalogue_ids_are_unique_documented_and_complete() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    assert set(ids) >= {
        "invite-no-final",
        "2xx-not-acked",
        "response-without-request",
        "retransmissions",
        "cseq-not-increasing",
        "request-outside-dialog",
        "481-in-dialog",
        "cancel-after-final",
        "missing-header",
        "content-length-mismatch",
        "branch-without-cookie",
        "no-to-tag",
        "sdp-no-common-codec",
        "sdp-unreachable-media",
        "slow-pdd",
        "slow-setup",
        "register-storm",
    }
    for r in RULES:
        assert r.summary.endswith(".") and r.explanation.endswith("."), r.id
        assert 1 <= r.explanation.count(". ") + 1 <= 4, r.id
        assert all(v >= 0 for v in r.thresholds.values())
    assert rule("slow-pdd").thresholds == {"max_ms": 5000.0}
    assert rule("retransmissions").thresholds == {"max_request": 2.0, "max_response": 4.0}


def test_clean_literal_call_has_no_finding() -> None:
    feed = Feeder()
    call(feed)
    assert run_rules(analysis_of(feed)) == []


# ------------------------------------------------------------------------------ each rule


def test_invite_without_final_response() -> None:
    feed = Feeder()
    inv = request("INVITE", body=SDP)
    feed(0.0, ALICE, BOB, inv)
    feed(0.5, ALICE, BOB, inv)
    feed(0.6, BOB, ALICE, response(inv, 100, "Trying"))
    feed(40.0, ALICE, BOB, request("OPTIONS", branch="z9hG4bK-o", call_id="ping"))
    feed(40.1, BOB, ALICE, response(request("OPTIONS", branch="z9hG4bK-o", call_id="ping"), 200, "OK"))
    finding = only(run_rules(analysis_of(feed)), "invite-no-final")
    assert finding.severity is Severity.ERROR
    assert frames(finding) == [1, 2, 3]
    assert finding.call_index == 1 and finding.call_id == "call-1@10.0.0.1"
    assert finding.message.startswith("call 1 (Call-ID call-1@10.0.0.1): INVITE (CSeq 1) at frame 1")
    assert (
        "last response 100 Trying" in finding.message
        and "the capture ends 40.1 s after it" in finding.message
    )
    assert finding.explanation == rule("invite-no-final").explanation


def test_unanswered_invite_resent_by_timer_a() -> None:
    feed = Feeder()
    inv = request("INVITE", body=SDP)
    for t in (0.0, 0.5, 1.5, 3.5, 7.5):
        feed(t, ALICE, BOB, inv)
    found = run_rules(analysis_of(feed, end=40.0))
    assert [f.rule for f in found] == ["invite-no-final", "retransmissions"]
    assert "past timer B" in found[0].message
    assert frames(found[1]) == [1, 2, 3, 4, 5] and "; no response" in found[1].message


def test_2xx_never_acked() -> None:
    feed = Feeder()
    inv = call(feed, ack_at=None, bye=False)
    ok = answer(inv, 200, "OK", to_tag="b1", body=ANSWER_PCMU)
    feed(1.7, BOB, ALICE, ok)
    feed(2.7, BOB, ALICE, ok)
    finding = only(run_rules(analysis_of(feed)), "2xx-not-acked")
    assert frames(finding) == [4, 5, 6]
    assert "200 OK (CSeq 1 INVITE) at frame 4" in finding.message and "never ACKed" in finding.message


def test_2xx_at_the_end_of_the_capture_is_not_judged() -> None:
    feed = Feeder()
    call(feed, ack_at=None, bye=False)
    assert run_rules(analysis_of(feed, end=1.3)) == []  # under wait_ms (500 ms) after the 2xx


def test_2xx_acked_late() -> None:
    feed = Feeder()
    call(feed, ack_at=3.2)
    finding = only(run_rules(analysis_of(feed)), "2xx-acked-late")
    assert finding.severity is Severity.WARNING
    assert frames(finding) == [4, 5]
    assert "ACKed 2000 ms later" in finding.message
    relaxed = CheckConfig(thresholds={"2xx-acked-late": {"max_ms": 2500}})
    assert run_rules(analysis_of(feed), relaxed) == []


def test_ack_through_a_proxy_is_matched_hop_by_hop() -> None:
    feed = Feeder()
    inv1 = request("INVITE", body=SDP)
    inv2 = request(
        "INVITE", vias=("10.0.0.2:5060", "10.0.0.1:5060"), branches=("z9hG4bK-p", "z9hG4bK-1"), body=SDP
    )
    feed(0.0, ALICE, PROXY, inv1)
    feed(0.01, PROXY, BOB, inv2)
    feed(0.5, BOB, PROXY, answer(inv2, 200, "OK", to_tag="b1", body=ANSWER_PCMU))
    feed(0.51, PROXY, ALICE, answer(inv1, 200, "OK", to_tag="b1", body=ANSWER_PCMU))
    feed(0.52, ALICE, PROXY, request("ACK", branch="z9hG4bK-2", to_tag="b1"))
    feed(0.53, PROXY, BOB, request("ACK", branch="z9hG4bK-3", to_tag="b1"))
    assert run_rules(analysis_of(feed, end=5.0)) == []


def test_response_without_request() -> None:
    feed = Feeder()
    call(feed)
    stray = request("OPTIONS", branch="z9hG4bK-never-sent", cseq=9)
    feed(7.0, BOB, ALICE, response(stray, 200, "OK"))
    finding = only(run_rules(analysis_of(feed)), "response-without-request")
    assert frames(finding) == [8]
    assert "z9hG4bK-never-sent" in finding.message


def test_request_retransmitted_more_than_twice() -> None:
    feed = Feeder()
    options = request("OPTIONS", call_id="ping")
    for t in (0.0, 0.5, 1.5, 3.5):
        feed(t, ALICE, BOB, options)
    feed(3.6, BOB, ALICE, response(options, 200, "OK"))
    finding = only(run_rules(analysis_of(feed)), "retransmissions")
    assert frames(finding) == [1, 2, 3, 4]
    assert "retransmitted 3 times" in finding.message
    assert run_rules(analysis_of(feed), CheckConfig(thresholds={"retransmissions": {"max_request": 3}})) == []


def test_response_retransmission_storm() -> None:
    feed = Feeder()
    inv = request("INVITE", body=SDP)
    feed(0.0, ALICE, BOB, inv)
    busy = response(inv, 486, "Busy Here", to_tag="b1")
    for n in range(6):
        feed(0.1 + n * 0.5, BOB, ALICE, busy)
    finding = only(run_rules(analysis_of(feed)), "retransmissions")
    assert frames(finding) == [2, 3, 4, 5, 6, 7]
    assert "486 Busy Here (CSeq 1 INVITE) at frame 2" in finding.message and "5 times" in finding.message


def test_cseq_not_increasing_in_a_dialog() -> None:
    feed = Feeder()
    inv = call(feed, bye=False)
    del inv
    bye_req = request("BYE", branch="z9hG4bK-3", cseq=1, to_tag="b1")
    feed(6.2, ALICE, BOB, bye_req)
    feed(6.21, BOB, ALICE, response(bye_req, 200, "OK"))
    finding = only(run_rules(analysis_of(feed)), "cseq-not-increasing")
    assert frames(finding) == [6, 1]
    assert "BYE (CSeq 1) at frame 6" in finding.message and "INVITE (CSeq 1) at frame 1" in finding.message


def test_cseq_relayed_by_a_proxy_is_not_a_repeat() -> None:
    feed = Feeder()
    inv1 = request("INVITE", body=SDP)
    inv2 = request(
        "INVITE", vias=("10.0.0.2:5060", "10.0.0.1:5060"), branches=("z9hG4bK-p", "z9hG4bK-1"), body=SDP
    )
    feed(0.0, ALICE, PROXY, inv1)
    feed(0.01, PROXY, BOB, inv2)
    feed(0.5, BOB, PROXY, answer(inv2, 200, "OK", to_tag="b1", body=ANSWER_PCMU))
    feed(0.51, PROXY, ALICE, answer(inv1, 200, "OK", to_tag="b1", body=ANSWER_PCMU))
    feed(0.52, ALICE, PROXY, request("ACK", branch="z9hG4bK-2", to_tag="b1"))
    feed(0.53, PROXY, BOB, request("ACK", branch="z9hG4bK-3", to_tag="b1"))
    bye1 = request("BYE", branch="z9hG4bK-4", cseq=2, to_tag="b1")
    bye2 = request("BYE", branch="z9hG4bK-5", cseq=2, to_tag="b1", vias=("10.0.0.2:5060", "10.0.0.1:5060"))
    feed(3.0, ALICE, PROXY, bye1)
    feed(3.01, PROXY, BOB, bye2)
    feed(3.02, BOB, PROXY, response(bye2, 200, "OK"))
    feed(3.03, PROXY, ALICE, response(bye1, 200, "OK"))
    assert run_rules(analysis_of(feed)) == []


def test_bye_with_tags_of_no_dialog() -> None:
    feed = Feeder()
    call(feed, bye=False)
    stray = request("BYE", branch="z9hG4bK-9", cseq=2, to_tag="zz")
    feed(6.2, ALICE, BOB, stray)
    feed(6.21, BOB, ALICE, response(stray, 481, "Call/Transaction Does Not Exist"))
    found = run_rules(analysis_of(feed))
    assert [f.rule for f in found] == ["request-outside-dialog", "481-in-dialog"]
    assert frames(found[0]) == [6]
    assert "tags (From a1, To zz)" in found[0].message
    assert frames(found[1]) == [6, 7]


def test_bye_after_the_dialog_ended_and_callee_bye_in_early_dialog() -> None:
    feed = Feeder()
    call(feed)  # BYE CSeq 2 at frame 6, its 200 at frame 7
    late = request("BYE", branch="z9hG4bK-8", cseq=3, to_tag="b1")
    feed(8.0, ALICE, BOB, late)
    finding = only(run_rules(analysis_of(feed)), "request-outside-dialog")
    assert frames(finding) == [8, 6]
    assert "after the dialog ended with BYE (CSeq 2) at frame 6" in finding.message

    early = Feeder()
    inv = request("INVITE", body=SDP)
    early(0.0, ALICE, BOB, inv)
    early(0.2, BOB, ALICE, answer(inv, 180, "Ringing", to_tag="b1"))
    callee_bye = (
        request("BYE", branch="z9hG4bK-b", cseq=1, from_tag="b1", to_tag="a1")
        .replace(b'From: "Alice" <sip:alice@example.com>;tag=b1', b"From: <sip:bob@example.com>;tag=b1")
        .replace(b"To: <sip:bob@example.com>;tag=a1", b"To: <sip:alice@example.com>;tag=a1")
    )
    early(0.3, BOB, ALICE, callee_bye)
    found = run_rules(analysis_of(early, end=0.4))
    assert [f.rule for f in found] == ["invite-no-final", "request-outside-dialog"]
    assert frames(found[1]) == [3] and "early dialog" in found[1].message


def test_caller_may_bye_an_early_dialog() -> None:
    feed = Feeder()
    inv = request("INVITE", body=SDP)
    feed(0.0, ALICE, BOB, inv)
    feed(0.2, BOB, ALICE, answer(inv, 180, "Ringing", to_tag="b1"))
    bye_req = request("BYE", branch="z9hG4bK-3", cseq=2, to_tag="b1")
    feed(0.3, ALICE, BOB, bye_req)
    feed(0.31, BOB, ALICE, response(bye_req, 200, "OK"))
    feed(0.32, BOB, ALICE, answer(inv, 487, "Request Terminated", to_tag="b1"))
    feed(0.33, ALICE, BOB, request("ACK", to_tag="b1"))
    assert [f.rule for f in run_rules(analysis_of(feed))] == []


def test_481_to_bye_carries_its_decoded_reason() -> None:
    feed = Feeder()
    call(feed, bye=False)
    bye_req = request("BYE", branch="z9hG4bK-3", cseq=2, to_tag="b1")
    feed(6.2, ALICE, BOB, bye_req)
    gone = response(bye_req, 481, "Call/Transaction Does Not Exist")
    gone = gone.replace(b"\r\nContent-Length", b'\r\nReason: Q.850;cause=41;text="gone"\r\nContent-Length')
    feed(6.21, BOB, ALICE, gone)
    finding = only(run_rules(analysis_of(feed)), "481-in-dialog")
    assert frames(finding) == [6, 7]
    assert finding.cause == "Q.850 cause 41 (temporary failure)"


def test_cancel_after_the_final_response() -> None:
    feed = Feeder()
    inv = call(feed, bye=False)
    cancel = request("CANCEL", branch="z9hG4bK-1", cseq=1)
    feed(1.5, ALICE, BOB, cancel)
    feed(1.51, BOB, ALICE, response(cancel, 200, "OK", to_tag="b1"))
    del inv
    finding = only(run_rules(analysis_of(feed)), "cancel-after-final")
    assert finding.severity is Severity.WARNING
    assert frames(finding) == [6, 4]
    assert (
        "CANCEL (CSeq 1) at frame 6" in finding.message
        and "200 OK (CSeq 1 INVITE) at frame 4" in finding.message
    )


def test_cancel_while_ringing_is_fine() -> None:
    feed = Feeder()
    inv = request("INVITE", body=SDP)
    feed(0.0, ALICE, BOB, inv)
    feed(0.2, BOB, ALICE, answer(inv, 180, "Ringing", to_tag="b1"))
    cancel = request("CANCEL", branch="z9hG4bK-1", cseq=1)
    feed(1.0, ALICE, BOB, cancel)
    feed(1.01, BOB, ALICE, response(cancel, 200, "OK", to_tag="b1"))
    feed(1.02, BOB, ALICE, answer(inv, 487, "Request Terminated", to_tag="b1"))
    feed(1.03, ALICE, BOB, request("ACK", to_tag="b1"))
    assert run_rules(analysis_of(feed)) == []


def test_missing_headers() -> None:
    feed = Feeder()
    inv = drop_header(drop_header(request("INVITE", body=SDP), "Max-Forwards"), "Contact")
    feed(0.0, ALICE, BOB, inv)
    ok = drop_header(answer(inv, 200, "OK", to_tag="b1", body=ANSWER_PCMU), "Contact")
    feed(0.5, BOB, ALICE, ok)
    feed(0.51, ALICE, BOB, request("ACK", branch="z9hG4bK-2", to_tag="b1"))
    found = run_rules(analysis_of(feed))
    assert [f.rule for f in found] == ["missing-header", "missing-header"]
    assert frames(found[0]) == [1] and "has no Max-Forwards, Contact headers" in found[0].message
    assert frames(found[1]) == [2] and "has no Contact header" in found[1].message


def test_the_ack_of_a_non_2xx_final_needs_no_max_forwards() -> None:
    # RFC 3261 §17.1.1.3 builds it (same branch as the INVITE) from a list without
    # Max-Forwards; the ACK of a 2xx is a request of its own (§13.2.2.4) and should have one:
    # a warning (issue 17: many UAs leave it out and proxies add it), not missing-header.
    feed = Feeder()
    inv = request("INVITE", body=SDP)
    feed(0.0, ALICE, BOB, inv)
    feed(0.5, BOB, ALICE, answer(inv, 486, "Busy Here", to_tag="b1"))
    feed(0.51, ALICE, BOB, drop_header(request("ACK", to_tag="b1", cseq_method="ACK"), "Max-Forwards"))
    assert [f.rule for f in run_rules(analysis_of(feed))] == []

    feed = Feeder()
    inv = request("INVITE", body=SDP)
    feed(0.0, ALICE, BOB, inv)
    feed(0.5, BOB, ALICE, answer(inv, 200, "OK", to_tag="b1", body=ANSWER_PCMU))
    feed(0.51, ALICE, BOB, drop_header(request("ACK", branch="z9hG4bK-2", to_tag="b1"), "Max-Forwards"))
    found = run_rules(analysis_of(feed))
    assert [(f.rule, f.severity.value) for f in found] == [("ack-no-max-forwards", "warning")]
    assert frames(found[0]) == [3] and "has no Max-Forwards header" in found[0].message


def test_content_length_longer_and_shorter_than_the_body() -> None:
    feed = Feeder()
    inv = request("INVITE", body=SDP).replace(b"Content-Length: %d" % len(SDP), b"Content-Length: 300")
    call(feed, invite=inv)
    finding = only(run_rules(analysis_of(feed)), "content-length-mismatch")
    assert frames(finding) == [1]
    assert f"Content-Length 300 but carries {len(SDP)} bytes" in finding.message

    feed = Feeder()
    inv = request("INVITE", body=SDP).replace(b"Content-Length: %d" % len(SDP), b"Content-Length: 40")
    call(feed, invite=inv)
    finding = only(run_rules(analysis_of(feed)), "content-length-mismatch")
    assert f"{len(SDP) - 40} more bytes follow the body" in finding.message


def test_branch_without_magic_cookie() -> None:
    feed = Feeder()
    call(feed, invite=request("INVITE", branch="abc123", body=SDP))
    finding = only(run_rules(analysis_of(feed)), "branch-without-cookie")
    assert frames(finding) == [1] and "'abc123'" in finding.message


def test_ringing_without_to_tag() -> None:
    feed = Feeder()
    inv = request("INVITE", body=SDP)
    feed(0.0, ALICE, BOB, inv)
    feed(0.01, BOB, ALICE, response(inv, 100, "Trying"))  # 100 needs no tag (§8.2.6.2)
    feed(0.2, BOB, ALICE, answer(inv, 180, "Ringing"))
    feed(0.5, BOB, ALICE, answer(inv, 200, "OK", to_tag="b1", body=ANSWER_PCMU))
    feed(0.51, ALICE, BOB, request("ACK", branch="z9hG4bK-2", to_tag="b1"))
    finding = only(run_rules(analysis_of(feed)), "no-to-tag")
    assert frames(finding) == [3]


def test_answer_without_a_codec_of_the_offer() -> None:
    feed = Feeder()
    call(feed, answer_sdp=ANSWER_PCMA)
    finding = only(run_rules(analysis_of(feed)), "sdp-no-common-codec")
    assert frames(finding) == [4, 1]
    assert "answers audio with PCMA,telephone-event" in finding.message
    assert "(PCMU,telephone-event)" in finding.message


def test_media_at_0000_and_private_address_across_nat() -> None:
    feed = Feeder()
    call(feed, answer_sdp=ANSWER_PCMU.replace("c=IN IP4 10.0.0.3", "c=IN IP4 0.0.0.0"))
    finding = only(run_rules(analysis_of(feed)), "sdp-unreachable-media")
    assert frames(finding) == [4] and "audio at 0.0.0.0" in finding.message

    feed = Feeder()
    call(feed, callee=PUBLIC, answer_sdp=ANSWER_PCMU.replace("10.0.0.3", "93.184.216.34"))
    finding = only(run_rules(analysis_of(feed)), "sdp-unreachable-media")
    assert frames(finding) == [1]
    assert "private 10.0.0.1 (sent to public address 93.184.216.34)" in finding.message


def test_private_media_inside_a_private_network_is_fine() -> None:
    feed = Feeder()
    call(feed)  # 10.0.0.1 offers 10.0.0.1 to 10.0.0.3
    assert run_rules(analysis_of(feed)) == []


def test_slow_pdd_and_slow_setup_with_thresholds() -> None:
    feed = Feeder()
    call(feed, ring_at=6.0, answer_at=31.0, ack_at=31.01)
    found = run_rules(analysis_of(feed))
    assert [f.rule for f in found] == ["slow-pdd", "slow-setup"]
    assert frames(found[0]) == [1, 3] and "post-dial delay 6000 ms" in found[0].message
    assert frames(found[1]) == [1, 4] and "setup time 31000 ms" in found[1].message
    config = CheckConfig(
        thresholds={"slow-pdd": {"max_ms": 7000}},
        severity={"slow-setup": Severity.ERROR},
    )
    (setup,) = run_rules(analysis_of(feed), config)
    assert setup.rule == "slow-setup" and setup.severity is Severity.ERROR
    assert run_rules(analysis_of(feed), CheckConfig(disabled=frozenset({"slow-pdd", "slow-setup"}))) == []


def test_findings_are_ordered_by_call_then_frame() -> None:
    feed = Feeder()
    first = request("INVITE", branch="oldstyle", call_id="c1", body=SDP)
    feed(0.0, ALICE, BOB, first)
    second = drop_header(request("INVITE", branch="z9hG4bK-x", call_id="c2", body=SDP), "Max-Forwards")
    feed(0.1, ALICE, BOB, second)
    feed(0.2, BOB, ALICE, answer(first, 180, "Ringing"))
    found = run_rules(analysis_of(feed, end=0.3))
    assert [(f.call_index, f.rule, frames(f)[0]) for f in found] == [
        (1, "invite-no-final", 1),
        (1, "branch-without-cookie", 1),
        (1, "no-to-tag", 3),
        (2, "invite-no-final", 2),
        (2, "missing-header", 2),
    ]


# ------------------------------------------------------------------------------ samples


def _clean_samples() -> list[Path]:
    return sorted(p for p in SAMPLES.glob("*.pcap") if not p.name.startswith("faulty-"))


@pytest.mark.parametrize("path", _clean_samples(), ids=lambda p: p.name)
def test_clean_samples_trigger_no_rule(path: Path) -> None:
    findings = run_rules(analyze([path]))
    assert findings == [], [f.message for f in findings]


def _faulty_samples() -> list[Path]:
    return sorted(SAMPLES.glob("faulty-*.pcap"))


@pytest.mark.parametrize("path", _faulty_samples() or [None], ids=lambda p: p.name if p else "none")
def test_faulty_samples_trigger_exactly_their_rules(path: Path | None) -> None:
    if path is None:
        pytest.skip("no samples/faulty-*.pcap (samples/make-faulty-samples.sh makes them)")
    expected_file = path.with_name(path.name.removesuffix(".pcap") + ".expected.json")
    if not expected_file.is_file():
        pytest.skip(f"{expected_file.name} not written yet")
    expected = set(json.loads(expected_file.read_text())["rules"])
    findings = run_rules(analyze([path], media=True))  # as `sipflow check` reads it
    fired = {f.rule for f in findings if f.severity in (Severity.ERROR, Severity.WARNING)}
    assert fired == expected, [f.message for f in findings]


# ------------------------------------------------------------------------- real captures


def _shared(name: str) -> Path:
    path = SHARED_CAPTURES / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


def test_aaa_cancel_retransmitted_ten_times_behind_nat() -> None:
    # Ground truth: an INVITE retransmitted twice, answered 100 then 408, its CANCEL sent
    # 11 times (frames 247 ... 272) and answered 408; the phone sits behind NAT (192.168.1.2).
    findings = run_rules(analyze([_shared("aaa.pcap")]))
    retrans = [f for f in findings if f.rule == "retransmissions"]
    assert len(retrans) == 1
    assert retrans[0].call_id == "105090259-446faf7a@192.168.1.2"
    assert frames(retrans[0]) == [247, 249, 251, 255, 257, 259, 260, 264, 265, 266, 272]
    assert "retransmitted 10 times" in retrans[0].message
    nat = [f for f in findings if f.rule == "sdp-unreachable-media"]
    assert frames(nat[0]) == [223] and "private 192.168.1.2" in nat[0].message
    # tshark shows no Max-Forwards in the phone's ACK at frame 253: the ACK of the 487, which
    # RFC 3261 §17.1.1.3 builds without one, so not a missing header.
    assert not any(f.rule == "missing-header" and frames(f) == [253] for f in findings)
    # Every INVITE in aaa.pcap got a final response; nothing is answered, so no ACK rule.
    assert not {"invite-no-final", "2xx-not-acked", "2xx-acked-late"} & {f.rule for f in findings}


def test_sipp_load_run_with_two_unacked_answers() -> None:
    # tshark: 771 INVITEs, 769 ACKs; calls 1-13128 and 10-13128 end at INVITE/180/200.
    findings = run_rules(analyze([_shared("uac-uas-scenario-sipp.pcapng")]))
    assert [(f.rule, f.call_id, frames(f)) for f in findings] == [
        ("2xx-not-acked", "1-13128@127.0.1.1", [3]),
        ("2xx-not-acked", "10-13128@127.0.1.1", [52]),
    ]


def test_rtp_sample_invite_left_ringing_and_compact_form_content_length() -> None:
    findings = run_rules(analyze([_shared("rtp_rtcp_sip_ipv4_udp.pcap")]))
    (unanswered,) = [f for f in findings if f.rule == "invite-no-final"]
    assert unanswered.call_id == "12015624@200.57.7.195" and frames(unanswered) == [2964, 2965, 2967]
    # The compact-form INVITE says Content-Length 272 while 372 bytes of SDP follow.
    findings = run_rules(analyze([_shared("sip_compact_form.pcap")]))
    (mismatch,) = [f for f in findings if f.rule == "content-length-mismatch"]
    assert frames(mismatch) == [1] and "100 more bytes" in mismatch.message


# ------------------------------------------------------------------------------- config


def test_default_config_when_no_file(tmp_path: Path) -> None:
    assert load_config(search_from=tmp_path) == CheckConfig()


def test_sipflow_toml_is_read(tmp_path: Path) -> None:
    (tmp_path / "sipflow.toml").write_text(
        '[check]\ndisable = ["branch-without-cookie"]\n\n'
        '[check.rules.slow-pdd]\nmax_ms = 3000\nseverity = "error"\n\n'
        "[check.rules.retransmissions]\nmax_request = 5\n"
    )
    config = load_config(search_from=tmp_path)
    assert config.disabled == {"branch-without-cookie"}
    assert config.thresholds == {"slow-pdd": {"max_ms": 3000.0}, "retransmissions": {"max_request": 5.0}}
    assert config.severity == {"slow-pdd": Severity.ERROR}


def test_pyproject_tool_section_and_precedence(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.sipflow.check]\ndisable = ["slow-setup"]\n\n'
        "[tool.sipflow.check.rules.slow-pdd]\nmax_ms = 1500\n"
    )
    config = load_config(search_from=tmp_path)
    assert config.disabled == {"slow-setup"} and config.thresholds == {"slow-pdd": {"max_ms": 1500.0}}
    (tmp_path / "sipflow.toml").write_text('[check]\ndisable = ["no-to-tag"]\n')
    assert load_config(search_from=tmp_path).disabled == {"no-to-tag"}
    explicit = tmp_path / "other.toml"
    explicit.write_text("[check.rules.2xx-acked-late]\nmax_ms = 900\n")
    assert load_config(explicit, search_from=tmp_path).thresholds == {"2xx-acked-late": {"max_ms": 900.0}}


def test_pyproject_without_tool_sipflow_gives_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.ruff]\nline-length = 100\n')
    assert load_config(search_from=tmp_path) == CheckConfig()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[check]\ndisable = ["no-such-rule"]\n', "check.disable: unknown rule 'no-such-rule'"),
        ('[check]\ndisable = "slow-pdd"\n', "check.disable must be a list of rule ids"),
        ("[check]\nenable = []\n", "check.enable: unknown key"),
        (
            "[check.rules.slow-pdd]\nmax_sec = 3\n",
            "check.rules.slow-pdd.max_sec: rule slow-pdd has no threshold 'max_sec'",
        ),
        ("[check.rules.slow-pdd]\nmax_ms = -1\n", "check.rules.slow-pdd.max_ms must be a number >= 0"),
        ('[check.rules.slow-pdd]\nmax_ms = "fast"\n', "check.rules.slow-pdd.max_ms must be a number"),
        (
            '[check.rules.slow-pdd]\nseverity = "fatal"\n',
            "check.rules.slow-pdd.severity: 'fatal' is not one of",
        ),
        ("[check.rules.nope]\nmax_ms = 1\n", "[check.rules.nope]: unknown rule 'nope'"),
        ("[check.rules.no-to-tag]\nmax_ms = 1\n", "it has no thresholds"),
        ("[check\n", "not valid TOML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "sipflow.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        load_config(search_from=tmp_path)
    assert str(path) in str(info.value)
    assert says in str(info.value)


def test_bad_pyproject_section_and_missing_explicit_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.sipflow.check]\ndisable = ["nope"]\n')
    with pytest.raises(
        UsageError, match=r"pyproject\.toml: tool\.sipflow\.check\.disable: unknown rule 'nope'"
    ):
        load_config(search_from=tmp_path)
    with pytest.raises(UsageError, match=r"missing\.toml: cannot read"):
        load_config(tmp_path / "missing.toml")


def test_check_config_is_validated_when_built() -> None:
    with pytest.raises(UsageError, match="unknown rule 'x'"):
        CheckConfig(disabled=frozenset({"x"}))
    with pytest.raises(UsageError, match="has no threshold 'max'"):
        CheckConfig(thresholds={"slow-pdd": {"max": 1.0}})


# ------------------------------------------------------------------------------- reason


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ('Q.850;cause=16;text="Normal call clearing"', "Q.850 cause 16 (normal call clearing)"),
        ("Q.850 ; cause=17", "Q.850 cause 17 (user busy)"),
        ('Q.850;cause=250;text="Vendor special"', "Q.850 cause 250 (Vendor special)"),
        ("SIP;cause=487", "SIP 487 (Request Terminated)"),
        ('SIP;cause=200;text="Call completed elsewhere"', "SIP 200 (Call completed elsewhere)"),
        (
            'SIP;cause=480, Q.850;cause=18;text="x"',
            "SIP 480 (Temporarily Unavailable); Q.850 cause 18 (no user responding)",
        ),
        ("preemption;cause=1", "preemption cause 1"),
        ("", ""),
    ],
)
def test_decode_reason(value: str, text: str) -> None:
    assert decode_reason(value) == text
