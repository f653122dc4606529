"""Captures whose cost would grow faster than their size in a naive reassembler (issue 12).

    python tests/captures/make_superlinear.py fragments N OUT.pcap
    python tests/captures/make_superlinear.py tcp N OUT.pcap
    python tests/captures/make_superlinear.py ws N OUT.pcap.gz [FRAME_OCTETS]

Nothing is committed: ``tests/test_capture_linear.py`` writes small ones in ``tmp_path``, and
the same generators, run by hand with a large N, give the inputs timed with
``/usr/bin/time -v sipflow calls OUT``. Frames are packed with :mod:`struct` (Ethernet / IPv4 /
UDP or TCP, checksums zero), so a million of them take seconds, not minutes:

* ``fragments``: one SIP datagram (an INVITE of about 4,000 octets) in three IPv4 fragments
  (RFC 791 §3.2); the first and the last are repeated until N fragments have been sent, the
  middle one comes last. Every duplicate leaves the same hole.
* ``tcp``: a client -> server stream (SYN, then an INVITE in two segments) with N junk segments
  whose sequence numbers lie far beyond the window (2²⁴ to 2³¹ octets ahead of the stream),
  before, between and after the two halves of the INVITE.
* ``ws``: SIP over WebSocket (RFC 7118): the HTTP upgrade, then one INVITE whose text frame is
  followed by N continuation frames (RFC 6455 §5.4) of FRAME_OCTETS each (SDP attribute
  lines), the last with FIN; ``.gz`` paths are written gzip'd.
"""

from __future__ import annotations

import gzip
import random
import socket
import struct
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

_ETHER: bytes = bytes.fromhex("02000000000b02000000000a0800")
CLIENT = ("10.0.0.1", 40000)
SERVER = ("10.0.0.2", 5060)
T0 = 1_700_000_000
ISN = 1000
"""The client's initial sequence number: its SYN carries it, the data starts one after it."""

CALL_ID = "superlinear-1@10.0.0.1"


def invite(body_octets: int = 3600, transport: str = "UDP", call_id: str = CALL_ID) -> bytes:
    """An INVITE with an SDP body of about ``body_octets`` (attribute lines pad it)."""
    lines = [
        "v=0",
        "o=alice 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
    ]
    i = 0
    while sum(len(x) + 2 for x in lines) < body_octets:
        lines.append(f"a=x-pad-{i:06d}:{'p' * 50}")
        i += 1
    body = ("\r\n".join(lines) + "\r\n").encode()
    head = (
        "INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 10.0.0.1:40000;branch=z9hG4bK-{call_id[:12]}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:alice@10.0.0.1>;tag=1\r\nTo: <sip:bob@10.0.0.2>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.1:40000>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# --- frames ----------------------------------------------------------------------------------------


def ipv4(proto: int, payload: bytes, *, ident: int = 0, frag: int = 0x4000) -> bytes:
    """Ethernet + IPv4 from CLIENT to SERVER; ``frag`` is the flags/fragment-offset word."""
    src, dst = socket.inet_aton(CLIENT[0]), socket.inet_aton(SERVER[0])
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0, src, dst)
    return _ETHER + header + payload


def udp_datagram(payload: bytes) -> bytes:
    """The UDP header and payload (to be fragmented or sent whole)."""
    return struct.pack("!HHHH", CLIENT[1], SERVER[1], 8 + len(payload), 0) + payload


def v4_fragments(datagram: bytes, size: int = 1480, ident: int = 0x2345) -> list[bytes]:
    """``datagram`` (a UDP header and payload) cut into IPv4 fragments of ``size`` octets."""
    assert size % 8 == 0
    out = []
    for off in range(0, len(datagram), size):
        more = off + size < len(datagram)
        out.append(ipv4(17, datagram[off : off + size], ident=ident, frag=(0x2000 if more else 0) | off >> 3))
    return out


def tcp(seq: int, payload: bytes = b"", flags: int = 0x18, ack: int = 1) -> bytes:
    """A client -> server TCP segment (PSH|ACK by default)."""
    header = struct.pack(
        "!HHIIBBHHH", CLIENT[1], SERVER[1], seq & 0xFFFFFFFF, ack, 5 << 4, flags, 65535, 0, 0
    )
    return ipv4(6, header + payload)


def ws_frame(payload: bytes, *, opcode: int, fin: bool, mask: bytes | None = None) -> bytes:
    """An RFC 6455 §5.2 frame (7-, 16- or 64-bit length), masked when ``mask`` is given."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack("!Q", n)
    if mask:
        k = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        payload = (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")
        head += mask
    return head + payload


# --- the three inputs -----------------------------------------------------------------------------


def duplicate_fragments(n: int, payload: bytes | None = None) -> list[bytes]:
    """``n`` IPv4 fragments (n >= 3) of one SIP datagram: first and last repeated, middle last."""
    first, middle, last = v4_fragments(udp_datagram(payload if payload is not None else invite()))
    dups = [first if i % 2 == 0 else last for i in range(n - 1)]
    return [*dups, middle]


def tcp_far_out_of_window(n: int, message: bytes | None = None, seed: int = 12) -> list[bytes]:
    """SYN, then ``n`` junk segments far ahead of the stream around the two halves of an INVITE."""
    msg = message if message is not None else invite(transport="TCP")
    rng = random.Random(seed)
    junk = b"\x00junk" * 200

    def far(k: int) -> list[bytes]:
        return [tcp(ISN + 1 + rng.randrange(1 << 24, 1 << 31), junk) for _ in range(k)]

    half = len(msg) // 2
    third = n // 3
    return [
        tcp(ISN, flags=0x02, ack=0),
        *far(third),
        tcp(ISN + 1, msg[:half]),
        *far(third),
        tcp(ISN + 1 + half, msg[half:]),
        *far(n - 2 * third),
    ]


UPGRADE = (
    b"GET /sip HTTP/1.1\r\nHost: 10.0.0.2:5060\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
MASK = b"\x5a\xa5\x3c\xc3"


def ws_continuations(n: int, frame_octets: int = 1000, *, segment: int = 1460) -> Iterator[bytes]:
    """SYN, the upgrade, then one SIP message as a text frame and ``n`` continuation frames.

    The message is an INVITE whose SDP body is ``n * frame_octets`` octets (plus its first
    lines): the text frame carries the header, each continuation frame ``frame_octets`` of the
    body. Frames are masked (client to server) and cut into TCP segments of ``segment`` octets.
    """
    line = b"a=x-pad:" + b"q" * max(0, frame_octets - 10) + b"\r\n"
    chunk = line[:frame_octets]
    assert len(chunk) == frame_octets
    body_len = n * frame_octets
    head = (
        "INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
        "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK-ws-superlinear\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:alice@10.0.0.1>;tag=1\r\nTo: <sip:bob@10.0.0.2>\r\n"
        f"Call-ID: ws-{CALL_ID}\r\nCSeq: 1 INVITE\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {body_len}\r\n\r\n"
    ).encode()
    seq = ISN + 1
    yield tcp(ISN, flags=0x02, ack=0)
    yield tcp(seq, UPGRADE)
    seq += len(UPGRADE)
    frames: Iterable[bytes] = [ws_frame(head, opcode=1, fin=False, mask=MASK)]
    cont = ws_frame(chunk, opcode=0, fin=False, mask=MASK)
    pending = bytearray()
    for i in range(n + 1):
        if i:
            frames = [cont if i < n else ws_frame(chunk, opcode=0, fin=True, mask=MASK)]
        for f in frames:
            pending += f
        while len(pending) >= segment or (i == n and pending):
            piece = bytes(pending[:segment])
            del pending[:segment]
            yield tcp(seq, piece)
            seq += len(piece)


# --- files -----------------------------------------------------------------------------------------


def write_pcap(path: Path, frames: Iterable[bytes], step_us: int = 100) -> None:
    """A little-endian microsecond pcap of Ethernet frames ``step_us`` apart; gzip'd for ``.gz``."""
    out: BinaryIO
    with gzip.open(path, "wb", compresslevel=1) if path.suffix == ".gz" else path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i, frame in enumerate(frames):
            us = i * step_us
            out.write(struct.pack("<IIII", T0 + us // 1_000_000, us % 1_000_000, len(frame), len(frame)))
            out.write(frame)


def main(argv: list[str]) -> None:
    kind, n, out = argv[0], int(argv[1]), Path(argv[2])
    if kind == "fragments":
        write_pcap(out, duplicate_fragments(n))
    elif kind == "tcp":
        write_pcap(out, tcp_far_out_of_window(n))
    elif kind == "ws":
        write_pcap(out, ws_continuations(n, int(argv[3]) if len(argv) > 3 else 1000))
    else:
        raise SystemExit(f"unknown kind {kind!r}: fragments, tcp or ws")
    print(f"{out}: {out.stat().st_size} octets")


if __name__ == "__main__":
    main(sys.argv[1:])
