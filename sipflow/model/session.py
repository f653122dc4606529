"""Sessions: the SDP offer/answer exchanges a dialog carries (RFC 3264, RFC 3261 §13.2.1).

The observer labels each message that carries SDP as an offer or an answer:

- a request with SDP (INVITE, re-INVITE, UPDATE, PRACK) is an offer; the SDP in a response
  to it (a reliable or early 18x, or the 2xx) is the answer;
- an INVITE without SDP asks for an offer: the first response with SDP carries it and the
  ACK carries the answer (§13.2.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import TypeVar

from sipflow.model.message import Message
from sipflow.sip.message import SipRequest, SipResponse
from sipflow.sip.sdp import SessionDescription, find_sdp

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
