"""Each framer alone (sipflow.capture.framing), fed from literals through its three calls.

A framer is fed a :class:`StreamBytes` (the octets in sequence and the frames they came in),
told of holes and of the end of the stream, and hands out packets, warnings and counts. No TCP
here: the reassembler's own tests (test_capture_tcp, test_tcp_hep_ws) drive the same framers
through segments.
"""

from __future__ import annotations

import itertools
import struct

import pytest

from sipflow.capture import detect, framing
from sipflow.capture.framing import (
    Framer,
    FramerContext,
    HepFramer,
    Opaque,
    RtpFramer,
    SipFramer,
    Sniffer,
    StreamBytes,
    WebSocketFramer,
)
from sipflow.capture.types import CaptureStats, Endpoint, SipPayload, Transport

A = Endpoint("192.0.2.1", 5060)
B = Endpoint("192.0.2.2", 5060)

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\n"
    b"Call-ID: c1@192.0.2.1\r\nCSeq: 1 INVITE\r\nContent-Length: 4\r\n\r\nv=0\n"
)
OK = b"SIP/2.0 200 OK\r\nCall-ID: c1@192.0.2.1\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n"

# HEP3 (HEP3 spec): generic chunks, vendor 0, type, length (header included), value.
HEP_CHUNKS = (
    b"\x00\x00\x00\x01\x00\x07\x02"  # family: AF_INET
    b"\x00\x00\x00\x02\x00\x07\x06"  # protocol: TCP
    b"\x00\x00\x00\x03\x00\x0a\xc6\x33\x64\x01"  # IPv4 source 198.51.100.1
    b"\x00\x00\x00\x04\x00\x0a\xc6\x33\x64\x02"  # IPv4 destination 198.51.100.2
    b"\x00\x00\x00\x07\x00\x08\x13\xc4"  # source port 5060
    b"\x00\x00\x00\x08\x00\x08\x13\xc5"  # destination port 5061
    b"\x00\x00\x00\x09\x00\x0a\x65\x53\xf1\x00"  # seconds 1700000000
    b"\x00\x00\x00\x0a\x00\x0a\x00\x00\x00\x07"  # microseconds 7
    b"\x00\x00\x00\x0b\x00\x07\x01"  # protocol type: SIP
)


def hep3(payload: bytes) -> bytes:
    chunk = b"\x00\x00\x00\x0f" + struct.pack("!H", 6 + len(payload)) + payload
    return b"HEP3" + struct.pack("!H", 6 + len(HEP_CHUNKS) + len(chunk)) + HEP_CHUNKS + chunk


UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 192.0.2.2\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
MASK = b"\x01\x02\x03\x04"


def ws(payload: bytes, *, opcode: int = 1, fin: bool = True) -> bytes:
    """A masked client frame (RFC 6455 §5.2) with a 7- or 16-bit length."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + MASK + bytes(c ^ MASK[i % 4] for i, c in enumerate(payload))


def rtp(seq: int, payload: bytes = b"\xd5" * 160) -> bytes:
    """An RFC 4571 frame: 16-bit length, RTP version 2, PCMA (8), SSRC 0xdeadbeef."""
    packet = b"\x80\x08" + struct.pack("!HI", seq, seq * 160) + b"\xde\xad\xbe\xef" + payload
    return struct.pack("!H", len(packet)) + packet


RTCP_RR = bytes.fromhex("81c90007deadbeef") + bytes(24)  # receiver report, one block (RFC 3550 §6.4.2)
RTCP = struct.pack("!H", len(RTCP_RR)) + RTCP_RR


class Harness:
    """One stream direction and its framer, with what comes out."""

    def __init__(self, framer: type[Framer] | None = None, *, max_message: int = 1 << 20) -> None:
        self.stats = CaptureStats()
        self.warnings: list[tuple[str, int | None]] = []
        self.ctx = FramerContext(
            stats=self.stats,
            warn=lambda m, f: self.warnings.append((m, f)),
            file="lit",
            max_message=max_message,
            tls_conversations=set(),
        )
        self.b = StreamBytes(A, B, self.stats)
        self.framer: Framer = Sniffer(self.ctx) if framer is None else framer(self.ctx)  # type: ignore[call-arg]
        self.packets: list[SipPayload] = []
        self.frame = 0

    def feed(self, *chunks: bytes) -> list[SipPayload]:
        """Each chunk as the next frame's octets, framed as it arrives."""
        out: list[SipPayload] = []
        for chunk in chunks:
            self.frame += 1
            self.b.append(chunk, self.frame, float(self.frame))
            self.framer = framing.run(self.framer, self.b, out)
        self.packets += out
        return out

    def gap(self, nbytes: int) -> list[SipPayload]:
        out: list[SipPayload] = []
        self.framer = self.framer.gap(self.b, nbytes, out)
        self.packets += out
        return out

    def end(self) -> list[SipPayload]:
        out: list[SipPayload] = []
        self.framer.end(self.b, out)
        self.packets += out
        assert not self.b.data and not self.b.segs  # every octet accounted for
        return out

    @property
    def payloads(self) -> list[bytes]:
        return [p.payload for p in self.packets]

    def kind(self) -> type[Framer]:
        """The class of the framer the stream is with now."""
        return type(self.framer)

    def rtp(self) -> tuple[int, int, int, bool]:
        """What the RTP framer counted (RTP, RTCP, other) and whether it is hunting."""
        f = self.framer
        assert isinstance(f, RtpFramer)
        return f.rtp, f.rtcp, f.others, f.hunting


def pieces(data: bytes, *cuts: int) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[i:j] for i, j in itertools.pairwise(bounds)]


# --- the sniffer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (INVITE, SipFramer),
        (b"junk\r\n" + INVITE, SipFramer),
        (hep3(INVITE), HepFramer),
        (UPGRADE, WebSocketFramer),
        (bytes.fromhex("1603010005") + b"hello", Opaque),
        (rtp(1) + rtp(2) + rtp(3), RtpFramer),
        (RTCP + rtp(1) + rtp(2), RtpFramer),
    ],
)
def test_sniffer_hands_the_stream_to_its_kind(first: bytes, kind: type[Framer]) -> None:
    h = Harness()
    h.feed(first)
    assert h.kind() is kind


def test_sniffer_waits_only_while_the_answer_may_change() -> None:
    h = Harness()
    h.feed(b"HEP")  # may begin HEP3
    assert h.kind() is Sniffer and len(h.b) == 3
    h = Harness()
    h.feed(rtp(1) + rtp(2))  # two RFC 4571 frames: not yet a run
    assert h.kind() is Sniffer
    h.feed(rtp(3)[:6])
    assert h.kind() is RtpFramer
    h = Harness()
    h.feed(b"\x00\x0c\x00")  # a low first octet, but no RTP version 2 after the length
    assert h.kind() is SipFramer
    h = Harness()
    h.feed(b"\x00\xac")  # 1 or 2 octets alone are no evidence: framed as SIP, as they always were
    assert h.kind() is SipFramer


def test_sniffer_decides_at_a_hole_or_the_end_with_what_is_there() -> None:
    h = Harness()
    h.feed(rtp(1) + rtp(2))
    h.gap(100)
    assert h.kind() is SipFramer  # two frames are no run: other TCP, as before
    h.end()
    assert h.stats.non_sip == {detect.OTHER_TCP: 1}
    h = Harness()
    h.feed(b"HEP")  # what may have begun HEP3 is framed as SIP once no more comes
    h.end()
    assert h.stats.non_sip == {detect.OTHER_TCP: 1}


def test_sniffer_records_tls_conversations() -> None:
    h = Harness()
    h.feed(bytes.fromhex("160303"), b"encrypted")
    assert h.kind() is Opaque and not h.framer.decodes
    assert h.ctx.tls_conversations == {(A, B)}
    h.end()
    assert h.stats.non_sip == {detect.TLS: 2}


def test_sip_hep_and_websocket_streams_are_never_taken_for_rtp() -> None:
    for start in (INVITE, OK, b"\r\n\r\n" + INVITE, hep3(OK), UPGRADE, b"HTTP/1.1 101 Switching"):
        for n in range(1, len(start) + 1):
            h = Harness()
            h.feed(start[:n])
            assert h.kind() is not RtpFramer


# --- SIP (RFC 3261 §18.3) -------------------------------------------------------------------------


def test_sip_framer_whole_and_byte_by_byte() -> None:
    stream = INVITE + b"\r\n\r\n" + OK
    whole = Harness(SipFramer)
    whole.feed(stream)
    assert whole.payloads == [INVITE, OK] and whole.packets[0].transport is Transport.TCP
    assert whole.packets[0].file == "lit" and (whole.packets[0].src, whole.packets[0].dst) == (A, B)
    single = Harness(SipFramer)
    single.feed(*(stream[i : i + 1] for i in range(len(stream))))
    assert single.payloads == [INVITE, OK]
    assert single.packets[0].frames == tuple(range(1, len(INVITE) + 1))
    assert single.packets[1].frame == len(stream)
    single.end()
    assert single.stats.non_sip == {detect.SIP_KEEPALIVE: 4} and single.warnings == []


def test_sip_framer_gap_hands_up_the_message_in_progress() -> None:
    h = Harness(SipFramer)
    h.feed(INVITE, OK[:20])
    (p,) = h.gap(10)
    assert p.payload == OK[:20] and p.truncated and p.frame == 2
    ((message, frame),) = h.warnings
    assert frame == 2 and "10 octets missing" in message
    h.feed(OK[30:], OK)  # the rest of the cut message, then one in step again
    assert h.payloads == [INVITE, OK[:20], OK]
    h.end()
    assert h.stats.non_sip == {detect.OTHER_TCP: 1}


def test_sip_framer_end_hands_up_a_message_cut_short() -> None:
    h = Harness(SipFramer)
    h.feed(INVITE[:-2])
    (p,) = h.end()
    assert p.payload == INVITE[:-2] and p.truncated


def test_sip_framer_resynchronises_on_junk_and_warns_once() -> None:
    h = Harness(SipFramer)
    h.feed(INVITE, b"not a start line\r\n", OK, b"more junk\r\n", INVITE)
    assert h.payloads == [INVITE, OK, INVITE]
    ((message, frame),) = h.warnings
    assert frame == 2 and "data that is not a SIP start line; resynchronising" in message


def test_sip_framer_hands_hep3_found_while_hunting_to_the_hep_framer() -> None:
    h = Harness(SipFramer)
    h.feed(hep3(INVITE)[5:] + hep3(OK))  # picked up inside a HEP3 message
    assert h.kind() is HepFramer
    assert h.payloads == [OK] and h.packets[0].transport is Transport.TCP  # the inner transport
    assert h.packets[0].src == Endpoint("198.51.100.1", 5060)


def test_sip_framer_oversized_message() -> None:
    """Too big to wait for: what came is handed up truncated, the rest of the body dropped."""
    big = INVITE.replace(b"Content-Length: 4", b"Content-Length: 304") + b"x" * 300
    h = Harness(SipFramer, max_message=len(INVITE))
    h.feed(big[:200], big[200:], OK)
    assert h.payloads == [big[:200], OK]
    assert h.packets[0].truncated and not h.packets[1].truncated
    ((message, frame),) = h.warnings
    assert frame == 1 and f"SIP message of {len(big)} octets exceeds {len(INVITE)}" in message


# --- HEP3 ---------------------------------------------------------------------------------------


def test_hep_framer_frames_by_length_with_inner_addresses_and_time() -> None:
    stream = hep3(INVITE) + hep3(OK)
    h = Harness(HepFramer)
    h.feed(*pieces(stream, 3, 40, len(hep3(INVITE)) + 1))
    assert h.payloads == [INVITE, OK]
    p = h.packets[0]
    assert (p.src, p.dst) == (Endpoint("198.51.100.1", 5060), Endpoint("198.51.100.2", 5061))
    assert p.timestamp == pytest.approx(1_700_000_000.000007) and p.frames == (1, 2, 3)


def test_hep_framer_gap_and_resync() -> None:
    h = Harness(HepFramer)
    message = hep3(INVITE)
    h.feed(message[:120])  # the SIP payload is the last chunk's value
    (p,) = h.gap(20)
    assert p.truncated and p.payload == INVITE[: 120 - (len(message) - len(INVITE))]
    assert "the HEP3 message in progress is handed up truncated" in h.warnings[0][0]
    h.feed(message[140:], b"junk", hep3(OK))
    assert h.payloads[-1] == OK and len(h.warnings) == 1  # hunting after the hole: no junk warning
    h.end()


# --- WebSocket (RFC 6455, RFC 7118) -----------------------------------------------------------------


def test_websocket_framer_handshake_frames_and_continuations() -> None:
    h = Harness(WebSocketFramer)
    split = ws(INVITE[:30], fin=False) + ws(b"", opcode=9) + ws(INVITE[30:], opcode=0)
    h.feed(UPGRADE[:10], UPGRADE[10:] + ws(OK)[:3], ws(OK)[3:], split)
    assert h.payloads == [OK, INVITE] and {p.transport for p in h.packets} == {Transport.WS}
    assert h.packets[1].frames == (4,)
    h.end()
    assert h.stats.non_sip == {detect.WEBSOCKET: 1}  # the frame carrying only the handshake


def test_websocket_framer_gives_the_stream_up_after_a_hole() -> None:
    h = Harness(WebSocketFramer)
    h.feed(UPGRADE, ws(INVITE)[:40])
    (p,) = h.gap(5)
    assert p.truncated and p.payload == INVITE[: 40 - 8]  # a 16-bit length and the mask
    assert h.kind() is Opaque and h.framer.kind == detect.WEBSOCKET
    assert "the rest of the stream is not decoded" in h.warnings[0][0]


def test_websocket_framer_other_subprotocol() -> None:
    h = Harness(WebSocketFramer)
    h.feed(UPGRADE.replace(b": sip", b": chat") + ws(INVITE))
    assert h.packets == [] and h.kind() is Opaque
    assert h.stats.non_sip == {detect.WEBSOCKET: 1}


# --- RTP over TCP (RFC 4571) ----------------------------------------------------------------------


def test_rtp_framer_counts_what_it_frames() -> None:
    h = Harness(RtpFramer)
    stream = rtp(1) + RTCP + rtp(2) + rtp(3)
    h.feed(*(stream[i : i + 7] for i in range(0, len(stream), 7)))
    assert h.rtp() == (3, 1, 0, False)
    h.end()
    assert h.packets == [] and h.warnings == []
    assert h.stats.non_sip == {framing.RTP_OVER_TCP: -(-len(stream) // 7)}


def test_rtp_framer_hole_inside_a_frame_keeps_step() -> None:
    h = Harness(RtpFramer)
    h.feed(rtp(1) + rtp(2)[:50])
    h.gap(100)  # the rest of rtp(2) is 124 octets: the hole ends inside it
    h.feed(rtp(2)[150:] + rtp(3))
    assert h.rtp() == (2, 0, 0, False)
    assert h.warnings == []


def test_rtp_framer_hole_across_frames_resynchronises() -> None:
    h = Harness(RtpFramer)
    h.feed(rtp(1) + rtp(2)[:50])
    h.gap(len(rtp(2)) - 50 + 30)  # the rest of rtp(2) and 30 octets of rtp(3)
    h.feed(rtp(3)[30:] + rtp(4) + rtp(5) + rtp(6))
    assert h.rtp() == (4, 0, 0, False)  # rtp(1), then rtp(4) to rtp(6) once back in step
    assert h.warnings == []


def test_rtp_framer_junk_warns_once_and_resynchronises() -> None:
    h = Harness(RtpFramer)
    h.feed(rtp(1), b"\x00\x10this is no RTP!!", rtp(2) + rtp(3) + rtp(4), b"\x00\x03xyz", rtp(5) + rtp(6))
    assert h.rtp() == (4, 0, 0, True)  # rtp(5), rtp(6): a run still arriving
    h.feed(rtp(7))
    assert h.rtp() == (7, 0, 0, False)  # nothing lost but the junk
    ((message, frame),) = h.warnings
    assert frame == 2 and "not an RTP, RTCP or STUN packet" in message


def test_rtp_framer_accepts_stun_in_step() -> None:
    stun = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(12)  # binding request (RFC 8489 §5)
    h = Harness(RtpFramer)
    h.feed(rtp(1) + struct.pack("!H", len(stun)) + stun + rtp(2))
    assert h.rtp() == (2, 0, 1, False)


# --- every framer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "stream"),
    [
        (SipFramer, INVITE + b"junk" + OK),
        (HepFramer, hep3(INVITE) + b"junk" + hep3(OK)),
        (WebSocketFramer, UPGRADE + ws(INVITE) + ws(b"hello") + ws(OK)),
        (RtpFramer, rtp(1) + RTCP + rtp(2)),
        (Sniffer, INVITE + OK),
    ],
)
@pytest.mark.parametrize("cut", [1, 5, 33, 1000])
def test_every_frame_is_accounted_for_once(kind: type[Framer], stream: bytes, cut: int) -> None:
    """Each frame ends up in a packet or in exactly one non-SIP count, with a hole or without."""
    for hole in (False, True):
        h = Harness(kind)
        chunks = [stream[i : i + cut] for i in range(0, len(stream), cut)]
        h.feed(*chunks[: len(chunks) // 2])
        if hole:
            h.gap(3)
        h.feed(*chunks[len(chunks) // 2 :])
        h.end()
        in_packets = {f for p in h.packets for f in p.frames}
        assert in_packets | set(range(1, h.frame + 1)) == set(range(1, h.frame + 1))
        assert len(in_packets) + h.stats.non_sip_packets >= h.frame
        if kind is not WebSocketFramer:  # a non-SIP WebSocket message counts its frames too
            assert len(in_packets) + h.stats.non_sip_packets == h.frame
