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
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from sipflow.capture.ip import format_address

_AF_INET: Final = 2
_AF_INET6: Final = 10
_PROTO_TCP: Final = 6
_PROTO_UDP: Final = 17
_PROTO_SCTP: Final = 132
PROTOCOLS: Final = frozenset((_PROTO_TCP, _PROTO_UDP, _PROTO_SCTP))
"""IP protocol numbers a HEP header may carry that sipflow maps to a SIP transport."""

_HEP3: Final = b"HEP3"
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
        return data[start : start + 4] == _HEP3
    if b0 in (1, 2):
        return data[start + 1] in (16, 40) and data[start + 2] in (_AF_INET, _AF_INET6)
    return False


def decode(data: bytes | bytearray, start: int = 0, end: int | None = None) -> HepPacket | None:
    """Decode one HEP message at ``data[start:end]``; None when it is not HEP or not SIP."""
    if end is None:
        end = len(data)
    if not looks_like_hep(data, start, end):
        return None
    if data[start] == 0x48:
        return _decode_v3(data, start, end)
    return _decode_v12(data, start, end)


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


def _decode_v3(data: bytes | bytearray, start: int, end: int) -> HepPacket | None:
    if end - start < 6:
        return None
    total = data[start + 4] << 8 | data[start + 5]
    if total < 6 or start + total > end:
        return None
    end = start + total
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
        if clen < 6 or p + clen > end:
            return None
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
