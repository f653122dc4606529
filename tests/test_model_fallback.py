"""Messages whose Via cannot match: the CSeq fallback of ``model.transaction``.

A UAS that answers a CANCELled INVITE with the Via of the CANCEL, or a proxy that strips its
own Via and relays a response with none, must not invent transactions, states or findings:
the response joins the INVITE it answers (marked ``MatchedBy.CSEQ``), the ACK that follows
is the INVITE's non-2xx ACK, and ``check`` names the defect once.
"""

from __future__ import annotations

from sipflow.checks.rules import run_rules
from sipflow.model.call import CallState
from sipflow.model.message import MatchedBy
from sipflow.model.transaction import FALLBACK_LOOKBACK
from tests.sipmsg import ALICE, BOB, PROXY, Feeder, request, response
from tests.test_checks_rules import analysis_of


def _without_via(data: bytes) -> bytes:
    head, body = data.split(b"\r\n\r\n", 1)
    lines = [line for line in head.split(b"\r\n") if not line.startswith(b"Via:")]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _direct_487_with_cancel_via(feed: Feeder) -> None:
    """alice's CANCEL has a branch of its own; bob answers the INVITE with the CANCEL's Via."""
    inv = request("INVITE", branch="z9hG4bK-inv")
    feed(0.0, ALICE, BOB, inv)
    feed(0.01, BOB, ALICE, response(inv, 100, "Trying"))
    feed(0.05, BOB, ALICE, response(inv, 180, "Ringing", to_tag="b1"))
    cancel = request("CANCEL", branch="z9hG4bK-cancel")
    feed(1.0, ALICE, BOB, cancel)
    feed(1.01, BOB, ALICE, response(cancel, 200, "OK", to_tag="b1"))
    wrong = response(cancel, 487, "Request Terminated", to_tag="b1").replace(b"1 CANCEL", b"1 INVITE")
    feed(1.02, BOB, ALICE, wrong)
    feed(1.03, ALICE, BOB, request("ACK", branch="z9hG4bK-inv", to_tag="b1"))


def test_487_with_the_cancels_via_joins_the_invite() -> None:
    feed = Feeder()
    _direct_487_with_cancel_via(feed)
    result = feed.tracker.finish()
    methods = [tx.method for tx in result.transactions]
    assert methods == ["INVITE", "CANCEL"]  # not a second INVITE, not an ACK of its own
    invite = result.transactions[0]
    assert [m.label for m in invite.messages] == [
        "INVITE",
        "100 Trying",
        "180 Ringing",
        "487 Request Terminated",
        "ACK",
    ]
    assert invite.final_status == 487
    by = {m.label: m.matched_by for m in invite.messages}
    assert by["487 Request Terminated"] is MatchedBy.CSEQ
    assert by["ACK"] is MatchedBy.VIA and by["INVITE"] is MatchedBy.VIA
    call = analysis_of(feed).calls[0]
    assert call.state is CallState.CANCELLED and call.final_status == 487


def test_via_less_487_relayed_by_a_proxy_joins_the_callers_hop() -> None:
    feed = Feeder()
    inv1 = request("INVITE", branch="z9hG4bK-a")
    inv2 = request("INVITE", vias=("10.0.0.2:5060", "10.0.0.1:5060"), branches=("z9hG4bK-p", "z9hG4bK-a"))
    feed(0.0, ALICE, PROXY, inv1)
    feed(0.001, PROXY, ALICE, response(inv1, 100, "Trying"))
    feed(0.002, PROXY, BOB, inv2)
    feed(0.05, BOB, PROXY, response(inv2, 180, "Ringing", to_tag="b1"))
    feed(0.051, PROXY, ALICE, response(inv2, 180, "Ringing", to_tag="b1", vias=1))
    cancel1 = request("CANCEL", branch="z9hG4bK-a")
    feed(1.0, ALICE, PROXY, cancel1)
    feed(1.001, PROXY, ALICE, response(cancel1, 200, "OK", to_tag="b1"))
    cancel2 = request("CANCEL", vias=("10.0.0.2:5060",), branches=("z9hG4bK-p",))
    feed(1.002, PROXY, BOB, cancel2)
    feed(1.01, BOB, PROXY, response(cancel2, 200, "OK", to_tag="b1"))
    # bob answers with the CANCEL's Via set (only the proxy's); the proxy strips it: no Via left.
    r487 = response(cancel2, 487, "Request Terminated", to_tag="b1").replace(b"1 CANCEL", b"1 INVITE")
    feed(1.02, BOB, PROXY, r487)
    feed(1.021, PROXY, BOB, request("ACK", vias=("10.0.0.2:5060",), branches=("z9hG4bK-p",), to_tag="b1"))
    feed(1.022, PROXY, ALICE, _without_via(r487))
    feed(1.03, ALICE, PROXY, request("ACK", branch="z9hG4bK-a", to_tag="b1"))
    # The relayed 487 is resent (the proxy did not see the ACK in time): a retransmission.
    feed(1.5, PROXY, ALICE, _without_via(r487))
    result = feed.tracker.finish()
    assert [tx.method for tx in result.transactions] == ["INVITE", "INVITE", "CANCEL", "CANCEL"]
    hop1, hop2 = result.transactions[:2]
    assert hop1.client == ALICE and hop2.client == PROXY
    assert [m.label for m in hop1.messages] == [
        "INVITE",
        "100 Trying",
        "180 Ringing",
        "487 Request Terminated",
        "ACK",
        "487 Request Terminated",
    ]
    assert hop1.final_status == hop2.final_status == 487
    assert hop1.retransmissions == 1 and hop1.messages[-1].retransmission
    assert [m.matched_by for m in hop1.messages].count(MatchedBy.CSEQ) == 2
    assert all(m.matched_by is MatchedBy.VIA for m in hop2.messages)  # bob's hop matched by Via
    analysis = analysis_of(feed)
    call = analysis.calls[0]
    assert call.state is CallState.CANCELLED and call.final_status == 487
    findings = run_rules(analysis)
    # bob's 487 with the CANCEL's Via set (one Via where the INVITE had two), then the missing
    # Via, once (not for its retransmission); no follow-on findings.
    assert [f.rule for f in findings] == ["via-mismatch", "missing-header"], [f.message for f in findings]
    assert "frame 10" in findings[0].message and "carries 1 Via" in findings[0].message
    assert "had 2" in findings[0].message
    assert "frame 12" in findings[1].message and "Via" in findings[1].message


def test_check_names_a_mismatched_via_once_and_nothing_else() -> None:
    feed = Feeder()
    _direct_487_with_cancel_via(feed)
    findings = run_rules(analysis_of(feed))
    assert [f.rule for f in findings] == ["via-mismatch"], [f.message for f in findings]
    (f,) = findings
    assert "z9hG4bK-cancel" in f.message and "not z9hG4bK-inv" in f.message
    assert [frame for _, frame in f.frames] == [6, 1]  # the 487, then the INVITE it answers


def test_open_transaction_before_an_answered_one_and_exact_addresses_first() -> None:
    feed = Feeder()
    # Two INVITEs with the same CSeq on two hops between the same hosts (ports differ).
    other = type(ALICE)(ALICE.host, 5070)
    inv_a = request("INVITE", branch="z9hG4bK-a")
    inv_b = request("INVITE", branch="z9hG4bK-b")
    feed(0.0, ALICE, BOB, inv_a)
    feed(0.1, other, BOB, inv_b)
    feed(0.2, BOB, ALICE, _without_via(response(inv_a, 486, "Busy Here", to_tag="b1")))
    feed(0.3, BOB, other, _without_via(response(inv_b, 486, "Busy Here", to_tag="b2")))
    result = feed.tracker.finish()
    tx_a, tx_b = result.transactions
    assert [m.frame for m in tx_a.messages] == [1, 3]
    assert [m.frame for m in tx_b.messages] == [2, 4]


def test_a_response_for_no_known_request_is_still_an_orphan() -> None:
    feed = Feeder()
    inv = request("INVITE", cseq=7)
    feed(0.0, ALICE, BOB, request("INVITE", cseq=6))
    feed(0.1, BOB, ALICE, _without_via(response(inv, 486, "Busy Here", to_tag="b1")))  # CSeq 7
    feed(0.2, ALICE, BOB, request("OPTIONS", cseq=7, branch="z9hG4bK-o"))
    result = feed.tracker.finish()
    orphan = result.transactions[1]
    assert orphan.request is None and orphan.final_status == 486
    assert orphan.messages[0].matched_by is MatchedBy.VIA


def test_response_in_the_wrong_direction_is_not_matched() -> None:
    feed = Feeder()
    inv = request("INVITE")
    feed(0.0, ALICE, BOB, inv)
    feed(0.1, ALICE, BOB, _without_via(response(inv, 486, "Busy Here", to_tag="b1")))
    result = feed.tracker.finish()
    assert len(result.transactions) == 2 and result.transactions[0].final_status is None


def test_non_2xx_ack_with_a_wrong_branch_joins_its_invite() -> None:
    feed = Feeder()
    inv = request("INVITE", branch="z9hG4bK-inv")
    feed(0.0, ALICE, BOB, inv)
    feed(0.1, BOB, ALICE, response(inv, 486, "Busy Here", to_tag="b1"))
    feed(0.2, ALICE, BOB, request("ACK", branch="z9hG4bK-new", to_tag="b1"))
    result = feed.tracker.finish()
    (invite,) = result.transactions
    assert invite.ack is not None and invite.ack.matched_by is MatchedBy.CSEQ
    findings = run_rules(analysis_of(feed))
    assert [f.rule for f in findings] == ["via-mismatch"]
    assert "ACK" in findings[0].message


def test_2xx_ack_after_a_challenge_with_the_same_cseq_is_not_taken_for_its_ack() -> None:
    feed = Feeder()
    inv1 = request("INVITE", branch="z9hG4bK-1")
    feed(0.0, ALICE, PROXY, inv1)
    feed(0.01, PROXY, ALICE, response(inv1, 407, "Proxy Authentication Required", to_tag="p1"))
    feed(0.02, ALICE, PROXY, request("ACK", branch="z9hG4bK-1", to_tag="p1"))
    inv2 = request("INVITE", branch="z9hG4bK-2")  # CSeq 1 again: wrong, but seen
    feed(0.05, ALICE, PROXY, inv2)
    feed(0.5, PROXY, ALICE, response(inv2, 200, "OK", to_tag="b1"))
    feed(0.6, ALICE, PROXY, request("ACK", branch="z9hG4bK-3", to_tag="b1"))
    result = feed.tracker.finish()
    assert [tx.method for tx in result.transactions] == ["INVITE", "INVITE", "ACK"]
    assert result.transactions[2].messages[0].matched_by is MatchedBy.VIA


def test_fallback_looks_back_a_bounded_number_of_transactions() -> None:
    feed = Feeder()
    inv = request("INVITE", cseq=1)
    feed(0.0, ALICE, BOB, inv)
    for n in range(FALLBACK_LOOKBACK):
        feed(1.0 + n, ALICE, BOB, request("OPTIONS", cseq=2 + n, branch=f"z9hG4bK-o{n}"))
    feed(100.0, BOB, ALICE, _without_via(response(inv, 486, "Busy Here", to_tag="b1")))
    result = feed.tracker.finish()
    assert result.transactions[0].final_status is None  # too far back to be searched
