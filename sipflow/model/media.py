"""Which call each RTP stream belongs to: the SDP that described its destination (RFC 3264).

A stream is sent to the address and port its receiver put in its SDP (the ``c=`` and ``m=``
lines of its offer or answer, RFC 3264 §5, §6). The call of a stream is the call with the
latest description of the stream's destination before the stream's first packet (a re-INVITE
that moves the media describes the new address from then on); a stream that starts before any
description of its destination goes to the first call that describes it afterwards, and one
that no SDP of the capture describes is unlinked. Linking is by address and time, never by
port alone.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sipflow.media.collector import RtpStream
from sipflow.media.dtmf import INFO, DtmfDigit, dtmf_from_info
from sipflow.model.call import Call
from sipflow.model.message import Message
from sipflow.sip.message import SipRequest
from sipflow.sip.sdp import Media


def media_direction(streams: Sequence[RtpStream]) -> str:
    """``two-way`` when some stream has one going back between the same two hosts, ``one-way``
    when the streams all go one way, ``none`` without any. By hosts, not ports: behind NAT or an
    SBC the ports of the two directions may differ, the hosts on the wire do not."""
    if not streams:
        return "none"
    pairs = {(s.src.host, s.dst.host) for s in streams}
    return "two-way" if any((dst, src) in pairs for src, dst in pairs) else "one-way"


def streams_by_call(calls: Sequence[Call], streams: Sequence[RtpStream]) -> dict[int, list[RtpStream]]:
    """``calls_of_streams`` by ``Call.index``; the unlinked streams under key -1."""
    out: dict[int, list[RtpStream]] = {}
    for stream, call in zip(streams, calls_of_streams(calls, streams), strict=True):
        out.setdefault(call.index if call is not None else -1, []).append(stream)
    return out


def described_addresses(call: Call) -> Iterator[tuple[tuple[str, int], Message]]:
    """Every (address, port) an ``m=`` line of the call's SDP described (addresses as
    ``address_key`` spells them), with the message that carried it, leg by leg."""
    for leg in call.legs:
        by_index = {m.index: m for m in leg.messages}
        for index, (_role, sd) in leg.negotiation.roles.items():
            message = by_index.get(index)
            if message is None:
                continue
            for media in sd.media:
                if media.port and media.connection is not None:
                    yield (address_key(media.connection), media.port), message


def calls_of_streams(calls: Sequence[Call], streams: Sequence[RtpStream]) -> list[Call | None]:
    """For each of ``streams``, the call among ``calls`` whose SDP describes its destination."""
    described: dict[tuple[str, int], list[tuple[float, int, Call]]] = {}
    for order, call in enumerate(calls):
        for key, message in described_addresses(call):
            described.setdefault(key, []).append((message.timestamp, order, call))
    for entries in described.values():
        entries.sort(key=lambda e: (e[0], e[1]))
    out: list[Call | None] = []
    for stream in streams:
        found = described.get((stream.dst.host, stream.dst.port))
        if not found:
            out.append(None)
            continue
        i = bisect.bisect_right([e[0] for e in found], stream.first_time)
        out.append(found[i - 1][2] if i else found[0][2])
    return out


@lru_cache(maxsize=4096)
def address_key(address: str) -> str:
    """An address as ``Endpoint`` writes it: SDP may spell an IPv6 address in full or in capitals
    (``c=IN IP6 2001:DB8:0:0::1``), the capture layer in the short form of RFC 5952."""
    try:
        return str(ipaddress.ip_address(address.strip("[]")))
    except ValueError:
        return address


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSdp:
    """What a call's SDP says of one of its streams (RFC 3264 §5, §6).

    A stream goes to an address its receiver described (an ``m=`` line of its offer or answer);
    the other side of that exchange, the same ``m=`` line of the answer or of the offer, is the
    sender's description. With symmetric RTP (RFC 4961), which nearly every SIP device and SBC
    uses, the sender sends from the address and port it receives at: ``sdp_matches`` tells.
    """

    receiver: Media
    """The ``m=`` line that described the stream's destination, the latest before the stream's
    first packet (else the first after it)."""
    receiver_message: Message
    """The message that carried it."""
    sender: Media | None
    """The sender's ``m=`` line of the same exchange; None when the offer got no answer."""
    sender_message: Message | None
    negotiated: frozenset[int]
    """The payload types the descriptions of the destination in the call listed: those the
    receiver agreed to receive there (RFC 3264 §5.1)."""
    sdp_matches: bool | None
    """Whether the stream came from the address and port the sender's ``m=`` line described;
    None when the sender's SDP is not known (an offer without an answer) or describes no
    address (port 0)."""


@dataclass(frozen=True, slots=True)
class _Description:
    time: float
    media: Media
    message: Message
    other: Media | None
    other_message: Message | None


def _descriptions(call: Call) -> dict[tuple[str, int], list[_Description]]:
    """Every (address, port) the call's SDP described, with the exchanges that described it, in
    time order."""
    out: dict[tuple[str, int], list[_Description]] = {}

    def add(media: Media, message: Message, other: Media | None, other_message: Message | None) -> None:
        if media.port and media.connection is not None:
            key = (address_key(media.connection), media.port)
            out.setdefault(key, []).append(
                _Description(message.timestamp, media, message, other, other_message)
            )

    for leg in call.legs:
        for exchange in leg.negotiation.exchanges:
            for pair in exchange.media:
                add(pair.offer, exchange.offer, pair.answer, exchange.answer)
                if pair.answer is not None and exchange.answer is not None:
                    add(pair.answer, exchange.answer, pair.offer, exchange.offer)
    for entries in out.values():
        entries.sort(key=lambda d: d.time)
    return out


def _payload_types(media: Media) -> set[int]:
    return {int(c.payload_type) for c in media.codecs if c.payload_type.isdigit()}


def _source_matches(stream: RtpStream, sender: Media | None) -> bool | None:
    if sender is None or not sender.port or sender.connection is None:
        return None
    return (stream.src.host, stream.src.port) == (address_key(sender.connection), sender.port)


def stream_sdp(call: Call, streams: Sequence[RtpStream]) -> list[StreamSdp | None]:
    """For each of ``streams`` (of this call), what the call's SDP says of it; None for a stream
    to an address the call's SDP did not describe."""
    described = _descriptions(call)
    out: list[StreamSdp | None] = []
    for stream in streams:
        found = described.get((stream.dst.host, stream.dst.port))
        if not found:
            out.append(None)
            continue
        i = bisect.bisect_right([d.time for d in found], stream.first_time)
        d = found[i - 1] if i else found[0]
        negotiated: set[int] = set()
        for each in found:
            negotiated |= _payload_types(each.media)
        out.append(
            StreamSdp(
                receiver=d.media,
                receiver_message=d.message,
                sender=d.other,
                sender_message=d.other_message,
                negotiated=frozenset(negotiated),
                sdp_matches=_source_matches(stream, d.other),
            )
        )
    return out


def sdp_of_streams(streams: Sequence[RtpStream], owners: Sequence[Call | None]) -> list[StreamSdp | None]:
    """``stream_sdp`` for every one of ``streams``, each with its call (``calls_of_streams``),
    in the order of ``streams``."""
    grouped: dict[int, tuple[Call, list[int]]] = {}
    for i, call in enumerate(owners):
        if call is not None:
            grouped.setdefault(id(call), (call, []))[1].append(i)
    out: list[StreamSdp | None] = [None] * len(streams)
    for call, positions in grouped.values():
        for i, found in zip(positions, stream_sdp(call, [streams[i] for i in positions]), strict=True):
            out[i] = found
    return out


def call_dtmf(call: Call, streams: Sequence[RtpStream]) -> list[DtmfDigit]:
    """The call's DTMF digits in time order: the RFC 4733 events of its streams, and the SIP
    INFO requests (``application/dtmf-relay``, ``application/dtmf``) of its legs, each INFO
    once (not its retransmissions)."""
    digits = [d for stream in streams for d in stream.dtmf]
    for leg in call.legs:
        for message in leg.messages:
            sip = message.sip
            if message.retransmission or not isinstance(sip, SipRequest) or sip.method != "INFO":
                continue
            found = dtmf_from_info(sip.content_type or "", sip.body)
            if found is not None:
                digit, duration = found
                digits.append(
                    DtmfDigit(
                        digit=digit,
                        frame=message.frame,
                        time=message.timestamp,
                        duration_ms=duration,
                        source=INFO,
                    )
                )
    digits.sort(key=lambda d: d.time)
    return digits
