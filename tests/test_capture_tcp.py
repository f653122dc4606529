"""TCP stream reassembly and SIP framing (RFC 3261 §18.3), sans-I/O and through captures."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP

from sipflow.capture.tcp import ACK, FIN, RST, SYN, TcpReassembler, content_length
from sipflow.capture.types import CaptureStats, SipPayload, Transport
from tests.capture_util import ether, pcap_bytes, read_all, records, sip_request, sip_response
from tests.conftest import run_tshark

A = bytes([10, 0, 0, 1])
B = bytes([10, 0, 0, 2])
INV = sip_request("INVITE", body=b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n")
ACK_REQ = sip_request("ACK", cseq=1)
BYE = sip_request("BYE", cseq=2)
OK = sip_response(200)


class Flow:
    """Drives a TcpReassembler with one client (A:5060) → server (B:5061) connection."""

    def __init__(self, isn: int = 1000, **kwargs: int | float) -> None:
        self.stats = CaptureStats()
        self.warnings: list[tuple[str, int | None]] = []
        self.tcp = TcpReassembler(
            stats=self.stats, warn=lambda m, f: self.warnings.append((m, f)), file="f", **kwargs
        )  # type: ignore[arg-type]
        self.frame = 0
        self.isn = isn
        self.packets: list[SipPayload] = []

    def send(
        self,
        offset: int,
        data: bytes = b"",
        flags: int = ACK,
        *,
        reverse: bool = False,
        ack: int = 0,
        missing: int = 0,
        ts: float | None = None,
    ) -> list[SipPayload]:
        """A segment whose first octet is ``offset`` octets into the stream (0 = first data octet)."""
        self.frame += 1
        src, sport, dst, dport = (B, 5061, A, 5060) if reverse else (A, 5060, B, 5061)
        seq = (self.isn + 1 + offset) & 0xFFFFFFFF
        if flags & SYN:
            seq = self.isn
        t = float(self.frame) if ts is None else ts
        out = self.tcp.segment(
            self.frame, t, src, sport, dst, dport, seq, ack & 0xFFFFFFFF, flags, data, missing
        )
        self.packets += out
        return out

    def syn(self) -> None:
        self.send(0, flags=SYN)

    def finish(self) -> list[SipPayload]:
        out = self.tcp.finish()
        self.packets += out
        return out

    @property
    def payloads(self) -> list[bytes]:
        return [p.payload for p in self.packets]


def test_one_message_per_segment() -> None:
    f = Flow()
    f.syn()
    (p,) = f.send(0, INV)
    assert p.payload == INV and p.frames == (2,) and p.frame == 2 and p.timestamp == 2.0
    assert p.transport is Transport.TCP and not p.truncated and p.file == "f"
    assert (str(p.src), str(p.dst)) == ("10.0.0.1:5060", "10.0.0.2:5061")
    f.send(len(INV), BYE)
    assert f.payloads == [INV, BYE]
    assert f.stats.non_sip == {"TCP control": 1}


def test_two_messages_in_one_segment_and_one_across_three() -> None:
    f = Flow()
    f.syn()
    out = f.send(0, INV + ACK_REQ)
    assert [p.payload for p in out] == [INV, ACK_REQ] and [p.frames for p in out] == [(2,), (2,)]
    start = len(INV + ACK_REQ)
    a, b = 30, len(BYE) - 10
    assert f.send(start, BYE[:a]) == []
    assert f.send(start + a, BYE[a:b]) == []
    (p,) = f.send(start + b, BYE[b:])
    assert p.payload == BYE and p.frames == (3, 4, 5) and p.frame == 5 and p.timestamp == 5.0


def test_segment_ending_one_message_and_starting_the_next() -> None:
    f = Flow()
    stream = INV + BYE
    cut1, cut2 = len(INV) - 5, len(INV) + 20
    f.send(0, stream[:cut1])
    f.send(cut1, stream[cut1:cut2])
    f.send(cut2, stream[cut2:])
    assert f.payloads == [INV, BYE]
    assert [p.frames for p in f.packets] == [(1, 2), (2, 3)]


def test_out_of_order_and_retransmitted_segments() -> None:
    f = Flow()
    f.syn()
    a, b = 100, 200
    f.send(b, INV[b:])  # third part first
    f.send(0, INV[:a])
    f.send(0, INV[:a])  # exact retransmission
    (p,) = f.send(a - 50, INV[a - 50 : b])  # overlaps what was seen, fills the hole
    assert p.payload == INV
    assert p.frames == (2, 3, 5) and p.frame == 5
    f.send(0, INV)  # the whole message again, much later
    f.send(len(INV), BYE)
    assert f.payloads == [INV, BYE]
    assert f.stats.non_sip == {"TCP control": 1, "TCP retransmission": 2}


def test_out_of_order_duplicates_are_dropped() -> None:
    f = Flow()
    f.send(0, INV[:10])
    f.send(20, INV[20:])
    f.send(20, INV[20:])  # the same out-of-order segment twice
    f.send(10, INV[10:20])
    assert f.payloads == [INV]
    assert f.stats.non_sip == {"TCP retransmission": 1}


def test_keepalives_are_skipped() -> None:
    f = Flow()
    f.send(0, b"\r\n\r\n")  # RFC 5626 double-CRLF ping alone in a segment
    f.send(4, INV + b"\r\n\r\n" + BYE[:10])
    f.send(4 + len(INV) + 4 + 10, BYE[10:] + b"\r\n")
    assert f.payloads == [INV, BYE]
    assert f.stats.non_sip == {"SIP keep-alive": 1}


def test_mid_stream_pickup_resynchronises() -> None:
    f = Flow()
    # The capture starts inside INV's body: its tail, then BYE, then OK.
    stream = INV[-20:] + BYE + OK
    f.send(0, stream[:50])
    f.send(50, stream[50:])
    assert f.payloads == [BYE, OK]
    assert f.warnings == []


def test_mid_stream_pickup_after_a_body_without_final_crlf() -> None:
    f = Flow()
    # The capture starts inside a body that has no final CRLF: the start lines that follow
    # are glued to it. Stray octets after a framed message are skipped the same way.
    f.send(0, b'{"json": "body"}' + BYE + b"<xml/>" + OK + b"}}" + ACK_REQ)
    assert f.payloads == [BYE, OK, ACK_REQ]
    assert len(f.warnings) == 1  # one resynchronisation warning per stream


def test_mid_stream_pickup_inside_a_header() -> None:
    f = Flow()
    f.send(0, INV[40:] + BYE)
    assert f.payloads == [BYE]


def test_sequence_number_wrap_around() -> None:
    f = Flow(isn=0xFFFFFFFF - 30)
    f.syn()
    f.send(0, INV[:20])
    f.send(60, INV[60:])  # past the wrap, out of order
    f.send(20, INV[20:60])  # crosses 2^32
    f.send(len(INV), BYE)
    assert f.payloads == [INV, BYE]


@pytest.mark.parametrize("name", ["Content-Length", "content-length", "CONTENT-LENGTH", "l", "L"])
def test_content_length_forms(name: str) -> None:
    body = b"hello body"
    msg = sip_request("MESSAGE", body=body, content_length=name)
    f = Flow()
    f.send(0, msg + BYE)
    assert f.payloads == [msg, BYE]


def test_content_length_helper() -> None:
    msg = b"INVITE sip:a SIP/2.0\r\nX-L: 3\r\nl  :\r\n  42\r\n\r\n"
    assert content_length(msg, msg.index(b"\r\n\r\n")) == 42
    assert content_length(b"SIP/2.0 200 OK\r\n\r\n", 14) is None


def test_missing_content_length_means_empty_body() -> None:
    no_cl = b"OPTIONS sip:b SIP/2.0\r\nCall-ID: x\r\n\r\n"
    f = Flow()
    f.send(0, no_cl + BYE)
    assert f.payloads == [no_cl, BYE]


def test_bare_lf_messages() -> None:
    lf = b"MESSAGE sip:b SIP/2.0\nCall-ID: x\nl: 5\n\nhello"
    f = Flow()
    f.send(0, lf + BYE)
    assert f.payloads == [lf, BYE]


def test_garbage_between_messages_resynchronises_with_a_warning() -> None:
    f = Flow()
    f.send(0, INV + b"\x16\x03\x01garbage\r\nmore garbage\r\n" + BYE)
    assert f.payloads == [INV, BYE]
    assert len(f.warnings) == 1 and "resynchronising" in f.warnings[0][0] and f.warnings[0][1] == 1


def test_message_cut_by_the_end_of_the_capture_is_truncated() -> None:
    f = Flow()
    f.send(0, INV + BYE[:40])
    assert f.payloads == [INV]
    (p,) = f.finish()
    assert p.payload == BYE[:40] and p.truncated and p.frames == (1,)


def test_snaplen_cut_segment() -> None:
    f = Flow()
    f.send(0, INV[:100], missing=len(INV) - 100)  # the capture kept 100 octets of the segment
    f.send(len(INV), BYE)
    assert f.payloads == [INV[:100], BYE]
    assert [p.truncated for p in f.packets] == [True, False]


def test_hole_acknowledged_by_the_peer_is_skipped() -> None:
    f = Flow()
    f.send(0, INV[:100])
    f.send(200, INV[200:] + BYE)  # 100..200 never captured
    assert f.packets == []
    f.send(0, b"", ACK, reverse=True, ack=f.isn + 1 + len(INV) + len(BYE))  # the server got it all
    assert f.payloads == [INV[:100], BYE]
    assert [p.truncated for p in f.packets] == [True, False]
    (warning,) = f.warnings
    assert "100 octets missing from the capture" in warning[0] and warning[1] == 1


def test_hole_is_skipped_after_the_gap_timeout() -> None:
    f = Flow(gap_timeout=2.0)
    f.send(0, INV[:100], ts=10.0)
    f.send(200, INV[200:], ts=10.5)
    assert f.packets == []
    f.send(len(INV), BYE, ts=13.0)  # the hole is now older than 2 s
    assert f.payloads == [INV[:100], BYE]


def test_hole_is_skipped_at_the_end_of_capture() -> None:
    f = Flow()
    f.send(0, INV[:100])
    f.send(200, INV[200:] + BYE)
    f.finish()
    assert f.payloads == [INV[:100], BYE]


def test_rst_flushes_and_fin_closes() -> None:
    f = Flow()
    f.send(0, INV[:50])
    f.send(0, b"", RST | ACK, reverse=True)
    assert f.payloads == [INV[:50]] and f.packets[0].truncated
    g = Flow()
    g.syn()
    g.send(0, INV, FIN | ACK)
    g.send(0, INV, FIN | ACK)  # retransmitted after the close: not a second message
    assert g.payloads == [INV]
    assert g.stats.non_sip == {"TCP control": 1, "TCP retransmission": 1}
    g.isn = 5_000_000
    g.syn()  # a new connection on the same 4-tuple
    g.send(0, BYE)
    assert g.payloads == [INV, BYE]


def test_both_directions_are_independent() -> None:
    f = Flow()
    f.send(0, INV[:30])
    f.send(0, OK[:10], reverse=True)
    f.send(30, INV[30:])
    f.send(10, OK[10:], reverse=True)
    assert f.payloads == [INV, OK]
    assert str(f.packets[1].src) == "10.0.0.2:5061"


def test_non_sip_stream_buffer_is_bounded() -> None:
    f = Flow()
    f.send(0, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    chunk = b"binary\x00data" * 100  # no newline: the worst case for the line buffer
    for i in range(2000):
        f.send(30 + i * len(chunk), chunk, reverse=False)
        stream = next(iter(f.tcp._streams.values()))
        assert len(stream.buf) <= 16384
    assert f.packets == []
    assert f.finish() == []
    assert f.stats.non_sip == {"other TCP": 2001}


def test_tls_stream_is_counted_and_ignored() -> None:
    f = Flow()
    record = b"\x17\x03\x03\x00\x20" + b"\xaa" * 32
    f.send(0, record)
    f.send(len(record), b"INVITE sip:x SIP/2.0\r\n\r\n")  # not looked at: the stream is TLS
    assert f.packets == [] and f.stats.non_sip == {"TLS": 2}


def test_oversized_message_is_handed_up_truncated() -> None:
    f = Flow(max_message=4096)
    huge = sip_request("MESSAGE", body=b"x" * 10_000)
    f.send(0, huge[:3000])
    f.send(3000, huge[3000:] + BYE)
    assert f.payloads[0] == huge[:3000] and f.packets[0].truncated
    assert f.payloads[1:] == [BYE]
    assert any("exceeds" in m for m, _ in f.warnings)


def test_stream_count_is_bounded() -> None:
    stats = CaptureStats()
    tcp = TcpReassembler(stats=stats, warn=lambda m, f: None, max_streams=64)
    out = []
    for i in range(1000):
        src = bytes([10, 1, i >> 8, i & 255])
        out += tcp.segment(i, float(i), src, 5060, B, 5060, 1, 0, ACK, INV[:50])
        assert len(tcp) <= 64
    out += tcp.finish()
    assert len(out) == 1000 and all(p.truncated for p in out)


# --- through a capture, checked against tshark -------------------------------------------------


def tcp_capture(path: Path) -> None:
    c, s = ("192.0.2.1", 40000), ("192.0.2.2", 5060)

    def seg(
        src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int, flags: str, data: bytes = b""
    ) -> bytes:
        return bytes(
            ether()
            / IP(src=src[0], dst=dst[0])
            / TCP(sport=src[1], dport=dst[1], seq=seq, ack=ack, flags=flags)
            / data
        )

    ci, si = 1000, 9000
    frames = [seg(c, s, ci, 0, "S"), seg(s, c, si, ci + 1, "SA"), seg(c, s, ci + 1, si + 1, "A")]
    cs = ci + 1
    big = INV
    a, b = 120, 260
    frames += [
        seg(c, s, cs, si + 1, "A", big[:a]),
        seg(c, s, cs + a, si + 1, "A", big[a:b]),
        seg(c, s, cs + b, si + 1, "PA", big[b:]),
    ]
    cs += len(big)
    frames.append(seg(s, c, si + 1, cs, "PA", sip_response(100, "Trying") + OK))  # two in one segment
    ss = si + 1 + len(sip_response(100, "Trying") + OK)
    frames.append(seg(c, s, cs, ss, "PA", ACK_REQ))
    frames.append(seg(c, s, cs, ss, "PA", ACK_REQ))  # retransmission
    cs += len(ACK_REQ)
    frames.append(seg(c, s, cs, ss, "PA", b"\r\n\r\n"))  # keep-alive
    cs += 4
    frames.append(seg(c, s, cs, ss, "PA", BYE))
    cs += len(BYE)
    frames.append(seg(s, c, ss, cs, "PA", OK))
    frames.append(seg(c, s, cs, ss + len(OK), "FA"))
    path.write_bytes(pcap_bytes(records(frames)))


def test_tcp_capture_matches_tshark(tmp_path: Path, tshark: str) -> None:
    path = tmp_path / "tcp.pcap"
    tcp_capture(path)
    packets, r = read_all(path)
    assert [p.payload for p in packets] == [INV, sip_response(100, "Trying"), OK, ACK_REQ, BYE, OK]
    assert [p.frames for p in packets] == [(4, 5, 6), (7,), (7,), (8,), (11,), (12,)]
    assert r.stats.non_sip == {"TCP control": 4, "TCP retransmission": 1, "SIP keep-alive": 1}
    out = run_tshark(tshark, ["-r", str(path), "-Y", "sip", "-T", "fields", "-e", "frame.number"])
    assert sorted({p.frame for p in packets}) == [int(x) for x in out.split()]
