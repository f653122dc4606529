"""WebSocket framing for SIP over WebSocket (RFC 7118), sans-I/O.

A cleartext TCP stream that opens with an HTTP ``Upgrade: websocket`` handshake (RFC 6455 §4)
negotiating the ``sip`` subprotocol (RFC 7118 §4.1) carries WebSocket frames afterwards
(RFC 6455 §5.2). Each complete WebSocket message (a data frame with FIN, or a text/binary
frame followed by continuation frames up to one with FIN) is exactly one SIP message
(RFC 7118 §5.2). Control frames (close, ping, pong) are interleaved and skipped.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8

_HEADER_END: Final = b"\r\n\r\n"
# RFC 6455 §11.3.4 Sec-WebSocket-Protocol: a comma-separated list of tokens; RFC 7118 §7: "sip".
_TCHAR: Final = rb"[A-Za-z0-9!#$%&'*+.^_`|~-]"
_SIP_SUBPROTOCOL: Final = re.compile(
    rb"\r\nsec-websocket-protocol[ \t]*:[^\r\n]*?(?<!" + _TCHAR + rb")sip(?!" + _TCHAR + rb")",
    re.IGNORECASE,
)


class FrameHeader(NamedTuple):
    """The fixed part of a WebSocket frame (RFC 6455 §5.2)."""

    fin: bool
    opcode: int
    mask: bytes | None
    """The 4-octet masking key (client-to-server frames), or None."""
    header_len: int
    payload_len: int


def handshake_length(buf: bytes | bytearray, start: int = 0) -> int:
    """Length of the HTTP handshake at the front of ``buf`` (through its empty line), or -1.

    ``start``: where to resume the search for the empty line (a caller waiting for the rest of
    the handshake passes the length searched before, less 3), so that each octet is searched
    once however many segments the handshake arrives in.
    """
    i = buf.find(_HEADER_END, start)
    return -1 if i < 0 else i + 4


def offers_sip(handshake: bytes | bytearray) -> bool:
    """Whether an HTTP upgrade request or response names the ``sip`` subprotocol (RFC 7118 §4.1)."""
    return _SIP_SUBPROTOCOL.search(handshake) is not None


def parse_header(buf: bytes | bytearray, start: int = 0) -> FrameHeader | None:
    """The frame header at ``buf[start:]``; None while it is incomplete.

    RFC 6455 §5.2: FIN bit, opcode, MASK bit, 7-bit length or 126 + 16-bit or 127 + 64-bit
    length, then the masking key when MASK is set.
    """
    n = len(buf) - start
    if n < 2:
        return None
    b0, b1 = buf[start], buf[start + 1]
    length = b1 & 0x7F
    h = 2
    if length == 126:
        if n < 4:
            return None
        length = int.from_bytes(buf[start + 2 : start + 4], "big")
        h = 4
    elif length == 127:
        if n < 10:
            return None
        length = int.from_bytes(buf[start + 2 : start + 10], "big")
        h = 10
    mask: bytes | None = None
    if b1 & 0x80:
        if n < h + 4:
            return None
        mask = bytes(buf[start + h : start + h + 4])
        h += 4
    return FrameHeader(bool(b0 & 0x80), b0 & 0x0F, mask, h, length)


def unmask(payload: bytes, key: bytes | None) -> bytes:
    """RFC 6455 §5.3: octet i is XORed with octet i mod 4 of the masking key."""
    if key is None or not payload:
        return payload
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")
