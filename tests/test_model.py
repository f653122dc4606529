"""The protocol model fed literal messages: transactions, dialogs, legs and call states."""

from __future__ import annotations

import pytest

from sipflow.capture.types import SipPayload, Transport
from sipflow.model.call import CallKind, CallState, build_call
from sipflow.model.dialog import TRANSITIONS, DialogEvent, DialogState, next_state
from sipflow.model.message import MatchedBy, Message
from sipflow.model.tracker import ModelResult
from sipflow.sip.parse import parse_message
from tests.sipmsg import ALICE, BOB, PROXY, SDP, Feeder, request, response

T0 = 1_700_000_000.0


def finish(feed: Feeder, end: float | None = None) -> ModelResult:
    return feed.tracker.finish(None if end is None else T0 + end)


def one_call(result: ModelResult):  # type: ignore[no-untyped-def]
    assert len(result.legs) == 1
    return build_call(1, (result.legs[0],))


def basic_call(feed: Feeder, *, bye: bool = True) -> None:
    inv = request("INVITE", body=SDP)
    feed(0.0, ALICE, BOB, inv)
    feed(0.01, BOB, ALICE, response(inv, 100, "Trying"))
    feed(0.2, BOB, ALICE, response(inv, 180, "Ringing", to_tag="b1"))
    feed(1.2, BOB, ALICE, response(inv, 200, "OK", to_tag="b1"))
    feed(1.21, ALICE, BOB, request("ACK", branch="z9hG4bK-2", to_tag="b1"))
    if bye:
        bye_req = request("BYE", branch="z9hG4bK-3", cseq=2, to_tag="b1")
        feed(6.2, ALICE, BOB, bye_req)
        feed(6.21, BOB, ALICE, response(bye_req, 200, "OK"))


def test_basic_call_transactions_dialog_and_timings() -> None:
    feed = Feeder()
    basic_call(feed)
    result = finish(feed)
    methods = [tx.method for tx in result.transactions]
    assert methods == ["INVITE", "ACK", "BYE"]  # RFC 3261 §17.1.1.3: ACK for 2xx is its own
    invite = result.transactions[0]
    assert [m.label for m in invite.messages] == ["INVITE", "100 Trying", "180 Ringing", "200 OK"]
    assert invite.final_status == 200 and invite.retransmissions == 0
    assert invite.client == ALICE and invite.server == BOB
    (dialog,) = result.dialogs
    assert (dialog.from_tag, dialog.to_tag) == ("a1", "b1")
    assert dialog.state is DialogState.TERMINATED
    assert dialog.transactions == (0, 1, 2)
    call = one_call(result)
    assert call.kind is CallKind.CALL
    assert call.state is CallState.COMPLETED
    assert call.final_status == 200
    assert call.pdd_ms == pytest.approx(200.0)
    assert call.setup_ms == pytest.approx(1200.0)
    assert call.duration_s == pytest.approx(5.0)
    assert call.legs[0].hops == ((ALICE, BOB),)


def test_in_call_when_no_bye() -> None:
    feed = Feeder()
    basic_call(feed, bye=False)
    call = one_call(finish(feed))
    assert call.state is CallState.IN_CALL
    assert call.duration_s is None
    assert call.legs[0].dialogs[0].state is DialogState.CONFIRMED


def test_retransmissions_are_counted_and_marked() -> None:
    feed = Feeder()
    inv = request("INVITE")
    feed(0.0, ALICE, BOB, inv)
    feed(0.5, ALICE, BOB, inv)  # timer A retransmission
    feed(1.5, ALICE, BOB, inv)
    ok = response(inv, 200, "OK", to_tag="b1")
    feed(1.6, BOB, ALICE, ok)
    feed(2.1, BOB, ALICE, ok)  # 2xx retransmitted by the UAS core (§13.3.1.4)
    result = finish(feed)
    (invite,) = result.transactions
    assert invite.retransmissions == 3
    assert [m.retransmission for m in invite.messages] == [False, True, True, False, True]


def test_non_2xx_ack_belongs_to_invite_transaction() -> None:
    feed = Feeder()
    inv = request("INVITE")
    feed(0.0, ALICE, BOB, inv)
    feed(0.3, BOB, ALICE, response(inv, 486, "Busy Here", to_tag="b1"))
    feed(0.31, ALICE, BOB, request("ACK", to_tag="b1"))  # same branch: §17.1.1.3
    result = finish(feed)
    (invite,) = result.transactions
    assert invite.ack is not None
    assert result.dialogs == ()  # no 1xx/2xx with a tag: no dialog, and the ACK makes none
    call = one_call(result)
    assert call.state is CallState.REJECTED and call.final_status == 486
    assert call.pdd_ms is None


def test_cancel_is_its_own_transaction_linked_to_the_invite() -> None:
    feed = Feeder()
    inv = request("INVITE")
    feed(0.0, ALICE, BOB, inv)
    feed(0.2, BOB, ALICE, response(inv, 180, "Ringing", to_tag="b1"))
    cancel = request("CANCEL")  # same branch as the INVITE, §9.1
    feed(2.0, ALICE, BOB, cancel)
    feed(2.01, BOB, ALICE, response(cancel, 200, "OK", to_tag="b1"))
    feed(2.02, BOB, ALICE, response(inv, 487, "Request Terminated", to_tag="b1"))
    feed(2.03, ALICE, BOB, request("ACK", to_tag="b1"))
    result = finish(feed)
    invite, cancel_tx = result.transactions
    assert cancel_tx.method == "CANCEL" and cancel_tx.cancels == invite.id
    assert invite.cancelled_by == cancel_tx.id
    assert invite.final_status == 487 and invite.ack is not None
    assert result.dialogs[0].state is DialogState.TERMINATED  # early dialog ended by 487
    call = one_call(result)
    assert call.state is CallState.CANCELLED and call.final_status == 487


@pytest.mark.parametrize(
    ("status", "reason", "cancel_at", "state"),
    [
        # Some servers answer a cancelled INVITE 408 or 480 instead of 487: still cancelled.
        (408, "Request Timeout", 2.0, CallState.CANCELLED),
        (480, "Temporarily Unavailable", 2.0, CallState.CANCELLED),
        # A CANCEL after the final response does nothing (RFC 3261 §9.1): the refusal stands.
        (486, "Busy Here", 3.0, CallState.REJECTED),
        (503, "Service Unavailable", 3.0, CallState.FAILED),
    ],
)
def test_a_cancelled_call_whatever_refusal_follows(
    status: int, reason: str, cancel_at: float, state: CallState
) -> None:
    feed = Feeder()
    inv = request("INVITE")
    feed(0.0, ALICE, BOB, inv)
    feed(0.2, BOB, ALICE, response(inv, 180, "Ringing", to_tag="b1"))
    cancel = request("CANCEL")
    events = [
        (cancel_at, ALICE, BOB, cancel),
        (cancel_at + 0.01, BOB, ALICE, response(cancel, 200, "OK", to_tag="b1")),
        (2.5, BOB, ALICE, response(inv, status, reason, to_tag="b1")),
        (2.51, ALICE, BOB, request("ACK", to_tag="b1")),
    ]
    for when, src, dst, data in sorted(events, key=lambda e: e[0]):
        feed(when, src, dst, data)
    call = one_call(finish(feed))
    assert call.state is state and call.final_status == status


def test_auth_challenge_then_answer_measures_from_first_invite() -> None:
    feed = Feeder()
    inv1 = request("INVITE")
    feed(0.0, ALICE, PROXY, inv1)
    feed(0.01, PROXY, ALICE, response(inv1, 407, "Proxy Authentication Required", to_tag="p1"))
    feed(0.02, ALICE, PROXY, request("ACK", to_tag="p1"))
    inv2 = request("INVITE", branch="z9hG4bK-9", cseq=2, extra="Proxy-Authorization: Digest x\r\n")
    feed(0.05, ALICE, PROXY, inv2)
    feed(0.5, PROXY, ALICE, response(inv2, 180, "Ringing", to_tag="b1"))
    feed(1.0, PROXY, ALICE, response(inv2, 200, "OK", to_tag="b1"))
    call = one_call(finish(feed))
    assert call.state is CallState.IN_CALL and call.final_status == 200
    assert call.pdd_ms == pytest.approx(500.0)
    assert call.setup_ms == pytest.approx(1000.0)
    assert call.legs[0].hops == ((ALICE, PROXY),)


def test_stateful_proxy_hops_stay_in_one_leg() -> None:
    feed = Feeder()
    inv1 = request("INVITE", branch="z9hG4bK-a")
    inv2 = request("INVITE", vias=("10.0.0.2:5060", "10.0.0.1:5060"), branches=("z9hG4bK-p", "z9hG4bK-a"))
    feed(0.0, ALICE, PROXY, inv1)
    feed(0.001, PROXY, ALICE, response(inv1, 100, "Trying"))
    feed(0.002, PROXY, BOB, inv2)
    feed(0.3, BOB, PROXY, response(inv2, 180, "Ringing", to_tag="b1"))
    feed(0.301, PROXY, ALICE, response(inv2, 180, "Ringing", to_tag="b1", vias=1))
    result = finish(feed)
    assert len(result.transactions) == 2  # one INVITE transaction per hop (§16.6)
    hop1, hop2 = result.transactions
    assert [m.label for m in hop1.messages] == ["INVITE", "100 Trying", "180 Ringing"]
    assert [m.label for m in hop2.messages] == ["INVITE", "180 Ringing"]
    call = one_call(result)
    assert call.legs[0].hops == ((ALICE, PROXY), (PROXY, BOB))
    assert call.state is CallState.RINGING
    assert call.pdd_ms == pytest.approx(301.0)
    assert len(result.dialogs) == 1  # the dialog is end to end


def test_rfc2543_fallback_matching_without_magic_cookie() -> None:
    feed = Feeder()
    inv = request("INVITE", branch="")
    feed(0.0, ALICE, BOB, inv)
    feed(0.1, BOB, ALICE, response(inv, 603, "Decline", to_tag="b1"))
    feed(0.11, ALICE, BOB, request("ACK", branch="", to_tag="b1"))
    result = finish(feed)
    (invite,) = result.transactions
    assert not invite.rfc3261
    assert invite.final_status == 603 and invite.ack is not None


def test_forking_gives_several_early_dialogs() -> None:
    feed = Feeder()
    inv = request("INVITE")
    feed(0.0, ALICE, PROXY, inv)
    feed(0.2, PROXY, ALICE, response(inv, 180, "Ringing", to_tag="b1"))
    feed(0.3, PROXY, ALICE, response(inv, 180, "Ringing", to_tag="c1"))
    feed(0.9, PROXY, ALICE, response(inv, 200, "OK", to_tag="c1"))
    result = finish(feed)
    states = {d.to_tag: d.state for d in result.dialogs}
    assert states == {"b1": DialogState.EARLY, "c1": DialogState.CONFIRMED}
    (invite,) = result.transactions
    assert invite.retransmissions == 0  # different To tags are different responses


@pytest.mark.parametrize(
    ("end", "provisional", "state"),
    [(5.0, False, CallState.SETUP), (40.0, False, CallState.FAILED), (40.0, True, CallState.RINGING)],
)
def test_unanswered_invite_setup_failed_or_ringing(end: float, provisional: bool, state: CallState) -> None:
    feed = Feeder()
    inv = request("INVITE")
    feed(0.0, ALICE, BOB, inv)
    if provisional:
        feed(0.2, BOB, ALICE, response(inv, 180, "Ringing", to_tag="b1"))
    call = one_call(finish(feed, end))
    assert call.state is state
    assert call.final_status is None


@pytest.mark.parametrize(
    ("status", "state"),
    [(408, CallState.FAILED), (503, CallState.FAILED), (404, CallState.REJECTED), (603, CallState.REJECTED)],
)
def test_final_status_maps_to_state(status: int, state: CallState) -> None:
    feed = Feeder()
    inv = request("INVITE")
    feed(0.0, ALICE, BOB, inv)
    feed(0.2, BOB, ALICE, response(inv, status, "X", to_tag="b1"))
    assert one_call(finish(feed)).state is state


def test_bye_answered_481_is_still_completed() -> None:
    feed = Feeder()
    inv = request("INVITE")
    feed(0.0, ALICE, BOB, inv)
    feed(1.0, BOB, ALICE, response(inv, 200, "OK", to_tag="b1"))
    feed(1.01, ALICE, BOB, request("ACK", branch="z9hG4bK-2", to_tag="b1"))
    bye = request("BYE", branch="z9hG4bK-3", cseq=2, to_tag="b1")
    feed(3.0, ALICE, BOB, bye)
    feed(3.01, BOB, ALICE, response(bye, 481, "Call/Transaction Does Not Exist"))
    result = finish(feed)
    assert one_call(result).state is CallState.COMPLETED


def test_bye_from_callee_finds_the_dialog_reversed() -> None:
    feed = Feeder()
    basic_call(feed, bye=False)
    bye = (
        b"BYE sip:alice@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK-b\r\n"
        b"From: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>;tag=a1\r\n"
        b"Call-ID: call-1@10.0.0.1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    feed(4.0, BOB, ALICE, bye)
    result = finish(feed)
    assert len(result.dialogs) == 1 and result.dialogs[0].state is DialogState.TERMINATED
    assert one_call(result).state is CallState.COMPLETED


def test_mid_dialog_request_without_setup_infers_a_dialog() -> None:
    feed = Feeder()
    bye = request("BYE", branch="z9hG4bK-3", cseq=2, to_tag="b1")
    feed(0.0, ALICE, BOB, bye)
    result = finish(feed)
    (dialog,) = result.dialogs
    assert dialog.created_by == "" and dialog.state is DialogState.TERMINATED


def test_response_without_request_makes_an_orphan_transaction() -> None:
    feed = Feeder()
    inv = request("INVITE")
    feed(0.0, BOB, ALICE, response(inv, 200, "OK", to_tag="b1"))
    (tx,) = finish(feed).transactions
    assert tx.request is None and tx.client == ALICE and tx.final_status == 200


@pytest.mark.parametrize(
    ("method", "kind", "state"),
    [
        ("REGISTER", CallKind.REGISTRATION, CallState.REGISTERED),
        ("OPTIONS", CallKind.OPTIONS, CallState.ANSWERED),
        ("MESSAGE", CallKind.MESSAGE, CallState.DELIVERED),
        ("SUBSCRIBE", CallKind.SUBSCRIPTION, CallState.ACTIVE),
        ("PUBLISH", CallKind.OTHER, CallState.ACCEPTED),
    ],
)
def test_kinds_of_non_invite_items(method: str, kind: CallKind, state: CallState) -> None:
    feed = Feeder()
    req = request(method)
    feed(0.0, ALICE, BOB, req)
    feed(0.1, BOB, ALICE, response(req, 200, "OK", to_tag="b1"))
    call = one_call(finish(feed))
    assert call.kind is kind and call.state is state and call.final_status == 200


def test_dialog_transition_table_is_closed_under_terminated() -> None:
    for event in DialogEvent:
        assert next_state(DialogState.TERMINATED, event) is DialogState.TERMINATED
    assert all(target in DialogState for target in TRANSITIONS.values())


def test_sdp_offer_in_invite_answer_in_2xx() -> None:
    from sipflow.model.session import SdpRole, sdp_roles

    feed = Feeder()
    inv = request("INVITE", body=SDP)
    m1 = feed(0.0, ALICE, BOB, inv)
    ok = response(inv, 200, "OK", to_tag="b1").replace(b"Content-Length: 0\r\n\r\n", b"")
    ok += f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}".encode()
    m2 = feed(1.0, BOB, ALICE, ok)
    m3 = feed(1.1, ALICE, BOB, request("ACK", branch="z9hG4bK-2", to_tag="b1"))
    roles = {i: role for i, (role, _) in sdp_roles([m1, m2, m3]).items()}
    assert roles == {m1.index: SdpRole.OFFER, m2.index: SdpRole.ANSWER}


def test_sdp_offer_in_2xx_answer_in_ack() -> None:
    from sipflow.model.session import SdpRole, sdp_roles

    feed = Feeder()
    inv = request("INVITE")  # no SDP: the UAS must offer (RFC 3261 §13.2.1)
    m1 = feed(0.0, ALICE, BOB, inv)
    ok = response(inv, 200, "OK", to_tag="b1").replace(b"Content-Length: 0\r\n\r\n", b"")
    ok += f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}".encode()
    m2 = feed(1.0, BOB, ALICE, ok)
    m3 = feed(1.1, ALICE, BOB, request("ACK", branch="z9hG4bK-2", to_tag="b1", body=SDP))
    roles = {i: role for i, (role, _) in sdp_roles([m1, m2, m3]).items()}
    assert roles == {m2.index: SdpRole.OFFER, m3.index: SdpRole.ANSWER}


def test_a_branch_reused_by_another_call_is_another_transaction() -> None:
    # Hand-written scenarios (and some UAs) send every call with the same fixed branch.
    feed = Feeder()
    inv1 = request("INVITE", branch="z9hG4bK-fixed", call_id="call-1@x")
    inv2 = request("INVITE", branch="z9hG4bK-fixed", call_id="call-2@x")
    feed(0.0, ALICE, BOB, inv1)
    feed(0.1, ALICE, BOB, inv2)  # not a retransmission of inv1
    feed(0.2, BOB, ALICE, response(inv2, 486, "Busy Here", to_tag="b2"))
    feed(0.3, BOB, ALICE, response(inv1, 200, "OK", to_tag="b1"))
    feed(0.31, ALICE, BOB, request("ACK", branch="z9hG4bK-fixed", call_id="call-2@x", to_tag="b2"))
    result = finish(feed)
    tx1, tx2 = result.transactions
    assert (tx1.call_id, tx1.final_status, tx1.retransmissions) == ("call-1@x", 200, 0)
    assert (tx2.call_id, tx2.final_status) == ("call-2@x", 486) and tx2.ack is not None
    assert not any(m.retransmission for m in result.messages)


def test_message_record_made_from_a_packet_equals_the_constructed_one() -> None:
    """``Message.from_payload`` sets the slots directly: the record is the one ``Message(...)`` makes."""
    data = request("INVITE", body=SDP)
    packet = SipPayload(
        frame=7, frames=(6, 7), timestamp=T0 + 0.5, src=ALICE, dst=BOB, transport=Transport.TCP,
        payload=data, truncated=True, file="a.pcap", interface=2,
    )  # fmt: skip
    sip = parse_message(data)
    made = Message.from_payload(
        3, packet, sip, retransmission=True, copies=(("b.pcap", 9),), matched_by=MatchedBy.CSEQ, src=PROXY
    )
    assert made == Message(
        index=3, sip=sip, timestamp=T0 + 0.5, src=PROXY, dst=BOB, transport=Transport.TCP, frame=7,
        frames=(6, 7), file="a.pcap", retransmission=True, truncated=True, copies=(("b.pcap", 9),),
        matched_by=MatchedBy.CSEQ,
    )  # fmt: skip
    assert Message.from_payload(0, packet, sip).src == ALICE
    with pytest.raises(AttributeError):
        made.index = 4  # type: ignore[misc]  # still frozen
