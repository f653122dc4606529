"""Cheap content tests: "is this SIP?" and "what else is it?" (sans-I/O).

Both run on every UDP datagram and on every TCP stream that has not framed SIP yet, so they
are built to say *no* fast: :data:`TOKEN_START` rejects a payload on its first byte (an RTP
packet starts with ``0x80``-``0xBF``, which no SIP start line can), and only a payload whose
first byte could begin a SIP start line is matched against a precompiled expression. Nothing
here builds an object for a rejected payload.

SIP is recognised by content, never by port (RFC 3261 §7.1, §25.1)::

    Request-Line = Method SP Request-URI SP SIP-Version CRLF
    Status-Line  = SIP-Version SP Status-Code SP Reason-Phrase CRLF

``Method`` is a ``token`` (extension methods are legal), ``SIP-Version`` is case-insensitive
(§7.1). A request therefore needs its whole first line; a response only its first 12 octets.

The non-SIP classification feeds :attr:`CaptureStats.non_sip` and is a heuristic for a
summary, not a dissector.
"""

from __future__ import annotations

import re
from typing import Final

from sipflow.capture.types import SIP_METHODS

# --- kinds counted in CaptureStats.non_sip ------------------------------------------------------

RTP: Final = "RTP"
RTCP: Final = "RTCP"
STUN: Final = "STUN"
DNS: Final = "DNS"
DTLS: Final = "DTLS"
TLS: Final = "TLS"
SIP_KEEPALIVE: Final = "SIP keep-alive"
OTHER_UDP: Final = "other UDP"
WEBSOCKET: Final = "WebSocket"
"""WebSocket octets that carried no SIP: the HTTP upgrade handshake (RFC 6455 §4), control frames,
non-SIP messages, and whole streams that negotiated another subprotocol than ``sip`` (RFC 7118)."""
OTHER_TCP: Final = "other TCP"
TCP_CONTROL: Final = "TCP control"
"""A TCP segment without payload (SYN, ACK, FIN, RST)."""
TCP_RETRANSMISSION: Final = "TCP retransmission"
"""A TCP segment whose bytes had all been seen already."""
ICMP: Final = "ICMP"
SCTP: Final = "SCTP"
HEP: Final = "HEP"
"""A HEP (HOMER) message that carries no SIP (RTCP reports, logs, ...)."""
ESP: Final = "ESP (encrypted)"
OTHER_IP: Final = "other IP"
IP_FRAGMENT: Final = "IP fragment"
"""A fragment other than the last of a non-SIP datagram, or of one that never completed."""
ARP: Final = "ARP"
OTHER: Final = "other"
"""Non-IP link-layer payloads (LLDP, STP, IPX, ...)."""

# --- SIP start lines --------------------------------------------------------------------------

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN_CHARS: Final = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
_TOKEN_CLASS: Final = rb"[A-Za-z0-9\-.!%*_+`'~]"

TOKEN_START: Final = bytes(1 if i in _TOKEN_CHARS else 0 for i in range(256))
"""Indexed by a payload's first octet: 1 where a SIP start line may begin there, else 0.

A SIP message starts with a ``Method`` (a token) or with ``SIP/2.0`` (``S``, also a token
character); RTP/RTCP (``0x80``-``0xBF``), TLS (``0x14``-``0x17``), STUN (``0x00``/``0x01``) and
DNS headers mostly fail this one lookup.
"""

# RFC 3261 §25.1 Request-Line; the Request-URI contains no SP, CR, LF (RFC 3986 characters).
_REQUEST_LINE: Final = re.compile(_TOKEN_CLASS + rb"+ [^ \r\n\x00]+ [Ss][Ii][Pp]/2\.0\r?\n")
# RFC 3261 §25.1 Status-Line; a missing Reason-Phrase *and* SP is tolerated (seen in the wild).
_STATUS_LINE: Final = re.compile(rb"[Ss][Ii][Pp]/2\.0 \d\d\d[ \r]")
# A start line cut short by the snapshot length (only used for truncated frames): the request
# must already show a SIP/TEL URI scheme so that HTTP-over-UDP (SSDP "NOTIFY * HTTP/1.1") and
# other text protocols do not pass.
_PARTIAL_START: Final = re.compile(
    _TOKEN_CLASS + rb"+ (?:[Ss][Ii][Pp][Ss]?|[Tt][Ee][Ll]):[^ \r\n\x00]*(?: [^ \r\n\x00]{0,7})?\Z"
    rb"|[Ss][Ii][Pp]/2\.0 \d{0,3}\Z"
)

_CRLF: Final = b"\r\n"


def is_sip_start(data: bytes | bytearray, start: int = 0, end: int | None = None) -> bool:
    """Whether ``data[start:end]`` begins with a SIP Request-Line or Status-Line.

    The Request-Line must be complete (up to its line feed); a Status-Line needs only
    ``SIP/2.0 NNN`` and the separator after it. ``start``/``end`` let a caller test a payload
    inside a larger buffer without copying it.
    """
    if end is None:
        end = len(data)
    if start >= end or not TOKEN_START[data[start]]:
        return False
    return (
        _REQUEST_LINE.match(data, start, end) is not None or _STATUS_LINE.match(data, start, end) is not None
    )


def is_partial_sip_start(data: bytes | bytearray, start: int = 0, end: int | None = None) -> bool:
    """Whether a payload cut short inside its first line still looks like a SIP start line.

    For frames cut by the snapshot length only: the whole captured payload is one line.
    """
    if end is None:
        end = len(data)
    if start >= end or not TOKEN_START[data[start]]:
        return False
    if data.find(b"\n", start, end) >= 0:
        return False
    return _PARTIAL_START.match(data, start, end) is not None


_SIP_VERSION: Final = b"SIP/2.0"


def find_sip_start(data: bytes | bytearray, start: int = 0) -> int:
    """Offset of the first SIP start line in ``data[start:]``, or -1.

    Used to resynchronise a TCP stream picked up in the middle of a message (RFC 3261 §18.3
    gives no other way to find a message boundary): every ``SIP/2.0`` is either the start of a
    Status-Line or the end of a Request-Line, so the search jumps from one to the next and
    checks the line it belongs to. A start line normally begins a line; one glued to a body
    that lacks a final CRLF is also found (a Status-Line anywhere, a Request-Line when its
    method is a registered one). Only upper-case ``SIP/2.0`` is searched for (RFC 3261 §7.1:
    implementations MUST send it upper-case).
    """
    find, rfind = data.find, data.rfind
    k = find(_SIP_VERSION, start)
    while k >= 0:
        line = rfind(b"\n", start, k) + 1
        if line == 0:
            line = start
        if is_sip_start(data, line):
            return line
        if k > line and _STATUS_LINE.match(data, k) is not None:
            return k  # a Status-Line glued to what precedes it on the line
        glued = _glued_request_line(data, line, k)
        if glued >= 0:
            return glued
        k = find(_SIP_VERSION, k + 1)
    return -1


# Longest first ("PRACK" ends in "ACK").
_KNOWN_METHODS: Final = tuple(sorted((m.encode() for m in SIP_METHODS), key=len, reverse=True))


def _glued_request_line(data: bytes | bytearray, line: int, k: int) -> int:
    """A Request-Line ending at ``k`` whose method follows other octets on the same line.

    A body without a final CRLF glues the next message's start line to it (``...}INVITE sip:``);
    only a registered method name is trusted as the start then.
    """
    if k < 2 or data[k - 1] != 0x20:
        return -1
    sp = data.rfind(b" ", line, k - 1)
    if sp <= line:
        return -1
    head = bytes(data[max(line, sp - 9) : sp])
    for method in _KNOWN_METHODS:
        if head.endswith(method):
            cand = sp - len(method)
            if cand > line and is_sip_start(data, cand):
                return cand
            return -1
    return -1


def is_keepalive(data: bytes | bytearray, start: int = 0, end: int | None = None) -> bool:
    """Whether the payload is only CRLFs: an RFC 5626 §3.5.1 keep-alive ping or pong."""
    if end is None:
        end = len(data)
    if start >= end:
        return False
    return not bytes(data[start:end]).replace(_CRLF, b"")


# --- non-SIP classification ---------------------------------------------------------------------

_DNS_PORTS: Final = frozenset((53, 5353, 5355))  # DNS, mDNS (RFC 6762), LLMNR (RFC 4795)

RTP_KIND: Final[tuple[str | None, ...]] = tuple(
    RTCP if 192 <= b <= 223 else RTP if (b & 0x7F) <= 34 or (b & 0x7F) >= 96 else None for b in range(256)
)
"""Indexed by the second octet of a version-2 RTP/RTCP packet: ``RTCP`` for packet types
192-223 (RFC 5761 §4), ``RTP`` for payload types 0-34 and 96-127 (RFC 3551 §6), None for the
unassigned payload types in between (not RTP). Both are only counted between unprivileged
ports (RFC 3550 §11: dynamic ports)."""
_STUN_COOKIE: Final = b"\x21\x12\xa4\x42"  # RFC 8489 §5


def classify_udp(data: bytes | bytearray, start: int, end: int, sport: int, dport: int) -> str:
    """The kind of a UDP payload that is not SIP (one of the module's kind constants)."""
    n = end - start
    if sport in _DNS_PORTS or dport in _DNS_PORTS:
        return DNS
    if n <= 0:
        return OTHER_UDP
    b0 = data[start]
    if b0 >= 0x80:
        if b0 < 0xC0 and n >= 8 and sport >= 1024 and dport >= 1024:
            kind = RTP_KIND[data[start + 1]]
            if kind is RTCP or (kind is RTP and n >= 12):
                return kind
        return OTHER_UDP
    if b0 < 4:
        # RFC 8489 §6: two zero bits, then the magic cookie at octet 4.
        if n >= 20 and data[start + 4 : start + 8] == _STUN_COOKIE:
            return STUN
        return OTHER_UDP
    if 20 <= b0 <= 63 and n >= 13 and data[start + 1] == 0xFE:
        return DTLS  # RFC 7983 §7 demultiplexing range, DTLS 1.x version major 0xFE
    if b0 in (10, 13) and is_keepalive(data, start, end):
        return SIP_KEEPALIVE
    return OTHER_UDP


_WEBSOCKET_UPGRADE: Final = re.compile(rb"\r\nupgrade[ \t]*:[ \t]*websocket", re.IGNORECASE)


def classify_tcp(data: bytes | bytearray, start: int, end: int) -> str:
    """The kind of a TCP stream's first payload when it is not SIP."""
    if end - start >= 3:
        b0 = data[start]
        # TLS record header (RFC 8446 §5.1): content type 20-23, legacy version 3.x.
        if 0x14 <= b0 <= 0x17 and data[start + 1] == 3 and data[start + 2] <= 4:
            return TLS
        # RFC 6455 §4.1/§4.2.2: the opening handshake (GET ... / HTTP/1.1 101) with Upgrade.
        if (
            data.startswith(b"GET ", start) or data.startswith(b"HTTP/1.1 101", start)
        ) and _WEBSOCKET_UPGRADE.search(data, start, end):
            return WEBSOCKET
    return OTHER_TCP


def is_tls_record(data: bytes | bytearray, start: int = 0, end: int | None = None) -> bool:
    """Whether the bytes start with a TLS record header (RFC 8446 §5.1)."""
    if end is None:
        end = len(data)
    return classify_tcp(data, start, end) == TLS
