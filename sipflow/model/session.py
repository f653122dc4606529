"""Sessions: the SDP offer/answer exchanges a dialog carries (RFC 3264, RFC 3261 §13.2.1).

The observer labels each message that carries SDP as an offer or an answer:

- a request with SDP (INVITE, re-INVITE, UPDATE, PRACK) is an offer; the SDP in a response
  to it (a reliable or early 18x, or the 2xx) is the answer;
- an INVITE without SDP asks for an offer: the first response with SDP carries it and the
  ACK carries the answer (§13.2.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from sipflow.model.message import Message
from sipflow.sip.message import SipRequest, SipResponse
from sipflow.sip.sdp import Media, SessionDescription, find_sdp

_T = TypeVar("_T")


class SdpRole(StrEnum):
    OFFER = "offer"
    ANSWER = "answer"


def _exchange(message: Message) -> tuple[str, int, str] | None:
    sip = message.sip
    if sip.cseq is None:
        return None
    method = sip.cseq.method
    return (sip.call_id or "", sip.cseq.seq, "INVITE" if method in ("INVITE", "ACK") else method)


def iter_sdp_roles(
    messages: Iterable[Message], find: Callable[[SipRequest | SipResponse], _T | None]
) -> Iterator[tuple[int, SdpRole, _T]]:
    """(``Message.index``, role, what ``find`` read of its SDP: ``find_sdp`` or
    ``find_sdp_digest``) of each message that carries SDP, in order; lazily, so a consumer
    that needs only the first offer and answer reads no further SDP."""
    offered_by: dict[tuple[str, int, str], bool] = {}
    """Exchange → True when the request made the offer, False when a response did."""
    for message in messages:
        if not message.sip.body:
            continue
        description = find(message.sip)
        key = _exchange(message)
        if description is None or key is None:
            continue
        is_request = isinstance(message.sip, SipRequest)
        if is_request and not (isinstance(message.sip, SipRequest) and message.sip.method == "ACK"):
            offered_by[key] = True
            role = SdpRole.OFFER
        elif is_request or offered_by.get(key) is True:  # ACK: answers an offer made in the 2xx (§13.2.1)
            role = SdpRole.ANSWER
        else:
            offered_by[key] = False
            role = SdpRole.OFFER
        yield message.index, role, description


def sdp_roles(messages: Iterable[Message]) -> dict[int, tuple[SdpRole, SessionDescription]]:
    """For each message (by ``Message.index``) that carries SDP: its role and the SDP."""
    return {index: (role, description) for index, role, description in iter_sdp_roles(messages, find_sdp)}


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaPair:
    """One ``m=`` line of an exchange: as offered, and as answered (the answer has as many
    ``m=`` lines as the offer, in the same order, RFC 3264 §6; None when it has fewer)."""

    index: int
    """Position of the ``m=`` line in the offer."""
    offer: Media
    answer: Media | None

    @property
    def rejected(self) -> bool:
        """The answer refused the stream: port 0 (RFC 3264 §6)."""
        return self.answer is not None and self.answer.port == 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """One SDP offer and an answer to it (RFC 3264 §4), or an offer no answer was seen to."""

    offer: Message
    offer_sdp: SessionDescription
    answer: Message | None
    answer_sdp: SessionDescription | None
    media: tuple[MediaPair, ...]
    """The offer's ``m=`` lines, each with the answer's."""

    @property
    def dialog_tag(self) -> str | None:
        """The To tag of the answer: which dialog (an early one, with forking) it set up."""
        if self.answer is None:
            return None
        return self.answer.sip.to_tag


@dataclass(frozen=True, slots=True, kw_only=True)
class Negotiation:
    """Every SDP offer and answer of a leg's (or a call's) messages, read once: what each
    message with SDP is (``roles``), and which answer answers which offer (``exchanges``), in
    the order the answers came (an initial INVITE's, then each re-INVITE's or UPDATE's, and one
    per early dialog when a call forks). The media analysis attaches RTP streams to these."""

    roles: Mapping[int, tuple[SdpRole, SessionDescription]]
    """``Message.index`` → its role and its SDP, for each message that carries SDP."""
    exchanges: tuple[Exchange, ...]
    """One per answer (retransmissions left out), paired with the offer at the same hop; then
    the offers that got no answer (by exchange, in order)."""

    def for_dialog(self, to_tag: str | None) -> tuple[Exchange, ...]:
        """The exchanges answered in the dialog with this To tag."""
        return tuple(e for e in self.exchanges if e.answer is not None and e.dialog_tag == to_tag)


def _pairs(offer: SessionDescription, answer: SessionDescription | None) -> tuple[MediaPair, ...]:
    answered = answer.media if answer is not None else ()
    return tuple(
        MediaPair(index=i, offer=m, answer=answered[i] if i < len(answered) else None)
        for i, m in enumerate(offer.media)
    )


def negotiate(messages: Iterable[Message]) -> Negotiation:
    """The negotiation of ``messages`` (a leg's, or a call's in capture order)."""
    messages = list(messages)
    roles = sdp_roles(messages)
    offers: dict[tuple[str, int, str], list[tuple[Message, SessionDescription]]] = {}
    answered: set[tuple[tuple[str, int, str], object, object]] = set()
    """(exchange, src, dst) of the offers answered (their retransmissions with them)."""
    exchanges: list[Exchange] = []
    for m in messages:
        entry = roles.get(m.index)
        key = _exchange(m)
        if entry is None or key is None:
            continue
        role, sdp = entry
        if role is SdpRole.OFFER:
            offers.setdefault(key, []).append((m, sdp))
            continue
        if m.retransmission:
            continue
        candidates = offers.get(key, [])
        if not candidates:
            continue
        # The offer at the same hop: sent the other way (a B2BUA's two sides share an exchange key
        # only by chance, a proxy's hops always do).
        facing = [c for c in candidates if c[0].src == m.dst and c[0].dst == m.src]
        offer, offer_sdp = (facing or candidates)[-1]
        answered.add((key, offer.src, offer.dst))
        pairs = _pairs(offer_sdp, sdp)
        exchanges.append(Exchange(offer=offer, offer_sdp=offer_sdp, answer=m, answer_sdp=sdp, media=pairs))
    for key, sent in offers.items():
        for m, sdp in sent:
            if not m.retransmission and (key, m.src, m.dst) not in answered:
                pairs = _pairs(sdp, None)
                exchanges.append(Exchange(offer=m, offer_sdp=sdp, answer=None, answer_sdp=None, media=pairs))
    return Negotiation(roles=MappingProxyType(roles), exchanges=tuple(exchanges))
