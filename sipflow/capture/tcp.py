"""TCP stream reassembly (sans-I/O); each stream is framed by the framer of its kind.

:class:`TcpReassembler` is fed TCP segments (addresses as raw octets, sequence numbers,
flags, payload, capture timestamp) and returns the SIP messages they complete, one
:class:`SipPayload` per message. Each direction of a connection is an independent byte stream:

* sequence numbers are compared modulo 2³² (RFC 9293 §3.4, wrap-around safe);
* segments ahead of the next expected byte wait in a bounded out-of-order store (a dict by
  stream offset and a heap of its keys: O(log n) a segment); retransmitted and overlapping
  octets are dropped (the first copy wins); segments beyond the window the store can hold
  (more than ``max_out_of_order`` octets ahead) are dropped, with one warning per stream,
  unless the peer acknowledged them or the next segment continues them (the capture lost
  more than the window);
* SYN sets the initial sequence number, FIN and RST close the direction (RFC 9293 §3.5, §3.6);
  a direction picked up without its SYN starts at the first segment seen;
* bytes the capture never saw (a hole the peer acknowledged, a hole older than
  ``gap_timeout``, a frame cut by the snapshot length) are reported to the framer as a gap.

The octets in sequence go to the stream's framer (:mod:`sipflow.capture.framing`): first a
:class:`~sipflow.capture.framing.Sniffer`, which tells the stream's kind from its first
octets and hands it to the framer of that kind (SIP, HEP3, WebSocket, RTP over TCP, or one
that only counts, as for TLS). A stream keeps only TCP state: sequence numbers, the octets in
sequence and the frames they came in (:class:`~sipflow.capture.framing.StreamBytes`), the
out-of-order store, and its framer.

Every frame is accounted for exactly once in :class:`CaptureStats.non_sip` unless it carried
part of a SIP message: segments without payload as ``TCP control``, repeated bytes as
``TCP retransmission``, and bytes that framed no SIP by the stream's kind (see the framers).
Memory is bounded per stream (``max_message``, ``max_out_of_order``) and in the number of
streams (``max_streams``).
"""

from __future__ import annotations

import heapq
from typing import Final

from sipflow.capture import detect, framing
from sipflow.capture.framing import (
    MAX_HANDSHAKE,
    MAX_LINE,
    Framer,
    FramerContext,
    Sniffer,
    StreamBytes,
    Warn,
    content_length,
)
from sipflow.capture.ip import format_address
from sipflow.capture.sink import PayloadSink
from sipflow.capture.types import CaptureStats, Endpoint, SipPayload

__all__ = [
    "ACK",
    "FIN",
    "MAX_HANDSHAKE",
    "MAX_LINE",
    "RST",
    "SYN",
    "TcpReassembler",
    "Warn",
    "content_length",
]

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
ACK: Final = 0x10

_MASK: Final = 0xFFFFFFFF


def _signed(x: int) -> int:
    """A 32-bit sequence-number difference as a signed value (RFC 1982 style)."""
    return ((x + 0x80000000) & _MASK) - 0x80000000


class _Stream:
    """One direction of a TCP connection: its TCP state and its framer."""

    __slots__ = (
        "buf",
        "closed",
        "far_next",
        "fin_seq",
        "framer",
        "last_ts",
        "next_seq",
        "off",
        "ooo",
        "ooo_bytes",
        "ooo_heap",
        "peer_ack",
        "window_warned",
    )

    def __init__(self, buf: StreamBytes, framer: Framer, next_seq: int, timestamp: float) -> None:
        self.buf = buf
        """The octets in sequence not framed yet, the frames they came in, the endpoints."""
        self.framer = framer
        self.next_seq = next_seq
        self.off = 0
        """Stream offset of ``next_seq``: octets appended or skipped so far (no wrap-around)."""
        self.ooo: dict[int, tuple[bytes, int, float, int]] = {}
        """Out-of-order segments by stream offset: (data, frame, timestamp, missing); insertion
        order is arrival order."""
        self.ooo_heap: list[int] = []
        """Offsets of ``ooo`` as a heap (entries no longer in ``ooo`` are skipped lazily)."""
        self.ooo_bytes = 0
        self.far_next: int | None = None
        """Sequence number right after the last segment dropped as out of window: a segment
        starting there continues it (the capture lost more than the window, the stream goes on)."""
        self.window_warned = False
        self.fin_seq: int | None = None
        self.peer_ack: int | None = None
        self.closed = False
        self.last_ts = timestamp


class TcpReassembler:
    """Reassembles TCP byte streams and has each framed by the framer of its kind."""

    def __init__(
        self,
        *,
        stats: CaptureStats,
        warn: Warn,
        file: str = "",
        max_streams: int = 65536,
        max_message: int = 1 << 20,
        max_out_of_order: int = 1 << 20,
        max_out_of_order_segments: int = 512,
        gap_timeout: float = 10.0,
        sink: PayloadSink | None = None,
    ) -> None:
        self.stats = stats
        self._warn = warn
        self.file = file
        self.max_streams = max_streams
        """Streams tracked at once; the least recently active half is flushed beyond this."""
        self.max_message = max_message
        """Largest message (SIP header + body, HEP3, WebSocket) buffered; a longer SIP message is
        handed up truncated. Read when the reassembler is built."""
        self.max_out_of_order = max_out_of_order
        """Octets a stream may hold beyond a hole before the hole is declared lost."""
        self.max_out_of_order_segments = max_out_of_order_segments
        self.gap_timeout = gap_timeout
        """Seconds of capture time a hole may wait for a retransmission before it is skipped."""
        self._streams: dict[tuple[bytes, int, bytes, int], _Stream] = {}
        self.tls_conversations: set[tuple[Endpoint, Endpoint]] = set()
        """TCP conversations (endpoint pairs, either direction) whose first payload was a TLS record."""
        self._ctx = FramerContext(
            stats=stats,
            warn=warn,
            file=file,
            max_message=max_message,
            tls_conversations=self.tls_conversations,
            sink=sink,
        )

    # --- public ------------------------------------------------------------------------------

    def segment(
        self,
        frame: int,
        timestamp: float,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        data: bytes,
        missing: int = 0,
    ) -> list[SipPayload]:
        """Feed one segment; return the SIP messages it completes (often none).

        ``src``/``dst`` are raw 4- or 16-octet addresses, ``data`` the captured payload and
        ``missing`` the payload octets the capture did not keep (snapshot length).
        """
        out: list[SipPayload] = []
        streams = self._streams
        key = (src, sport, dst, dport)
        s = streams.get(key)
        n = len(data)

        if flags & ACK:
            rev = streams.get((dst, dport, src, sport))
            if rev is not None and not rev.closed:
                if rev.peer_ack is None or _signed(ack - rev.peer_ack) > 0:
                    rev.peer_ack = ack
                if rev.ooo:
                    self._resolve_holes(rev, timestamp, out)

        if flags & RST:
            # RFC 9293 §3.5.3: the connection is gone in both directions.
            self.stats.count_non_sip(detect.TCP_CONTROL)
            for k in (key, (dst, dport, src, sport)):
                t = streams.get(k)
                if t is not None and not t.closed:
                    self._close(t, out)
            return out

        dseq = seq
        if flags & SYN:
            dseq = (seq + 1) & _MASK
            # A SYN whose sequence number is not behind the stream starts a new connection on
            # this 4-tuple; one that is behind is a retransmission (RFC 9293 §3.10.7.4).
            if s is None or s.closed or _signed(dseq - s.next_seq) > 0:
                s = self._new_stream(key, src, sport, dst, dport, dseq, timestamp, out)
        elif s is None:
            if not n:
                self.stats.count_non_sip(detect.TCP_CONTROL)
                return out
            s = self._new_stream(key, src, sport, dst, dport, dseq, timestamp, out)
        s.last_ts = timestamp

        if n:
            if s.closed:
                if _signed(dseq - s.next_seq) < 0:
                    self.stats.count_non_sip(detect.TCP_RETRANSMISSION)
                    n = 0
                else:
                    # Data after the close: the 4-tuple was reused without a SYN we saw.
                    s.closed = False
                    s.framer = Sniffer(self._ctx)
                    s.next_seq = dseq
                    s.fin_seq = None
                    s.peer_ack = None
            if n:
                if not s.framer.decodes:
                    self.stats.count_non_sip(s.framer.kind)
                else:
                    self._data(s, dseq, data, frame, timestamp, missing, out)
        else:
            self.stats.count_non_sip(detect.TCP_CONTROL)

        if flags & FIN:
            s.fin_seq = (dseq + n + missing) & _MASK if n else dseq
        if s.fin_seq is not None and not s.closed and _signed(s.next_seq - s.fin_seq) >= 0:
            self._close(s, out)
            s.next_seq = (s.fin_seq + 1) & _MASK
        return out

    def finish(self) -> list[SipPayload]:
        """The capture ended: skip every hole, hand up what is left (truncated), forget all."""
        out: list[SipPayload] = []
        for s in self._streams.values():
            self._flush(s, out)
        self._streams.clear()
        return out

    def __len__(self) -> int:
        return len(self._streams)

    # --- streams -----------------------------------------------------------------------------

    def _new_stream(
        self,
        key: tuple[bytes, int, bytes, int],
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        next_seq: int,
        timestamp: float,
        out: list[SipPayload],
    ) -> _Stream:
        streams = self._streams
        old = streams.pop(key, None)
        if old is not None:
            self._flush(old, out)
        if len(streams) >= self.max_streams:
            self._evict(out)
        a, z = Endpoint(format_address(src), sport), Endpoint(format_address(dst), dport)
        s = _Stream(StreamBytes(a, z, self.stats), Sniffer(self._ctx), next_seq, timestamp)
        streams[key] = s
        return s

    def _evict(self, out: list[SipPayload]) -> None:
        """Flush and forget the least recently active half of the streams."""
        streams = self._streams
        ordered = sorted(streams.items(), key=lambda kv: kv[1].last_ts)
        victims = ordered[: max(1, len(ordered) // 2)]
        busy = sum(1 for _, s in victims if s.buf or s.ooo)
        if busy:
            self._warn(f"more than {self.max_streams} TCP streams: flushed {busy} with data pending", None)
        for k, s in victims:
            self._flush(s, out)
            del streams[k]

    def _close(self, s: _Stream, out: list[SipPayload]) -> None:
        """FIN reached or RST: hand up what is pending and keep a tombstone for retransmissions."""
        self._flush(s, out)
        s.closed = True

    def _flush(self, s: _Stream, out: list[SipPayload]) -> None:
        self._skip_holes(s, out)
        self._frame(s, out)
        s.framer.end(s.buf, out)

    # --- bytes -------------------------------------------------------------------------------

    def _data(
        self, s: _Stream, seq: int, data: bytes, frame: int, ts: float, missing: int, out: list[SipPayload]
    ) -> None:
        rel = _signed(seq - s.next_seq)
        n = len(data)
        if rel > self.max_out_of_order and not (s.peer_ack is not None and _signed(s.peer_ack - seq) > 0):
            if not self._out_of_window(s, seq, n + missing, rel, frame, out):
                return
            rel = 0
        if rel < 0:
            if rel + n <= 0:
                self.stats.count_non_sip(detect.TCP_RETRANSMISSION)
                return
            data = data[-rel:]
            n = len(data)
            rel = 0
        if rel == 0:
            self._append(s, data, frame, ts)
            if missing:
                self._gap(s, missing, out)
            if s.ooo:
                self._drain(s, out)
            self._frame(s, out)
            return
        # A hole before this segment: keep it for later (RFC 9293 §3.10.7.4 "segment text").
        where = s.off + rel
        old = s.ooo.get(where)
        if old is not None and len(old[0]) >= n:
            self.stats.count_non_sip(detect.TCP_RETRANSMISSION)
            return
        if old is not None:
            s.ooo_bytes -= len(old[0])
            self.stats.count_non_sip(detect.TCP_RETRANSMISSION)
        else:
            heapq.heappush(s.ooo_heap, where)
        s.ooo[where] = (data, frame, ts, missing)
        s.ooo_bytes += n
        self._resolve_holes(s, ts, out)

    def _out_of_window(
        self, s: _Stream, seq: int, n: int, rel: int, frame: int, out: list[SipPayload]
    ) -> bool:
        """A segment beyond what the out-of-order store may ever hold: drop it, or resume there.

        Octets more than ``max_out_of_order`` ahead of the next expected one are outside any
        window this observer can keep (RFC 9293 §3.10.7.4: a receiver drops segments beyond its
        window); storing them would declare the hole before them lost and bury the stream
        (junk with random sequence numbers). Unless the peer acknowledged them, they are
        dropped, with one warning per stream. A segment that starts where the last one dropped
        ended shows the stream really went on there (the capture lost more than the window):
        every hole is then skipped up to it and True returned, the segment to be taken in
        sequence.
        """
        if seq != s.far_next:
            s.far_next = (seq + n) & _MASK
            self.stats.count_non_sip(s.framer.kind)
            if not s.window_warned:
                s.window_warned = True
                self._warn(
                    f"TCP {s.buf.src} -> {s.buf.dst}: a segment {rel} octets ahead of the stream, beyond its "
                    f"{self.max_out_of_order}-octet window; dropped, as any later ones out of window",
                    frame,
                )
            return False
        s.far_next = None
        self._skip_holes(s, out)
        rel = _signed(seq - s.next_seq)
        if rel > 0:
            self._gap(s, rel, out)
        return True

    def _skip_holes(self, s: _Stream, out: list[SipPayload]) -> None:
        """Skip every hole before the stored out-of-order segments, taking them in sequence."""
        while s.ooo:
            gap = self._first_ooo(s) - s.off
            if gap > 0:
                self._gap(s, gap, out)
            self._drain(s, out)

    @staticmethod
    def _first_ooo(s: _Stream) -> int:
        """Stream offset of the earliest out-of-order segment (``s.ooo`` must not be empty)."""
        heap, ooo = s.ooo_heap, s.ooo
        while heap[0] not in ooo:
            heapq.heappop(heap)
        return heap[0]

    def _resolve_holes(self, s: _Stream, now: float, out: list[SipPayload]) -> None:
        """Skip holes the capture will never fill, then continue with the data after them."""
        while s.ooo:
            gap = self._first_ooo(s) - s.off
            if gap <= 0:
                self._drain(s, out)
                self._frame(s, out)
                continue
            acked = s.peer_ack is not None and _signed(s.peer_ack - s.next_seq) > 0
            stale = now - next(iter(s.ooo.values()))[2] > self.gap_timeout  # the oldest arrival
            full = s.ooo_bytes > self.max_out_of_order or len(s.ooo) > self.max_out_of_order_segments
            if not (acked or stale or full):
                return
            if acked and not (stale or full):
                assert s.peer_ack is not None
                gap = min(gap, _signed(s.peer_ack - s.next_seq))
            self._gap(s, gap, out)
            self._drain(s, out)
            self._frame(s, out)

    def _append(self, s: _Stream, data: bytes, frame: int, ts: float) -> None:
        s.buf.append(data, frame, ts)
        s.next_seq = (s.next_seq + len(data)) & _MASK
        s.off += len(data)

    def _drain(self, s: _Stream, out: list[SipPayload]) -> None:
        """Move out-of-order segments that now follow on into the stream, in offset order."""
        ooo = s.ooo
        while ooo:
            first = self._first_ooo(s)
            rel = first - s.off
            if rel > 0:
                return
            heapq.heappop(s.ooo_heap)
            data, frame, ts, missing = ooo.pop(first)
            s.ooo_bytes -= len(data)
            if rel + len(data) <= 0:
                self.stats.count_non_sip(detect.TCP_RETRANSMISSION)
                continue
            self._append(s, data[-rel:] if rel else data, frame, ts)
            if missing:
                self._gap(s, missing, out)

    def _gap(self, s: _Stream, nbytes: int, out: list[SipPayload]) -> None:
        """``nbytes`` octets at ``next_seq`` were never captured: the framer ends or skips the
        message in progress."""
        self._frame(s, out)
        s.next_seq = (s.next_seq + nbytes) & _MASK
        s.off += nbytes
        s.framer = s.framer.gap(s.buf, nbytes, out)

    def _frame(self, s: _Stream, out: list[SipPayload]) -> None:
        """Frame the octets in sequence (the framer may hand the stream to another)."""
        b = s.buf
        if b.data:
            framer = s.framer
            nxt = framer.feed(b, out)
            if nxt is not framer:
                s.framer = framing.run(nxt, b, out)
