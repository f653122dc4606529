"""HEP, the HOMER encapsulation protocol (sans-I/O): versions 1, 2 and 3.

A capture agent sends a copy of each SIP packet it saw to a collector (commonly UDP 9060),
wrapped in a HEP header that carries the original addresses, ports and capture time. HEP is
recognised by content, never by port: ``HEP3`` magic for version 3, a version octet 1 or 2
with a consistent header length and address family for the older versions.

* HEP v1/v2 (Kamailio ``sipcapture`` ``hep_hdr``): version, header length, family
  (2 AF_INET, 10 AF_INET6), protocol, source and destination port (network order), source and
  destination address; v2 adds ``tv_sec``, ``tv_usec`` (host order, in practice
  little-endian) and ``captid`` (12 octets with the padding the C struct has).
* HEP v3 (HEP3 spec, "HEP3 Network Protocol Specification"): ``HEP3``, total length, then
  chunks of vendor id, type, length (header included), value; the generic types used here
  are 0x0001 family, 0x0002 protocol, 0x0003/0x0004 IPv4 source/destination, 0x0005/0x0006
  IPv6 source/destination, 0x0007/0x0008 ports, 0x0009/0x000a seconds/microseconds,
  0x000b protocol type (1 = SIP) and 0x000f payload.

Over UDP each datagram is one HEP message. Over TCP (Kamailio ``siptrace`` with
``;transport=tcp``, heplify ``-nt tcp``, OpenSIPS ``proto_hep``) HEP3 messages follow each other
back to back on the byte stream, each framed by its own total length:
:func:`v3_length` and :func:`v3_well_formed` let the TCP reassembler cut them out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from sipflow.capture import detect
from sipflow.capture.ip import format_address
from sipflow.capture.types import Endpoint, SipPayload, Transport, make_sip_payload

_AF_INET: Final = 2
_AF_INET6: Final = 10
_PROTO_TCP: Final = 6
_PROTO_UDP: Final = 17
_PROTO_SCTP: Final = 132
PROTOCOLS: Final = frozenset((_PROTO_TCP, _PROTO_UDP, _PROTO_SCTP))
"""IP protocol numbers a HEP header may carry that sipflow maps to a SIP transport."""

TRANSPORTS: Final = {_PROTO_UDP: Transport.UDP, _PROTO_TCP: Transport.TCP, _PROTO_SCTP: Transport.SCTP}
"""The SIP transport of each IP protocol number a HEP header may carry."""

HEP3_MAGIC: Final = b"HEP3"
HEP3_HEADER: Final = 6
"""``HEP3`` and the 16-bit total length (network order) that counts these 6 octets too."""
_CHUNK: Final = struct.Struct("!HHH")
_V2_TIME: Final = struct.Struct("<IIH")
_PROTOCOL_TYPE_SIP: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class HepPacket:
    """What a HEP header says about the packet it carries."""

    version: int
    src: str
    """Original source address (text form)."""
    sport: int
    dst: str
    dport: int
    protocol: int
    """IP protocol number of the original packet (17 UDP, 6 TCP, 132 SCTP)."""
    timestamp: float | None
    """Original capture time; None for HEP v1 (which has none)."""
    payload: bytes


def looks_like_hep(data: bytes | bytearray, start: int, end: int) -> bool:
    """A cheap first test: ``HEP3`` magic, or a v1/v2 header with a plausible length/family."""
    if end - start < 4:
        return False
    b0 = data[start]
    if b0 == 0x48:
        return data[start : start + 4] == HEP3_MAGIC
    if b0 in (1, 2):
        return data[start + 1] in (16, 40) and data[start + 2] in (_AF_INET, _AF_INET6)
    return False


def v3_length(data: bytes | bytearray, start: int = 0) -> int:
    """The total length the HEP3 header at ``data[start:]`` announces (header included).

    0 while fewer than 6 octets are there; -1 when they are not a HEP3 header or announce a
    length too short to hold one (the header alone is 6 octets, a chunk at least 6 more).
    """
    if len(data) - start < HEP3_HEADER:
        return 0
    if data[start : start + 4] != HEP3_MAGIC:
        return -1
    total = data[start + 4] << 8 | data[start + 5]
    return total if total >= HEP3_HEADER + _CHUNK.size else -1


V3_PLAUSIBLE: Final = HEP3_HEADER + _CHUNK.size
"""Octets :func:`v3_plausible` looks at: the header and the first chunk header."""


def v3_plausible(data: bytes | bytearray, start: int) -> bool:
    """Whether a HEP3 message may begin at ``data[start]``: the magic, a total length that holds
    at least one chunk, and a first chunk of the generic vendor (0) that fits in it.

    For finding the next message in a TCP stream picked up mid-way or after junk.
    """
    total = v3_length(data, start)
    if total <= 0 or len(data) - start < V3_PLAUSIBLE:
        return False
    vendor, _ctype, clen = _CHUNK.unpack_from(data, start + HEP3_HEADER)
    return bool(vendor == 0 and 6 <= clen <= total - HEP3_HEADER)


_PAYLOAD_CHUNK: Final = b"\x00\x00\x00\x0f"
"""Vendor 0, type 0x000f: how the chunk carrying the captured packet begins."""


def hep3_before(data: bytes | bytearray, i: int) -> bool:
    """Whether the octets before ``data[i]`` (a SIP start line, or -1 for none) show a HEP3
    stream: a plausible HEP3 header, or the payload chunk header the start line is the value of.

    For a TCP stream picked up mid-way: its SIP must be read through the HEP3 headers (inner
    addresses and time), not found by a search for start lines.
    """
    j = data.find(HEP3_MAGIC, 0, i if i >= 0 else len(data))
    while j >= 0:
        if v3_plausible(data, j):
            return True
        j = data.find(HEP3_MAGIC, j + 1, i if i >= 0 else len(data))
    return i >= _CHUNK.size and data[i - 6 : i - 2] == _PAYLOAD_CHUNK


def v3_well_formed(data: bytes | bytearray, start: int, total: int) -> bool:
    """Whether the chunks of the HEP3 message ``data[start:start + total]`` fit its length.

    Every chunk length counts its own 6-octet header and must end inside the message; fewer
    than 6 octets may be left after the last chunk (padding, as :func:`decode` tolerates). A
    message that fails this was framed on a wrong length: the stream is out of step.
    """
    end = start + total
    p = start + HEP3_HEADER
    while p + 6 <= end:
        clen = data[p + 4] << 8 | data[p + 5]
        if clen < 6 or p + clen > end:
            return False
        p += clen
    return True


def decode(
    data: bytes | bytearray, start: int = 0, end: int | None = None, *, cut: bool = False
) -> HepPacket | None:
    """Decode one HEP message at ``data[start:end]``; None when it is not HEP or not SIP.

    ``cut``: the octets end before the HEP3 message does (a TCP stream cut by a hole or by the
    end of the capture); the payload chunk may then be partial. Only for HEP3.
    """
    if end is None:
        end = len(data)
    if not looks_like_hep(data, start, end):
        return None
    if data[start] == 0x48:
        return _decode_v3(data, start, end, cut)
    return _decode_v12(data, start, end)


def sip_transport(h: HepPacket, *, truncated: bool = False) -> Transport | None:
    """The transport of the SIP message ``h`` carries; None when it carries none (another IP
    protocol, or a payload without a SIP start line). ``truncated``: the payload was cut short."""
    transport = TRANSPORTS.get(h.protocol)
    payload = h.payload
    if transport is None or not (
        detect.is_sip_start(payload) or (truncated and detect.is_partial_sip_start(payload))
    ):
        return None
    return transport


def to_packet(
    h: HepPacket, *, frame: int, frames: tuple[int, ...], timestamp: float, file: str, truncated: bool = False
) -> SipPayload | None:
    """The SIP packet a HEP message carries, with the inner addresses, time and transport.

    None when it carries no SIP (another IP protocol, or a payload without a SIP start line).
    ``timestamp`` (the outer capture time) is used only when the HEP header has none (v1);
    ``frames`` empty means ``frame`` alone.
    """
    transport = sip_transport(h, truncated=truncated)
    if transport is None:
        return None
    return make_sip_payload(
        frame=frame,
        frames=frames,
        timestamp=timestamp if h.timestamp is None else h.timestamp,
        src=Endpoint(h.src, h.sport),
        dst=Endpoint(h.dst, h.dport),
        transport=transport,
        payload=h.payload,
        truncated=truncated,
        file=file,
    )


def _decode_v12(data: bytes | bytearray, start: int, end: int) -> HepPacket | None:
    version, hlen, family, proto = data[start], data[start + 1], data[start + 2], data[start + 3]
    alen = 4 if family == _AF_INET else 16
    if hlen != 8 + 2 * alen or end - start < hlen:
        return None
    sport = data[start + 4] << 8 | data[start + 5]
    dport = data[start + 6] << 8 | data[start + 7]
    a = start + 8
    src = format_address(bytes(data[a : a + alen]))
    dst = format_address(bytes(data[a + alen : a + 2 * alen]))
    p = start + hlen
    ts: float | None = None
    if version == 2:
        if end - p < 12:
            return None
        sec, usec, _captid = _V2_TIME.unpack_from(data, p)
        ts = sec + usec / 1e6
        p += 12
    return HepPacket(
        version=version, src=src, sport=sport, dst=dst, dport=dport, protocol=proto,
        timestamp=ts, payload=bytes(data[p:end]),
    )  # fmt: skip


def _decode_v3(data: bytes | bytearray, start: int, end: int, cut: bool) -> HepPacket | None:
    if end - start < 6:
        return None
    total = data[start + 4] << 8 | data[start + 5]
    if total < 6 or (start + total > end and not cut):
        return None
    end = min(end, start + total)
    p = start + 6
    proto = 0
    src = dst = ""
    sport = dport = 0
    sec: int | None = None
    usec = 0
    ptype = _PROTOCOL_TYPE_SIP
    payload: bytes | None = None
    while p + 6 <= end:
        vendor, ctype, clen = _CHUNK.unpack_from(data, p)
        if clen < 6:
            return None
        if p + clen > end:
            if not (cut and vendor == 0 and ctype == 0x000F):
                return None
            clen = end - p  # the payload chunk, cut short: keep what is there
        v = p + 6
        n = clen - 6
        if vendor == 0:
            if ctype == 0x0002 and n >= 1:
                proto = data[v]
            elif ctype in (0x0003, 0x0005) and n in (4, 16):
                src = format_address(bytes(data[v : v + n]))
            elif ctype in (0x0004, 0x0006) and n in (4, 16):
                dst = format_address(bytes(data[v : v + n]))
            elif ctype == 0x0007 and n >= 2:
                sport = data[v] << 8 | data[v + 1]
            elif ctype == 0x0008 and n >= 2:
                dport = data[v] << 8 | data[v + 1]
            elif ctype == 0x0009 and n >= 4:
                sec = int.from_bytes(data[v : v + 4], "big")
            elif ctype == 0x000A and n >= 4:
                usec = int.from_bytes(data[v : v + 4], "big")
            elif ctype == 0x000B and n >= 1:
                ptype = data[v]
            elif ctype == 0x000F:
                payload = bytes(data[v : v + n])
        p += clen
    if payload is None or ptype != _PROTOCOL_TYPE_SIP or not src or not dst:
        return None
    return HepPacket(
        version=3, src=src, sport=sport, dst=dst, dport=dport, protocol=proto,
        timestamp=None if sec is None else sec + usec / 1e6, payload=payload,
    )  # fmt: skip
