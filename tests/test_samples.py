"""What each bundled sample must show (samples/README.md says how each was made).

The golden files pin every byte of the output; this table states the facts that matter, so a
regenerated sample (new branches, timestamps) is checked for meaning, not for bytes.
"""

from __future__ import annotations

import pytest

from sipflow import analyze
from sipflow.capture.types import Endpoint, Transport
from tests.conftest import SAMPLES

ALICE = Endpoint("127.0.0.10", 5060)
PROXY = Endpoint("127.0.0.20", 5060)
BOB = Endpoint("127.0.0.30", 5060)
VIA_PROXY = ((ALICE, PROXY), (PROXY, BOB))

# file: [(kind, state, final status, SIP messages, hops, answered dialog state)]
EXPECTED = {
    "basic-call.pcap": [("call", "completed", 200, 7, ((ALICE, BOB),), "terminated")],
    "proxy-call.pcap": [("call", "completed", 200, 14, VIA_PROXY, "terminated")],
    "busy-486.pcap": [("call", "rejected", 486, 8, VIA_PROXY, None)],
    "cancel.pcap": [("call", "cancelled", 487, 14, VIA_PROXY, "terminated")],
    "auth-407.pcap": [("call", "completed", 200, 17, VIA_PROXY, "terminated")],
    "reinvite-hold.pcap": [("call", "completed", 200, 21, VIA_PROXY, "terminated")],
    "tcp-call.pcap": [("call", "completed", 200, 14, VIA_PROXY, "terminated")],
    "no-answer-timeout.pcap": [("call", "failed", 408, 12, VIA_PROXY, "terminated")],
    "register.pcap": [
        ("registration", "registered", 200, 4, ((ALICE, PROXY),), None),
        ("options", "answered", 200, 2, ((ALICE, PROXY),), None),
    ],
    "three-calls.pcap": [("call", "completed", 200, 14, VIA_PROXY, "terminated")] * 3,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_outcome(name: str) -> None:
    analysis = analyze([SAMPLES / name])
    got = [
        (
            c.kind.value,
            c.state.value,
            c.final_status,
            len(c.messages),
            c.legs[0].hops,
            c.legs[0].dialogs[0].state.value if c.legs[0].dialogs else None,
        )
        for c in analysis.calls
    ]
    assert got == EXPECTED[name]
    assert analysis.summary.malformed == 0
    assert analysis.summary.retransmissions == 0  # samples/README.md: tshark reports 0 resent


def test_ipv6_call_over_loopback() -> None:
    (call,) = analyze([SAMPLES / "ipv6-call.pcap"]).calls
    assert call.state.value == "completed"
    assert call.legs[0].hops == ((Endpoint("::1", 5061), Endpoint("::1", 5060)),)
    assert str(call.legs[0].hops[0][0]) == "[::1]:5061"


def test_tcp_call_messages_are_framed_from_streams() -> None:
    analysis = analyze([SAMPLES / "tcp-call.pcap"])
    assert {m.transport for m in analysis.messages} == {Transport.TCP}
    assert analysis.summary.non_sip.get("TCP control", 0) > 0  # handshakes and bare ACKs


def test_auth_retry_is_one_call_timed_from_the_first_invite() -> None:
    (call,) = analyze([SAMPLES / "auth-407.pcap"]).calls
    invites = [tx for tx in call.legs[0].transactions if tx.method == "INVITE" and tx.client == ALICE]
    assert [tx.final_status for tx in invites] == [407, 200]
    assert invites[0].ack is not None  # the ACK of the 407 is inside the INVITE transaction
    first = invites[0].request
    ringing = invites[1].first_provisional
    assert first is not None and ringing is not None and call.pdd_ms is not None
    assert call.pdd_ms == pytest.approx((ringing.timestamp - first.timestamp) * 1000, abs=0.01)


def test_hold_reinvite_stays_in_the_dialog() -> None:
    (call,) = analyze([SAMPLES / "reinvite-hold.pcap"]).calls
    (dialog,) = call.legs[0].dialogs
    invites = [tx for tx in call.legs[0].transactions if tx.method == "INVITE"]
    assert len(invites) == 4  # initial and re-INVITE, each at two hops
    assert all(tx.id in dialog.transactions for tx in invites)
