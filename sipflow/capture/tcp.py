"""TCP stream reassembly and SIP message framing (sans-I/O).

:class:`TcpReassembler` is fed TCP segments (addresses as raw octets, sequence numbers,
flags, payload, capture timestamp) and returns the SIP messages they complete, one
:class:`Packet` per message. Each direction of a connection is an independent byte stream:

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
  ``gap_timeout``, a frame cut by the snapshot length) end the message in progress, which is
  handed up flagged ``truncated``, and the stream resynchronises.

The byte stream is framed per RFC 3261 §18.3: a message's header ends at the first empty line
(CRLFCRLF), its body is ``Content-Length`` octets long (compact form ``l``, any case; absent
means 0). CRLFs between messages are keep-alives (RFC 5626 §3.5.1, RFC 3261 §7.5) and are
skipped. A stream that does not start with a SIP start line (picked up mid-message, or after a
hole) is searched for the next line that is one (:func:`find_sip_start`); octets searched in
vain are not searched again as more arrive, so each octet costs O(1) however the stream is
cut into segments.

A stream's kind is decided from its first octets in sequence order, once enough of them are
there (:meth:`TcpReassembler._sniff`): a TLS record header (counted, never decoded); ``HEP3``
(HEP3 messages back to back, each framed by its 16-bit total length and decoded like HEP over
UDP, with the inner addresses and time); an HTTP upgrade request or ``101`` response (the
decision waits for the end of its header block, up to :data:`MAX_HANDSHAKE` octets, so that a
handshake spread over several segments is recognised), after which WebSocket frames carry SIP
(RFC 6455, RFC 7118); a WebSocket message (a text or binary frame and its continuation
frames) is held up to ``max_message`` octets, beyond which what came is handed up truncated
and the rest of it dropped; anything else is framed as SIP at once.

Every frame is accounted for exactly once in :class:`CaptureStats.non_sip` unless it carried
part of a SIP message: segments without payload as ``TCP control``, repeated bytes as
``TCP retransmission``, and bytes that framed no SIP by the stream's kind (``TLS``,
``other TCP``, ``SIP keep-alive``). Memory is bounded per stream (``max_message``,
``max_out_of_order``) and in the number of streams (``max_streams``).
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from collections.abc import Callable
from typing import Final

from sipflow.capture import detect, hep, websocket
from sipflow.capture.ip import format_address
from sipflow.capture.packet import CaptureStats, Endpoint, Packet, Transport

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
ACK: Final = 0x10

_MASK: Final = 0xFFFFFFFF

MAX_LINE: Final = 16384
"""Longest start line waited for before a stream is declared out of sync."""

MAX_HANDSHAKE: Final = 16384
"""Longest HTTP header block waited for before a stream that opens like a WebSocket handshake
(``GET`` request, ``HTTP/1.1 101`` response) is classified from what has arrived."""

# Stream modes. The first two frame SIP; every other one is >= _IGNORE (one test on the hot path).
_HUNT: Final = 0
"""Searching for a SIP start line."""
_SIP: Final = 1
"""In step with the SIP messages of the stream."""
_IGNORE: Final = 2
"""Counted by kind, never decoded (TLS, a broken WebSocket stream)."""
_WS: Final = 3
_HEP: Final = 4
"""In step with the HEP3 messages of the stream."""
_HEP_HUNT: Final = 5
"""Searching for the next HEP3 header (after junk, a hole, or a mid-stream pickup)."""
_NEW: Final = 6
"""No octet in sequence yet, or too few to tell the stream's kind."""

_HTTP_STARTS: Final = (b"GET ", b"HTTP/1.1 101")
"""How an RFC 6455 §4.1 opening handshake and its §4.2.2 response begin."""
_WAIT_PREFIXES: Final = (hep.HEP3_MAGIC, *_HTTP_STARTS)

# RFC 3261 §20.14 Content-Length, §7.3.3 compact form "l"; header names are case-insensitive
# (§7.3.1) and the value may follow folded whitespace (LWS, §25.1).
_CONTENT_LENGTH: Final = re.compile(
    rb"\n(?:content-length|l)[ \t]*(?:\r?\n[ \t]+)?:[ \t]*(?:\r?\n[ \t]+)?(\d{1,12})", re.IGNORECASE
)
_CRLF_RUN: Final = re.compile(rb"[\r\n]*")
_SIP_VERSION: Final = b"SIP/2.0"

Warn = Callable[[str, int | None], None]
"""Callback receiving a warning message and the frame it concerns."""


def _signed(x: int) -> int:
    """A 32-bit sequence-number difference as a signed value (RFC 1982 style)."""
    return ((x + 0x80000000) & _MASK) - 0x80000000


def content_length(buf: bytes | bytearray, header_end: int) -> int | None:
    """The Content-Length of a message whose header ends at ``header_end`` (the CRLFCRLF).

    ``None`` when the header has none (RFC 3261 §18.3 makes it mandatory on streams; the
    framer then assumes an empty body).
    """
    m = _CONTENT_LENGTH.search(buf, 0, header_end + 2)
    return int(m.group(1)) if m is not None else None


def _status_line_from(buf: bytes | bytearray, start: int) -> int:
    """Offset of the first Status-Line (RFC 3261 §7.2) whose ``SIP/2.0`` is at or after ``start``.

    What :func:`detect.find_sip_start` finds in a buffer without a line feed, where no
    Request-Line can be complete: a ``SIP/2.0`` that starts a Status-Line (its version is no
    token, so :func:`detect.is_sip_start` there tests the Status-Line alone).
    """
    k = buf.find(_SIP_VERSION, max(0, start))
    while k >= 0:
        if detect.is_sip_start(buf, k):
            return k
        k = buf.find(_SIP_VERSION, k + 1)
    return -1


class _Segment:
    """The part of ``_Stream.buf`` one frame contributed."""

    __slots__ = ("frame", "left", "sip", "timestamp")

    def __init__(self, frame: int, timestamp: float, left: int) -> None:
        self.frame = frame
        self.timestamp = timestamp
        self.left = left
        self.sip = False


def _span(segs: list[_Segment]) -> tuple[_Segment, tuple[int, ...]]:
    """The segment with the last frame among ``segs`` (it completes the message: its frame and
    time are the message's) and every frame they came in, sorted."""
    return max(segs, key=lambda seg: seg.frame), tuple(sorted({seg.frame for seg in segs}))


class _Stream:
    """One direction of a TCP connection."""

    __slots__ = (
        "buf",
        "closed",
        "dst",
        "far_next",
        "fin_seq",
        "kind",
        "last_ts",
        "mode",
        "need",
        "next_seq",
        "off",
        "ooo",
        "ooo_bytes",
        "ooo_heap",
        "peer_ack",
        "scan",
        "segs",
        "sep",
        "skip",
        "src",
        "warned",
        "window_warned",
        "ws_drop",
        "ws_msg",
        "ws_open",
        "ws_segs",
        "ws_shaken",
        "ws_size",
    )

    def __init__(self, src: Endpoint, dst: Endpoint, next_seq: int, timestamp: float) -> None:
        self.src = src
        self.dst = dst
        self.next_seq = next_seq
        self.buf = bytearray()
        self.segs: deque[_Segment] = deque()
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
        self.mode = _NEW
        self.kind = detect.OTHER_TCP
        self.fin_seq: int | None = None
        self.peer_ack: int | None = None
        self.closed = False
        self.last_ts = timestamp
        self.need = 0
        """Total length of the message at the front of ``buf`` once its header is complete."""
        self.scan = 0
        """Where to resume a search: for the end of the header (SIP, handshakes), or, hunting, the
        octets already searched in vain for a SIP start line (they hold no line feed)."""
        self.sep = 0
        """Length of the empty line ending the header at the front of ``buf`` (4: CRLFCRLF, 2:
        LFLF) once its start line has been checked; 0 before."""
        self.skip = 0
        """Body octets of an oversized message still to be dropped."""
        self.warned = False
        self.ws_shaken = False
        """WebSocket: the HTTP handshake is behind us, frames follow (RFC 6455 §4)."""
        self.ws_open = False
        """WebSocket: a data message has begun and awaits its FIN frame."""
        self.ws_msg: list[bytes] = []
        """WebSocket: unmasked payloads of the frames of the message in progress."""
        self.ws_segs: list[_Segment] = []
        """WebSocket: the segments that carried the message in progress."""
        self.ws_size = 0
        """WebSocket: octets in ``ws_msg``."""
        self.ws_drop = False
        """WebSocket: the message in progress outgrew ``max_message``, was handed up truncated,
        and its remaining frames are dropped up to its FIN."""


class TcpReassembler:
    """Reassembles TCP byte streams and frames SIP messages out of them (RFC 3261 §18.3)."""

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
    ) -> None:
        self.stats = stats
        self._warn = warn
        self.file = file
        self.max_streams = max_streams
        """Streams tracked at once; the least recently active half is flushed beyond this."""
        self.max_message = max_message
        """Largest SIP message (header + body) buffered; a longer one is handed up truncated."""
        self.max_out_of_order = max_out_of_order
        """Octets a stream may hold beyond a hole before the hole is declared lost."""
        self.max_out_of_order_segments = max_out_of_order_segments
        self.gap_timeout = gap_timeout
        """Seconds of capture time a hole may wait for a retransmission before it is skipped."""
        self._streams: dict[tuple[bytes, int, bytes, int], _Stream] = {}
        self.tls_conversations: set[tuple[Endpoint, Endpoint]] = set()
        """TCP conversations (endpoint pairs, either direction) whose first payload was a TLS record."""

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
    ) -> list[Packet]:
        """Feed one segment; return the SIP messages it completes (often none).

        ``src``/``dst`` are raw 4- or 16-octet addresses, ``data`` the captured payload and
        ``missing`` the payload octets the capture did not keep (snapshot length).
        """
        out: list[Packet] = []
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
                    s.mode = _NEW
                    s.kind = detect.OTHER_TCP
                    s.next_seq = dseq
                    s.fin_seq = None
                    s.peer_ack = None
            if n:
                if s.mode == _IGNORE:
                    self.stats.count_non_sip(s.kind)
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

    def finish(self) -> list[Packet]:
        """The capture ended: skip every hole, hand up what is left (truncated), forget all."""
        out: list[Packet] = []
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
        out: list[Packet],
    ) -> _Stream:
        streams = self._streams
        old = streams.pop(key, None)
        if old is not None:
            self._flush(old, out)
        if len(streams) >= self.max_streams:
            self._evict(out)
        s = _Stream(
            Endpoint(format_address(src), sport), Endpoint(format_address(dst), dport), next_seq, timestamp
        )
        streams[key] = s
        return s

    def _evict(self, out: list[Packet]) -> None:
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

    def _close(self, s: _Stream, out: list[Packet]) -> None:
        """FIN reached or RST: hand up what is pending and keep a tombstone for retransmissions."""
        self._flush(s, out)
        s.closed = True
        s.mode = _HUNT

    def _flush(self, s: _Stream, out: list[Packet]) -> None:
        self._skip_holes(s, out)
        self._frame_final(s, out)
        self._leftover(s, out)

    # --- bytes -------------------------------------------------------------------------------

    def _data(
        self, s: _Stream, seq: int, data: bytes, frame: int, ts: float, missing: int, out: list[Packet]
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

    def _out_of_window(self, s: _Stream, seq: int, n: int, rel: int, frame: int, out: list[Packet]) -> bool:
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
            self.stats.count_non_sip(s.kind)
            if not s.window_warned:
                s.window_warned = True
                self._warn(
                    f"TCP {s.src} -> {s.dst}: a segment {rel} octets ahead of the stream, beyond its "
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

    def _skip_holes(self, s: _Stream, out: list[Packet]) -> None:
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

    def _resolve_holes(self, s: _Stream, now: float, out: list[Packet]) -> None:
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
        s.buf += data
        s.segs.append(_Segment(frame, ts, len(data)))
        s.next_seq = (s.next_seq + len(data)) & _MASK
        s.off += len(data)

    def _drain(self, s: _Stream, out: list[Packet]) -> None:
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

    def _gap(self, s: _Stream, nbytes: int, out: list[Packet]) -> None:
        """``nbytes`` octets at ``next_seq`` were never captured: end the message in progress."""
        self._frame_final(s, out)
        s.next_seq = (s.next_seq + nbytes) & _MASK
        s.off += nbytes
        if s.mode == _NEW:
            return  # nothing in sequence yet: the octets after the hole will tell the kind
        if s.mode == _WS:
            # WebSocket frames cannot be found again after a hole: give the stream up.
            frame = s.segs[-1].frame if s.segs else None
            self._warn(
                f"TCP {s.src} -> {s.dst}: {nbytes} octets missing from a WebSocket stream; the rest "
                "of the stream is not decoded",
                frame,
            )
            self._leftover(s, out)
            s.mode = _IGNORE
            s.kind = detect.WEBSOCKET
            return
        if s.skip >= nbytes:
            s.skip -= nbytes  # the hole is inside a body being dropped anyway: still in sync
            return
        s.skip = 0
        if s.mode in (_SIP, _HEP):
            frame = s.segs[-1].frame if s.segs else None
            what = "HEP3 message" if s.mode == _HEP else "message"
            self._warn(
                f"TCP {s.src} -> {s.dst}: {nbytes} octets missing from the capture; the {what} in "
                "progress is handed up truncated and the stream resynchronised",
                frame,
            )
        self._leftover(s, out)
        if s.mode == _HEP:
            s.mode = _HEP_HUNT
        elif s.mode not in (_IGNORE, _HEP_HUNT):
            s.mode = _HUNT

    def _leftover(self, s: _Stream, out: list[Packet]) -> None:
        """Hand up an incomplete message at the front of the buffer as truncated; drop the rest."""
        buf = s.buf
        if s.mode == _WS:
            self._ws_leftover(s, out)
            return
        if not buf:
            return
        if s.mode == _HEP:
            self._hep_leftover(s, out)
        if s.mode == _SIP:
            skip = _CRLF_RUN.match(buf).end()  # type: ignore[union-attr]  # always matches
            if skip:
                self._consume(s, skip, detect.SIP_KEEPALIVE)
            if buf and (detect.is_sip_start(buf, 0) or detect.is_partial_sip_start(buf, 0)):
                self._emit(s, len(buf), out, truncated=True)
                return
        elif s.mode == _HUNT:
            i = detect.find_sip_start(buf)
            if i >= 0:
                self._consume(s, i, s.kind)
                self._emit(s, len(buf), out, truncated=True)
                return
        if buf:
            self._consume(s, len(buf), s.kind)

    def _consume(self, s: _Stream, n: int, kind: str | None) -> list[_Segment]:
        """Remove ``n`` octets from the front; ``kind`` None means they belong to a SIP message.

        Returns the segments that contributed to them. A segment whose octets are all gone and
        none of which were SIP is counted as ``kind``.
        """
        del s.buf[:n]
        s.need = 0
        s.scan = 0
        s.sep = 0
        touched: list[_Segment] = []
        segs = s.segs
        count = self.stats.count_non_sip
        while n > 0 and segs:
            seg = segs[0]
            take = seg.left if seg.left < n else n
            seg.left -= take
            n -= take
            if kind is None:
                seg.sip = True
                touched.append(seg)
            if not seg.left:
                segs.popleft()
                if not seg.sip:
                    count(kind or s.kind)
        return touched

    def _emit(self, s: _Stream, n: int, out: list[Packet], *, truncated: bool = False) -> None:
        payload = bytes(s.buf[:n])
        touched = self._consume(s, n, None)
        if not touched:
            return
        last, frames = _span(touched)
        out.append(
            Packet(
                frame=last.frame,
                frames=frames,
                timestamp=last.timestamp,
                src=s.src,
                dst=s.dst,
                transport=Transport.TCP,
                payload=payload,
                truncated=truncated,
                file=self.file,
            )
        )

    def _frame(self, s: _Stream, out: list[Packet]) -> None:
        """Cut complete SIP messages off the front of the stream (RFC 3261 §18.3)."""
        buf = s.buf
        while buf:
            mode = s.mode
            if mode >= _IGNORE:
                if mode == _NEW:
                    if self._sniff(s, final=False):
                        continue
                    return
                if mode == _IGNORE:
                    self._consume(s, len(buf), s.kind)
                elif mode == _WS:
                    self._ws_frames(s, out)
                else:
                    self._hep_frames(s, out)
                return
            if s.skip:
                n = min(s.skip, len(buf))
                s.skip -= n
                self._consume(s, n, None)
                continue
            if s.mode == _HUNT:
                skip = _CRLF_RUN.match(buf).end()  # type: ignore[union-attr]  # always matches
                if skip:
                    self._consume(s, skip, detect.SIP_KEEPALIVE)
                    continue
                # Octets searched in vain before hold no line feed (the search kept only the
                # unfinished last line): unless a line ends in the new ones, only a Status-Line
                # can have been completed, and only by them. Each octet is searched O(1) times.
                searched = s.scan
                last_nl = buf.rfind(b"\n", searched)
                if searched and last_nl < 0:
                    i = _status_line_from(buf, searched - 11)  # 11: "SIP/2.0 NNN" may straddle
                else:
                    i = detect.find_sip_start(buf)
                if i and hep.hep3_before(buf, i):
                    # HEP3 messages picked up mid-stream: the SIP inside them is read through
                    # their headers, never found by the SIP search.
                    s.mode, s.kind = _HEP_HUNT, detect.HEP
                    continue
                if i < 0:
                    # Keep the last, unfinished line: it may be the start of a start line.
                    keep_from = max(last_nl + 1, len(buf) - MAX_LINE)
                    if keep_from > 0:
                        self._consume(s, keep_from, s.kind)
                    if buf and not detect.TOKEN_START[buf[0]]:
                        self._consume(s, len(buf), s.kind)
                    s.scan = len(buf)
                    return
                if i:
                    self._consume(s, i, s.kind)
                s.mode = _SIP
                s.scan = s.sep = 0
            if s.need:
                if len(buf) < s.need:
                    return
                self._emit(s, s.need, out)
                continue
            # RFC 5626 §3.5.1 keep-alives and RFC 3261 §7.5 leading CRLFs.
            skip = _CRLF_RUN.match(buf).end()  # type: ignore[union-attr]  # always matches
            if skip:
                self._consume(s, skip, detect.SIP_KEEPALIVE)
                continue
            if not s.sep:
                # The start line, checked once per message; ``scan``: no line feed before it.
                eol = buf.find(b"\n", s.scan, MAX_LINE)
                if eol < 0:
                    if len(buf) >= MAX_LINE or not detect.TOKEN_START[buf[0]]:
                        self._resync(s, "no SIP start line")
                        continue
                    s.scan = len(buf)
                    return
                if not detect.is_sip_start(buf, 0, eol + 1):
                    self._resync(s, "data that is not a SIP start line")
                    continue
                # The header ends at the first empty line; a sender that ends its start line with
                # a bare LF (not RFC 3261, seen in the wild) is expected to end the header with LFLF.
                s.sep = 4 if eol and buf[eol - 1] == 13 else 2
                s.scan = max(0, eol - 1)
            sep = s.sep
            end = buf.find(b"\r\n\r\n" if sep == 4 else b"\n\n", s.scan)
            if end < 0:
                if len(buf) > self.max_message:
                    self._oversize(s, out, f"SIP header longer than {self.max_message} octets")
                    continue
                s.scan = max(0, len(buf) - 3)
                return
            clen = content_length(buf, end) or 0
            total = end + sep + clen
            if total > self.max_message and len(buf) < total:
                # Too big to wait for: hand up what is here, drop the rest of the body as it
                # arrives; the next message starts right after it.
                s.skip = total - len(buf)
                self._oversize(s, out, f"SIP message of {total} octets exceeds {self.max_message}")
                s.mode = _SIP
                continue
            if len(buf) < total:
                s.need = total
                return
            self._emit(s, total, out)

    def _frame_final(self, s: _Stream, out: list[Packet]) -> None:
        """Frame what is buffered, deciding the kind of a stream now if it still waits to be told."""
        self._frame(s, out)
        if s.mode == _NEW and s.buf:
            self._sniff(s, final=True)
            self._frame(s, out)

    def _sniff(self, s: _Stream, *, final: bool) -> bool:
        """Decide the stream's kind from its first octets in sequence; False while undecided.

        Waits only for octets that could still change the answer: the end of an HTTP header
        block that may be a WebSocket handshake (bounded by :data:`MAX_HANDSHAKE`), or the rest
        of a prefix the first octets begin (``HEP3``, ``GET ``, ``HTTP/1.1 101``, a TLS record
        header). A SIP start line is never waited on. ``final``: no more octets come before a
        hole or the end of the stream, decide with what is there.
        """
        buf = s.buf
        n = len(buf)
        if buf.startswith(hep.HEP3_MAGIC):
            s.mode, s.kind = _HEP, detect.HEP
            s.scan = 0
            return True
        if buf.startswith(_HTTP_STARTS) and not detect.is_sip_start(buf):
            # RFC 6455 §4.1: the handshake is an HTTP header block; Upgrade may be its last line.
            end = buf.find(b"\r\n\r\n", s.scan, MAX_HANDSHAKE)
            if end < 0 and n < MAX_HANDSHAKE and not final:
                s.scan = max(0, n - 3)
                return False
            kind = detect.classify_tcp(buf, 0, end + 4 if end >= 0 else min(n, MAX_HANDSHAKE))
        elif not final and n < 12 and any(p.startswith(buf) for p in _WAIT_PREFIXES):
            return False
        elif not final and n < 3 and 0x14 <= buf[0] <= 0x17 and (n == 1 or buf[1] == 3):
            return False  # perhaps a TLS record header (RFC 8446 §5.1)
        else:
            kind = detect.classify_tcp(buf, 0, n) if 0x14 <= buf[0] <= 0x17 else detect.OTHER_TCP
        s.scan = 0
        s.kind = kind
        if kind is detect.TLS:
            s.mode = _IGNORE  # encrypted: counted per conversation, never guessed at
            a, b = s.src, s.dst
            self.tls_conversations.add((a, b) if a <= b else (b, a))
        elif kind is detect.WEBSOCKET:
            s.mode = _WS  # RFC 7118: SIP inside WebSocket frames after the handshake
            s.ws_shaken = s.ws_open = False
            s.ws_msg, s.ws_segs, s.ws_size, s.ws_drop = [], [], 0, False
        else:
            s.mode = _HUNT
        return True

    def _resync(self, s: _Stream, why: str) -> None:
        if not s.warned:
            s.warned = True
            frame = s.segs[0].frame if s.segs else None
            self._warn(f"TCP {s.src} -> {s.dst}: {why}; resynchronising on the next SIP start line", frame)
        s.mode = _HUNT
        s.scan = s.sep = 0  # the search starts after offset 0, which is known not to be a start

    def _oversize(self, s: _Stream, out: list[Packet], why: str) -> None:
        frame = s.segs[-1].frame if s.segs else None
        self._warn(f"TCP {s.src} -> {s.dst}: {why}; handed up truncated", frame)
        self._emit(s, len(s.buf), out, truncated=True)
        s.mode = _HUNT

    # --- HEP3 over TCP --------------------------------------------------------------------------------

    def _hep_frames(self, s: _Stream, out: list[Packet]) -> None:
        """Cut HEP3 messages by their total length; each one that carries SIP is one packet."""
        buf = s.buf
        while buf:
            if s.skip:
                n = min(s.skip, len(buf))
                s.skip -= n
                self._consume(s, n, detect.HEP)
                continue
            if s.mode == _HEP_HUNT and not self._hep_hunt(s):
                return
            total = hep.v3_length(buf)
            if total == 0 and hep.HEP3_MAGIC.startswith(buf[:4]):
                return  # the header is still arriving
            if total <= 0:
                if buf.startswith(hep.HEP3_MAGIC):  # 6 octets or more are there
                    self._hep_resync(s, f"a HEP3 header with an impossible length ({buf[4] << 8 | buf[5]})")
                else:
                    self._hep_resync(s, "data that is not a HEP3 header")
                continue
            if total > self.max_message:
                frame = s.segs[0].frame if s.segs else None
                self._warn(
                    f"TCP {s.src} -> {s.dst}: HEP3 message of {total} octets exceeds "
                    f"{self.max_message}; skipped",
                    frame,
                )
                s.skip = total
                continue
            if len(buf) < total:
                return
            if not hep.v3_well_formed(buf, 0, total):
                self._hep_resync(s, f"a HEP3 header whose length ({total}) does not fit its chunks")
                continue
            h = hep.decode(buf, 0, total)
            if h is None or hep.sip_transport(h) is None:
                self._consume(s, total, detect.HEP)  # RTCP reports, logs, ... (as over UDP)
                continue
            self._hep_emit(s, h, total, out)

    def _hep_hunt(self, s: _Stream) -> bool:
        """Drop octets up to the next plausible HEP3 header; False while none is in the buffer."""
        buf = s.buf
        find = buf.find
        i = find(hep.HEP3_MAGIC)
        while i >= 0:
            if len(buf) - i < hep.V3_PLAUSIBLE:
                break  # a candidate still arriving
            if hep.v3_plausible(buf, i):
                if i:
                    self._consume(s, i, detect.HEP)
                s.mode = _HEP
                return True
            i = find(hep.HEP3_MAGIC, i + 1)
        keep = len(buf) - i if i >= 0 else 3  # the last octets may begin a magic
        if len(buf) > keep:
            self._consume(s, len(buf) - keep, detect.HEP)
        return False

    def _hep_resync(self, s: _Stream, why: str) -> None:
        if not s.warned:
            s.warned = True
            frame = s.segs[0].frame if s.segs else None
            self._warn(f"TCP {s.src} -> {s.dst}: {why}; resynchronising on the next HEP3 header", frame)
        self._consume(s, 1, detect.HEP)  # the search starts after the octet known not to begin one
        s.mode = _HEP_HUNT

    def _hep_emit(
        self, s: _Stream, h: hep.HepPacket, n: int, out: list[Packet], *, truncated: bool = False
    ) -> None:
        touched = self._consume(s, n, None)
        if not touched:
            return
        last, frames = _span(touched)
        p = hep.to_packet(
            h,
            frame=last.frame,
            frames=frames,
            timestamp=last.timestamp,
            file=self.file,
            truncated=truncated,
        )
        if p is not None:
            out.append(p)

    def _hep_leftover(self, s: _Stream, out: list[Packet]) -> None:
        """The stream ends or breaks inside a HEP3 message: hand up the SIP it began (truncated)."""
        buf = s.buf
        if s.skip or hep.v3_length(buf) <= len(buf):
            return  # no message in progress at the front (or one being skipped)
        h = hep.decode(buf, 0, len(buf), cut=True)
        if h is not None and hep.sip_transport(h, truncated=True) is not None:
            self._hep_emit(s, h, len(buf), out, truncated=True)

    # --- WebSocket (RFC 6455, RFC 7118) ------------------------------------------------------------

    def _ws_frames(self, s: _Stream, out: list[Packet]) -> None:
        """Skip the HTTP handshake, then cut WebSocket frames; each message is one SIP message."""
        buf = s.buf
        while buf:
            if not s.ws_shaken:
                n = websocket.handshake_length(buf, s.scan)
                if n < 0:
                    if len(buf) > self.max_message:
                        s.mode = _IGNORE
                        self._consume(s, len(buf), detect.WEBSOCKET)
                    else:
                        s.scan = max(0, len(buf) - 3)
                    return
                sip = websocket.offers_sip(buf[:n])
                self._consume(s, n, detect.WEBSOCKET)
                if not sip:
                    s.mode = _IGNORE  # another subprotocol: not SIP (RFC 7118 §4.1)
                    self._consume(s, len(buf), detect.WEBSOCKET)
                    return
                s.ws_shaken = True
                continue
            h = websocket.parse_header(buf)
            if h is None:
                return
            total = h.header_len + h.payload_len
            if h.payload_len > self.max_message:
                frame = s.segs[0].frame if s.segs else None
                self._warn(
                    f"TCP {s.src} -> {s.dst}: WebSocket frame of {h.payload_len} octets exceeds "
                    f"{self.max_message}; the rest of the stream is not decoded",
                    frame,
                )
                self._ws_leftover(s, out)
                s.mode = _IGNORE
                return
            if len(buf) < total:
                return
            if h.opcode >= 0x8:  # RFC 6455 §5.5: control frames, may sit inside a fragmented message
                self._consume(s, total, detect.WEBSOCKET)
                continue
            if h.opcode != websocket.OP_CONTINUATION:
                if s.ws_open:
                    self._ws_emit(s, out, truncated=True)  # a message that never got its FIN
                s.ws_open = True
            elif not s.ws_open or s.ws_drop:
                # Continuation of a message not seen, or of one handed up already (too long).
                self._consume(s, total, detect.WEBSOCKET)
                if h.fin:
                    s.ws_open = s.ws_drop = False
                continue
            over = self._ws_gather(s, h, total)
            if over or h.fin:
                self._ws_emit(s, out, truncated=over)
                if over and not h.fin:
                    s.ws_open = s.ws_drop = True  # its later frames are dropped up to its FIN

    def _ws_gather(self, s: _Stream, h: websocket.FrameHeader, n: int) -> bool:
        """Add the frame of ``n`` octets at the front of ``buf`` to the message in progress.

        A message is held up to ``max_message`` octets, as a SIP message on a plain stream (the
        frames' payloads are kept apart and joined once). True when the frame takes it beyond:
        the message is then to be handed up truncated with what fits, and its later frames
        dropped up to its FIN (one warning per message).
        """
        room = self.max_message - s.ws_size
        take = min(h.payload_len, room)
        buf = s.buf
        payload = websocket.unmask(bytes(buf[h.header_len : h.header_len + take]), h.mask)
        s.ws_segs.extend(self._consume(s, n, None))
        s.ws_msg.append(payload)
        s.ws_size += take
        if take == h.payload_len:
            return False
        frame = s.ws_segs[-1].frame if s.ws_segs else None
        self._warn(
            f"TCP {s.src} -> {s.dst}: WebSocket message longer than {self.max_message} octets; its "
            f"first {self.max_message} handed up truncated, the rest dropped",
            frame,
        )
        return True

    def _ws_leftover(self, s: _Stream, out: list[Packet]) -> None:
        """The stream ends or breaks: hand up a message in progress (truncated), drop the rest."""
        buf = s.buf
        if s.ws_shaken and buf:
            h = websocket.parse_header(buf)
            if h is not None and h.opcode < 0x8 and (h.opcode or s.ws_open):
                if h.opcode:
                    if s.ws_open:
                        self._ws_emit(s, out, truncated=True)
                    s.ws_open = True
                if not s.ws_drop:
                    # What arrived of the frame: its header is there, its payload perhaps not all.
                    cut = h._replace(payload_len=min(h.payload_len, len(buf) - h.header_len))
                    self._ws_gather(s, cut, len(buf))
        if s.ws_open:
            self._ws_emit(s, out, truncated=True)
        if buf:
            self._consume(s, len(buf), detect.WEBSOCKET)

    def _ws_emit(self, s: _Stream, out: list[Packet], *, truncated: bool = False) -> None:
        payload = b"".join(s.ws_msg)
        segs = s.ws_segs
        s.ws_msg, s.ws_segs, s.ws_open, s.ws_drop, s.ws_size = [], [], False, False, 0
        if not segs:
            return
        last, frames = _span(segs)
        if not (detect.is_sip_start(payload) or (truncated and detect.is_partial_sip_start(payload))):
            self.stats.count_non_sip(detect.WEBSOCKET, len(frames))
            return
        out.append(
            Packet(
                frame=last.frame,
                frames=frames,
                timestamp=last.timestamp,
                src=s.src,
                dst=s.dst,
                transport=Transport.WS,
                payload=payload,
                truncated=truncated,
                file=self.file,
            )
        )
