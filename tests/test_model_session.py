"""The SDP negotiation of a leg, read once (issue 13): roles, offer/answer pairs, m-lines."""

from __future__ import annotations

from sipflow.model.session import SdpRole, negotiate, sdp_roles
from sipflow.pipeline import analyze

from .conftest import SAMPLES, sample_captures


def test_negotiation_agrees_with_the_roles_and_the_rules_pairs() -> None:
    seen = 0
    for path in sample_captures():
        for call in analyze([path]).calls:
            for leg in call.legs:
                n = leg.negotiation
                assert n is leg.negotiation  # read once
                assert dict(n.roles) == sdp_roles(leg.messages)
                answers = [m for m in leg.messages if n.roles.get(m.index, (None,))[0] is SdpRole.ANSWER]
                paired = [e.answer for e in n.exchanges if e.answer is not None]
                # Every answer but a retransmission is paired with its offer, in order.
                assert [m for m in answers if not m.retransmission and m in paired] == paired
                for e in n.exchanges:
                    assert n.roles[e.offer.index][0] is SdpRole.OFFER
                    assert len(e.media) == len(e.offer_sdp.media)
                    if e.answer is not None:
                        assert n.roles[e.answer.index][0] is SdpRole.ANSWER
                        # An answer comes after its offer (an ACK answers an offer made in a 2xx).
                        assert e.answer.index > e.offer.index
                seen += len(n.exchanges)
    assert seen > 20


def test_a_hold_reinvite_is_a_second_exchange_with_its_direction() -> None:
    (call,) = analyze([SAMPLES / "reinvite-hold.pcap"]).calls
    exchanges = [e for e in call.legs[0].negotiation.exchanges if e.answer is not None]
    assert len(exchanges) >= 2
    first, hold = exchanges[0], exchanges[-1]
    assert first.media[0].offer.direction == "sendrecv"
    assert hold.media[0].offer.direction in ("sendonly", "inactive")
    assert hold.media[0].answer is not None and not hold.media[0].rejected
    assert call.legs[0].negotiation.for_dialog(hold.dialog_tag)[-1] is hold


def test_an_offer_without_answer_is_kept() -> None:
    (call,) = analyze([SAMPLES / "cancel.pcap"]).calls
    n = negotiate(call.messages)
    assert n.exchanges and all(e.answer is None and e.answer_sdp is None for e in n.exchanges)
    assert all(pair.answer is None for e in n.exchanges for pair in e.media)
