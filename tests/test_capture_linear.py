"""The capture layer's cost is linear in its input (issue 12), and bounded in memory.

Inputs that a naive reassembler handles in quadratic time or unbounded memory, from
``tests/captures/make_superlinear.py``: duplicate IPv4 fragments of one datagram, TCP segments
far beyond the window, a SIP-over-WebSocket message in thousands of continuation frames; plus
a stream of junk that keeps a start-line search busy. Nothing here is timed: the work is
counted as the Python lines executed in ``sipflow/capture`` (:func:`work`), and the state held
(fragments, ranges, octets, out-of-order segments, message parts) is read back and bounded.
Doubling the input must cost at most 2.1 times the work. Each case also checks that the SIP
inside still comes out exactly once, as it should.
"""

from __future__ import annotations

import random
import struct
import sys
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import sipflow.capture
from sipflow.capture import detect
from sipflow.capture.decode import Decoder
from sipflow.capture.framing import WebSocketFramer
from sipflow.capture.ip import MAX_FRAGMENTS, FragmentReassembler
from sipflow.capture.tcp import MAX_LINE, TcpReassembler
from sipflow.capture.types import CaptureStats, SipPayload, Transport
from tests.capture_util import decode_frames, read_all
from tests.captures import make_superlinear as ms

CAPTURE_DIR = str(Path(sipflow.capture.__file__).resolve().parent)


def work(fn: Callable[[], object]) -> int:
    """Python lines executed in ``sipflow/capture`` while ``fn`` runs (the work it does there)."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(CAPTURE_DIR) else None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return count


def assert_linear(cost: Callable[[int], int], n: int) -> None:
    """Twice the input costs at most 2.1 times the work (four times: 4.2 times)."""
    one, two, four = cost(n), cost(2 * n), cost(4 * n)
    assert two <= 2.1 * one and four <= 2.1 * two, (one, two, four)


def feed(frames: Iterable[bytes], decoder: Decoder) -> list[SipPayload]:
    """Frames numbered from 1, 1 ms apart, then the end of the capture."""
    out: list[SipPayload] = []
    for i, frame in enumerate(frames, start=1):
        out += decoder.feed(i, 1_700_000_000 + i / 1000, 1, frame, len(frame))
    return out + decoder.finish()


# --- IPv4 fragments ---------------------------------------------------------------------------------


def test_duplicate_fragments_cost_linear_work_and_hold_one_range() -> None:
    """Duplicates of the first and last fragment of a datagram whose middle is missing: each
    one used to re-sort and re-scan every piece held (quadratic)."""
    first, middle, last = ms.v4_fragments(ms.udp_datagram(ms.invite()))
    held: list[tuple[int, int, int]] = []

    def run(n: int) -> int:
        r = FragmentReassembler(max_fragments=10 * n)

        def go() -> None:
            for i in range(n):
                off, piece = (0, first[34:]) if i % 2 == 0 else (2960, last[34:])
                done, dropped = r.add("k", off, i % 2 == 0, piece, i + 1, 0.0)
                assert done is None and dropped == []
            pending = r._pending["k"]
            held.append((len(pending.starts), pending.size, r.pending_bytes))

        cost = work(go)
        done, _ = r.add("k", 1480, True, middle[34:], n + 1, 0.0)
        assert done is not None and done.payload == ms.udp_datagram(ms.invite()) and not done.overlapping
        return cost

    assert_linear(run, 400)
    datagram = len(ms.udp_datagram(ms.invite()))
    assert all(ranges == 2 and size == pending == datagram for ranges, size, pending in held), held


def test_duplicated_fragments_of_a_sip_datagram_give_it_once() -> None:
    frags = ms.v4_fragments(ms.udp_datagram(ms.invite()), size=512)
    order = frags * 3
    random.Random(12).shuffle(order)
    packets, d = decode_frames(order)
    assert [p.payload for p in packets] == [ms.invite()]
    assert packets[0].transport is Transport.UDP and not packets[0].truncated
    # The datagram completes as soon as every octet is there; later copies start a new datagram
    # that never completes, reported once at the end of the capture.
    assert len(d.warnings) <= 1 and all("capture ended" in w.message for w in d.warnings)


def test_too_many_fragments_drop_the_datagram_with_one_warning() -> None:
    n = MAX_FRAGMENTS + 200
    packets, d = decode_frames(ms.duplicate_fragments(n))
    assert packets == []
    assert d.stats.non_sip == {detect.IP_FRAGMENT: n}  # every frame counted once
    (w,) = d.warnings
    assert w.frame == MAX_FRAGMENTS + 1
    assert f"more than {MAX_FRAGMENTS} fragments" in w.message and "frames 1, 2, 3" in w.message


def test_fragment_bounds_hold_as_the_flood_grows() -> None:
    r = FragmentReassembler(max_fragments=64, max_bytes=1 << 16)
    first, _, last = ms.v4_fragments(ms.udp_datagram(ms.invite()))
    for i in range(5000):
        done, dropped = r.add("k", 0, True, first[34:], i + 1, i / 1000)
        assert done is None
        assert [d.silent for d in dropped] == ([False] if i == 64 else [True] if i > 64 else [])
        assert r.pending_bytes <= 1 << 16 and len(r) <= 1
    # Another datagram still reassembles beside the dropped one; the dropped one is forgotten
    # once its timeout has passed, and the same key may then be used again.
    assert r.add("other", 0, True, b"x" * 8, 1, 5.0) == (None, [])
    assert r.add("other", 8, False, b"y" * 8, 2, 5.0)[0] is not None
    assert r.add("k", 0, True, b"z" * 8, 9, 40.0) == (None, [])
    assert r.add("k", 8, False, last[34:42], 10, 40.0)[0] is not None


def test_overlaps_are_still_found_with_ranges() -> None:
    r = FragmentReassembler()
    r.add("k", 16, False, b"CCCCCCCC", 1, 0.0)
    r.add("k", 0, True, b"AAAAAAAA", 2, 0.0)
    r.add("k", 4, True, b"AAAABBBB", 3, 0.0)  # same octets over A, new ones in the hole
    pending = r._pending["k"]
    assert (pending.starts, pending.ends) == ([0, 16], [12, 24]) and not pending.overlapping
    done, _ = r.add("k", 8, True, b"xxxxbbbb", 4, 0.0)  # differs over 8-12: first copy kept
    assert done is not None and done.payload == b"AAAAAAAABBBBbbbbCCCCCCCC" and done.overlapping


# --- TCP ------------------------------------------------------------------------------------------


def tcp_packets(frames: Iterable[bytes]) -> tuple[list[SipPayload], Decoder]:
    d = Decoder(file="t")
    return feed(frames, d), d


class Tcp:
    """A TcpReassembler fed the Ethernet/IPv4/TCP frames of make_superlinear, 1 ms apart."""

    def __init__(self, **kwargs: int) -> None:
        self.stats = CaptureStats()
        self.warnings: list[tuple[str, int | None]] = []
        self.r = TcpReassembler(stats=self.stats, warn=lambda m, f: self.warnings.append((m, f)), **kwargs)
        self.frame = 0

    def feed(
        self, frames: Iterable[bytes], check: Callable[[TcpReassembler], None] | None = None
    ) -> list[SipPayload]:
        out: list[SipPayload] = []
        for f in frames:
            self.frame += 1
            sport, dport, seq, ack = struct.unpack_from("!HHII", f, 34)
            src, dst = f[26:30], f[30:34]
            out += self.r.segment(
                self.frame, self.frame / 1000, src, sport, dst, dport, seq, ack, f[47], f[54:]
            )
            if check is not None:
                check(self.r)
        return out + self.r.finish()


def test_segments_far_out_of_window_cost_linear_work_and_leave_the_stream_alone() -> None:
    message = ms.invite(transport="TCP")

    def bounded(r: TcpReassembler) -> None:
        for s in r._streams.values():
            assert not s.ooo and not s.ooo_heap and len(s.buf) <= len(message)

    def run(n: int) -> int:
        t = Tcp()
        out: list[SipPayload] = []
        cost = work(lambda: out.extend(t.feed(ms.tcp_far_out_of_window(n, message), bounded)))
        assert [p.payload for p in out] == [message] and not out[0].truncated
        assert t.stats.non_sip == {detect.OTHER_TCP: n, detect.TCP_CONTROL: 1}
        (w,) = t.warnings  # one warning for the stream, naming the first segment dropped
        assert w[1] == 2 and "beyond its 1048576-octet window; dropped" in w[0]
        return cost

    assert_linear(run, 300)


def test_out_of_order_store_stays_bounded() -> None:
    """Junk inside the window fills the store to its bounds, never beyond; a hole is then
    declared lost (once per hole) and the stream goes on."""
    t = Tcp(max_out_of_order_segments=32)
    rng = random.Random(3)
    frames = [ms.tcp(ms.ISN, flags=0x02, ack=0)]
    frames += [ms.tcp(ms.ISN + 1 + rng.randrange(1, 1 << 19), b"j" * 100) for _ in range(3000)]

    def bounded(r: TcpReassembler) -> None:
        (s,) = r._streams.values()
        assert len(s.ooo) <= 32 and s.ooo_bytes <= 32 * 100 and len(s.ooo_heap) <= 32
        assert len(s.buf) <= MAX_LINE + 100

    assert t.feed(frames, bounded) == []


def test_resynchronised_stream_after_a_loss_longer_than_the_window() -> None:
    """Two segments in a row beyond the window: the capture lost more than it, the stream goes
    on there (only the first of them is lost)."""
    m1, m2, m3 = (ms.invite(transport="TCP", call_id=f"c{i}") for i in range(3))
    far = 5 << 20
    frames = [
        ms.tcp(ms.ISN, flags=0x02, ack=0),
        ms.tcp(ms.ISN + 1, m1),
        ms.tcp(ms.ISN + 1 + far, m2),
        ms.tcp(ms.ISN + 1 + far + len(m2), m3),
    ]
    packets, d = tcp_packets(frames)
    assert [p.payload for p in packets] == [m1, m3]
    assert d.stats.non_sip == {detect.OTHER_TCP: 1, detect.TCP_CONTROL: 1}


def test_junk_that_keeps_the_start_line_search_busy_costs_each_octet_once() -> None:
    """In-order junk full of ``SIP/2.0`` and no line feed: every segment used to search the
    16 KiB kept of the unfinished line again (thousands of candidates each time)."""
    junk = b"SIP/2.0 " * 12  # 96 octets, 12 candidates, no line feed
    message = ms.invite(transport="TCP")

    def frames(n: int) -> list[bytes]:
        segs = [junk] * n + [b"\r\n", message]
        out, seq = [ms.tcp(ms.ISN, flags=0x02, ack=0)], ms.ISN + 1
        for seg in segs:
            out.append(ms.tcp(seq, seg))
            seq += len(seg)
        return out

    def run(n: int) -> int:
        got: list[SipPayload] = []
        cost = work(lambda: got.extend(tcp_packets(frames(n))[0]))
        assert [p.payload for p in got] == [message]
        assert cost < 60 * 12 * n, cost  # a bounded number of lines per candidate in the input
        return cost

    assert_linear(run, 400)  # 400 segments: 38 KiB, more than the 16 KiB kept of one line


def test_a_status_line_completed_by_the_next_segment_is_found() -> None:
    status = b"SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    stream = b"junk without a line feed " * 30 + status
    for cut in range(len(stream) - len(status) - 3, len(stream) - len(status) + 13):
        frames = [ms.tcp(ms.ISN, flags=0x02, ack=0), ms.tcp(ms.ISN + 1, stream[:cut])]
        frames.append(ms.tcp(ms.ISN + 1 + cut, stream[cut:]))
        packets, _ = tcp_packets(frames)
        assert [p.payload for p in packets] == [status], cut


# --- WebSocket ------------------------------------------------------------------------------------


def ws_message(frames: Iterable[bytes]) -> bytes:
    """The SIP message a ws_continuations capture carries, from its TCP payloads."""
    stream = b"".join(f[54:] for f in frames)[len(ms.UPGRADE) :]
    out, i = [], 0
    while i < len(stream):
        b1 = stream[i + 1] & 0x7F
        h = 2 + (2 if b1 == 126 else 8 if b1 == 127 else 0)
        n = b1 if b1 < 126 else int.from_bytes(stream[i + 2 : i + h], "big")
        mask = stream[i + h : i + h + 4]
        payload = stream[i + h + 4 : i + h + 4 + n]
        out.append(bytes(c ^ mask[j % 4] for j, c in enumerate(payload)))
        i += h + 4 + n
    return b"".join(out)


def test_continuation_frames_under_the_cap_are_one_message(tmp_path: Path) -> None:
    path = tmp_path / "ws.pcap.gz"
    ms.write_pcap(path, ms.ws_continuations(300, 200))
    packets, reader = read_all(path)
    (p,) = packets
    assert p.payload == ws_message(list(ms.ws_continuations(300, 200)))
    assert p.payload.startswith(b"INVITE ") and len(p.payload) > 300 * 200
    assert p.transport is Transport.WS and not p.truncated and reader.warnings == []


def test_continuation_frames_over_the_cap_are_handed_up_truncated_once() -> None:
    cap = 1 << 16
    t = Tcp(max_message=cap)
    frames = list(ms.ws_continuations(200, 1000))
    (p,) = t.feed(frames)
    assert p.truncated and len(p.payload) == cap and p.transport is Transport.WS
    assert p.payload == ws_message(frames)[:cap]
    (w,) = t.warnings
    assert f"WebSocket message longer than {cap} octets" in w[0]
    # Every frame is accounted for once: in the message, or (the upgrade and the segments after
    # the cap, never parsed as SIP) as WebSocket.
    assert t.stats.non_sip == {detect.TCP_CONTROL: 1, detect.WEBSOCKET: len(frames) - 1 - len(p.frames)}
    assert p.frames[-1] < len(frames) // 2


def test_continuation_frames_cost_linear_work_and_bounded_memory() -> None:
    cap = 1 << 16
    peaks: list[int] = []

    def held(r: TcpReassembler) -> None:
        for s in r._streams.values():
            f = s.framer
            if isinstance(f, WebSocketFramer):
                assert f.size <= cap and sum(map(len, f.parts)) == f.size

    def run(n: int) -> int:
        t = Tcp(max_message=cap)
        out: list[SipPayload] = []
        cost = work(lambda: out.extend(t.feed(ms.ws_continuations(n, 500), held)))
        assert len(out) == 1 and len(out[0].payload) == cap and out[0].truncated
        tracemalloc.start()
        try:
            Tcp(max_message=cap).feed(ms.ws_continuations(n, 500))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        return cost

    assert_linear(run, 300)  # 300 frames of 500 octets: 150 KB, beyond the 64 KiB cap
    assert max(peaks) < 4 * cap, peaks


@pytest.mark.parametrize("n", [1, 7])
def test_handshake_in_many_segments(n: int) -> None:
    frames = list(ms.ws_continuations(3, 100))
    assert frames[1][54:] == ms.UPGRADE
    cut = [ms.tcp(ms.ISN + 1 + i, ms.UPGRADE[i : i + n]) for i in range(0, len(ms.UPGRADE), n)]
    t = Tcp()
    packets = t.feed([frames[0], *cut, *frames[2:]])
    assert [p.payload for p in packets] == [ws_message(frames)] and t.warnings == []
