"""RTP and RTCP over TCP (RFC 4571) through the TCP reassembler, from literal bytes.

RFC 4571 §2: each RTP or RTCP packet on the stream follows its 16-bit length (network order).
The streams here are built from literal packets, cut across segments at awkward places (inside a
length prefix, inside an RTP header), with holes; what is framed is counted, never handed up as
SIP, and a SIP stream beside it is untouched.
"""

from __future__ import annotations

import itertools
import struct

from sipflow.capture import detect
from sipflow.capture.framing import RTP_OVER_TCP, RtpFramer, SipFramer
from sipflow.capture.sink import CollectingSink
from sipflow.capture.tcp import ACK, FIN, SYN, TcpReassembler
from sipflow.capture.types import CaptureStats, Endpoint, SipPayload
from tests.capture_util import decode_frames
from tests.captures import make_superlinear as ms

A = bytes([192, 0, 2, 1])
B = bytes([192, 0, 2, 2])


def rtp(seq: int) -> bytes:
    """One RFC 4571 frame: length 172, then RTP version 2, PCMU (0), SSRC 0x11223344, 160 octets."""
    return (
        b"\x00\xac"  # 172: the RTP packet's length
        + b"\x80\x00"  # V=2, no padding, extension or CSRC; M=0, PT=0 (RFC 3551 PCMU)
        + struct.pack("!HI", seq, 160 * seq)  # sequence number, timestamp
        + b"\x11\x22\x33\x44"  # SSRC
        + b"\xff" * 160  # 20 ms of PCMU silence
    )


SR = (
    b"\x00\x1c"  # 28
    b"\x80\xc8\x00\x06"  # V=2, RC=0, PT=200 sender report, length 6 words (RFC 3550 §6.4.1)
    b"\x11\x22\x33\x44"  # SSRC of sender
    b"\xe8\x00\x00\x00\x00\x00\x00\x00"  # NTP timestamp
    b"\x00\x00\x06\x40"  # RTP timestamp
    b"\x00\x00\x00\x0a\x00\x00\x06\x40"  # packet and octet counts
)

INVITE = (
    b"INVITE sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK9\r\n"
    b"Call-ID: rtp-tcp@192.0.2.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


class Media:
    """One RFC 4571 stream A:40000 -> B:40002, opened with a SYN; segments by stream offset."""

    def __init__(self, **kwargs: float) -> None:
        self.stats = CaptureStats()
        self.warnings: list[tuple[str, int | None]] = []
        self.tcp = TcpReassembler(stats=self.stats, warn=lambda m, f: self.warnings.append((m, f)), **kwargs)  # type: ignore[arg-type]
        self.frame = 0
        self.packets: list[SipPayload] = []
        self.send(-1, b"", SYN)

    def send(self, offset: int, data: bytes, flags: int = ACK, *, missing: int = 0) -> None:
        self.frame += 1
        self.packets += self.tcp.segment(
            self.frame, float(self.frame), A, 40000, B, 40002, 1000 + offset, 0, flags, data, missing
        )

    def stream(self, data: bytes, cuts: list[int], *, skip: frozenset[int] = frozenset()) -> None:
        """``data`` cut at ``cuts``, the pieces whose index is in ``skip`` never captured."""
        bounds = [0, *cuts, len(data)]
        for k, (i, j) in enumerate(itertools.pairwise(bounds)):
            if k not in skip:
                self.send(i, data[i:j])

    def finish(self) -> None:
        self.packets += self.tcp.finish()

    def framer(self) -> RtpFramer:
        (s,) = self.tcp._streams.values()
        assert isinstance(s.framer, RtpFramer)
        return s.framer


PACKETS = [rtp(1), rtp(2), SR, rtp(3), rtp(4), rtp(5), rtp(6), rtp(7)]
STREAM = b"".join(PACKETS)
# Cut inside the first RTP header (3), inside a length prefix (175), inside an RTP header (180:
# 4 octets into rtp(2)'s), right before the SR, inside the SR, and inside rtp(4).
CUTS = [3, 175, 180, 348, 360, 600, 1000]


def test_a_stream_of_rtp_packets_split_across_segments_is_framed_and_counted() -> None:
    m = Media()
    m.stream(STREAM, CUTS)
    f = m.framer()
    assert (f.rtp, f.rtcp, f.others, f.hunting) == (7, 1, 0, False)
    m.send(len(STREAM), b"", FIN | ACK)
    m.finish()
    assert m.packets == [] and m.warnings == []
    # Every data segment counted once, by the stream's kind.
    assert m.stats.non_sip == {RTP_OVER_TCP: len(CUTS) + 1, detect.TCP_CONTROL: 2}


def test_byte_by_byte_gives_the_same_count() -> None:
    """After the 3 octets the sniffer needs as evidence (a length, an RTP version octet)."""
    m = Media()
    m.send(0, STREAM[:3])
    for i in range(3, len(STREAM)):
        m.send(i, STREAM[i : i + 1])
    f = m.framer()
    assert (f.rtp, f.rtcp) == (7, 1)
    m.finish()
    assert m.stats.non_sip == {RTP_OVER_TCP: len(STREAM) - 2, detect.TCP_CONTROL: 1}


def test_a_first_segment_of_one_octet_is_framed_as_always() -> None:
    m = Media()
    m.stream(STREAM, [1])
    m.finish()
    assert m.stats.non_sip == {detect.OTHER_TCP: 2, detect.TCP_CONTROL: 1}


def test_a_hole_inside_one_packet_loses_that_packet_only() -> None:
    """80 octets inside rtp(3) never captured: the hole is skipped at the end of the capture,
    the length in hand keeps the stream in step."""
    start = len(rtp(1) + rtp(2) + SR)
    cuts = [start, start + 20, start + 100]  # the piece start+20..start+100 is lost
    m = Media()
    m.stream(STREAM, cuts, skip=frozenset({2}))
    f = m.framer()
    assert (f.rtp, f.rtcp) == (2, 1)  # what came before the hole
    m.finish()
    assert (f.rtp, f.rtcp, f.hunting) == (6, 1, False) and m.warnings == []
    # rtp(1), rtp(2), SR before the hole; rtp(3) cut by it; rtp(4) to rtp(7) after it.
    assert m.stats.non_sip == {RTP_OVER_TCP: 3, detect.TCP_CONTROL: 1}


def test_a_hole_across_packets_resynchronises_on_a_run() -> None:
    """A snapshot length cut (``missing``) swallows the end of rtp(3) and the start of rtp(4):
    the framer searches for three frames in a row and goes on from rtp(5)."""
    three = len(rtp(1) + rtp(2) + SR)
    four = three + len(rtp(3))
    m = Media()
    m.send(0, STREAM[: three + 50], missing=four - three - 50 + 30)
    m.send(four + 30, STREAM[four + 30 :])
    f = m.framer()
    assert (f.rtp, f.rtcp, f.hunting) == (2 + 3, 1, False)  # rtp(1), rtp(2), SR, then rtp(5) to rtp(7)
    m.finish()
    assert m.warnings == [] and m.stats.non_sip == {RTP_OVER_TCP: 2, detect.TCP_CONTROL: 1}


def test_two_frames_are_not_a_run() -> None:
    """Only a run of RFC 4571 frames is taken for RTP; shorter, the stream is other TCP as always."""
    m = Media()
    m.send(0, rtp(1) + rtp(2))
    m.finish()
    assert m.stats.non_sip == {detect.OTHER_TCP: 1, detect.TCP_CONTROL: 1}


def test_sip_next_to_rtp_over_tcp_is_untouched() -> None:
    m = Media()
    m.stream(STREAM, CUTS)
    m.frame += 1
    out = m.tcp.segment(m.frame, 9.0, A, 5060, B, 5060, 77, 0, ACK, INVITE)
    assert [p.payload for p in out] == [INVITE]
    s = m.tcp._streams[(A, 5060, B, 5060)]
    assert isinstance(s.framer, SipFramer)


def test_rtp_over_tcp_in_a_capture_is_counted_by_kind() -> None:
    frames = [ms.tcp(ms.ISN, flags=SYN, ack=0)]
    seq = ms.ISN + 1
    for piece in (STREAM[:200], STREAM[200:900], STREAM[900:]):
        frames.append(ms.tcp(seq, piece))
        seq += len(piece)
    packets, d = decode_frames(frames)
    assert packets == [] and d.warnings == []
    assert d.stats.non_sip == {RTP_OVER_TCP: 3, detect.TCP_CONTROL: 1}


def test_a_sink_is_handed_each_framed_packet_with_the_frame_that_completed_it() -> None:
    sink = CollectingSink()
    m = Media()
    m.tcp = TcpReassembler(stats=m.stats, warn=lambda t, f: m.warnings.append((t, f)), sink=sink)
    m.frame = 0
    m.send(-1, b"", SYN)
    m.stream(STREAM, CUTS)
    m.finish()
    bounds = [0, *CUTS, len(STREAM)]
    ends = list(itertools.accumulate(len(p) for p in PACKETS))
    # The SYN is frame 1, piece k of the stream frame k + 2.
    completing = [
        2 + next(k for k in range(len(bounds) - 1) if bounds[k] <= e - 1 < bounds[k + 1]) for e in ends
    ]
    kinds = [detect.RTCP if p is SR else detect.RTP for p in PACKETS]
    assert sink.frames == [
        (kind, frame, float(frame), Endpoint("192.0.2.1", 40000), Endpoint("192.0.2.2", 40002), p[2:])
        for kind, frame, p in zip(kinds, completing, PACKETS, strict=True)
    ]
    assert m.stats.non_sip[RTP_OVER_TCP] == len(CUTS) + 1

    # Octet by octet: the same packets, each completed by the frame of its last octet.
    sink = CollectingSink()
    tcp = TcpReassembler(stats=CaptureStats(), warn=lambda t, f: None, sink=sink)
    tcp.segment(1, 1.0, A, 40000, B, 40002, 999, 0, SYN, b"", 0)
    tcp.segment(2, 2.0, A, 40000, B, 40002, 1000, 0, ACK, STREAM[:3], 0)  # what the sniffer needs
    for i in range(3, len(STREAM)):
        tcp.segment(i, float(i), A, 40000, B, 40002, 1000 + i, 0, ACK, STREAM[i : i + 1], 0)
    # Octet i (from 3 on) came in frame i.
    assert [(f[1], f[5]) for f in sink.frames] == [(e - 1, p[2:]) for e, p in zip(ends, PACKETS, strict=True)]
