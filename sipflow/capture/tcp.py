"""TCP stream reassembly and SIP message framing (sans-I/O).

:class:`TcpReassembler` is fed TCP segments (addresses as raw octets, sequence numbers,
flags, payload, capture timestamp) and returns the SIP messages they complete, one
:class:`Packet` per message. Each direction of a connection is an independent byte stream:

* sequence numbers are compared modulo 2³² (RFC 9293 §3.4, wrap-around safe);
* segments ahead of the next expected byte wait in a bounded out-of-order store;
  retransmitted and overlapping octets are dropped (the first copy wins);
* SYN sets the initial sequence number, FIN and RST close the direction (RFC 9293 §3.5, §3.6);
  a direction picked up without its SYN starts at the first segment seen;
* bytes the capture never saw (a hole the peer acknowledged, a hole older than
  ``gap_timeout``, a frame cut by the snapshot length) end the message in progress, which is
  handed up flagged ``truncated``, and the stream resynchronises.

The byte stream is framed per RFC 3261 §18.3: a message's header ends at the first empty line
(CRLFCRLF), its body is ``Content-Length`` octets long (compact form ``l``, any case; absent
means 0). CRLFs between messages are keep-alives (RFC 5626 §3.5.1, RFC 3261 §7.5) and are
skipped. A stream that does not start with a SIP start line (picked up mid-message, or after a
hole) is searched for the next line that is one (:func:`find_sip_start`).

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

from sipflow.capture import detect, websocket
from sipflow.capture.ip import format_address
from sipflow.capture.packet import CaptureStats, Endpoint, Packet, Transport

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
ACK: Final = 0x10

_MASK: Final = 0xFFFFFFFF

MAX_LINE: Final = 16384
"""Longest start line waited for before a stream is declared out of sync."""

_HUNT: Final = 0
_SIP: Final = 1
_IGNORE: Final = 2
_WS: Final = 3

# RFC 3261 §20.14 Content-Length, §7.3.3 compact form "l"; header names are case-insensitive
# (§7.3.1) and the value may follow folded whitespace (LWS, §25.1).
_CONTENT_LENGTH: Final = re.compile(
    rb"\n(?:content-length|l)[ \t]*(?:\r?\n[ \t]+)?:[ \t]*(?:\r?\n[ \t]+)?(\d{1,12})", re.IGNORECASE
)
_CRLF_RUN: Final = re.compile(rb"[\r\n]*")

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


class _Segment:
    """The part of ``_Stream.buf`` one frame contributed."""

    __slots__ = ("frame", "left", "sip", "timestamp")

    def __init__(self, frame: int, timestamp: float, left: int) -> None:
        self.frame = frame
        self.timestamp = timestamp
        self.left = left
        self.sip = False


class _Stream:
    """One direction of a TCP connection."""

    __slots__ = (
        "buf",
        "closed",
        "dst",
        "fin_seq",
        "fresh",
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
        "skip",
        "src",
        "warned",
        "ws_msg",
        "ws_open",
        "ws_segs",
        "ws_shaken",
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
        self.mode = _HUNT
        self.kind = detect.OTHER_TCP
        self.fin_seq: int | None = None
        self.peer_ack: int | None = None
        self.closed = False
        self.last_ts = timestamp
        self.need = 0
        """Total length of the message at the front of ``buf`` once its header is complete."""
        self.scan = 0
        """Where to resume the search for the end of the header."""
        self.skip = 0
        """Body octets of an oversized message still to be dropped."""
        self.warned = False
        self.fresh = True
        """No payload seen yet: the first payload decides the stream's kind."""
        self.ws_shaken = False
        """WebSocket: the HTTP handshake is behind us, frames follow (RFC 6455 §4)."""
        self.ws_open = False
        """WebSocket: a data message has begun and awaits its FIN frame."""
        self.ws_msg: list[bytes] = []
        """WebSocket: unmasked payloads of the frames of the message in progress."""
        self.ws_segs: list[_Segment] = []
        """WebSocket: the segments that carried the message in progress."""


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
        self.tls_conversations: set[tuple[tuple[bytes, int], tuple[bytes, int]]] = set()
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
                    s.mode = _HUNT
                    s.next_seq = dseq
                    s.fin_seq = None
                    s.peer_ack = None
                    s.fresh = True
            if n:
                if s.fresh:
                    s.fresh = False
                    s.kind = detect.classify_tcp(data, 0, n)
                    if s.kind is detect.TLS:
                        s.mode = _IGNORE  # encrypted: counted per conversation, never guessed at
                        a, b = (src, sport), (dst, dport)
                        self.tls_conversations.add((a, b) if a <= b else (b, a))
                    elif s.kind is detect.WEBSOCKET:
                        s.mode = _WS  # RFC 7118: SIP inside WebSocket frames after the handshake
                        s.ws_shaken = s.ws_open = False
                        s.ws_msg, s.ws_segs = [], []
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
        while s.ooo:
            gap = self._first_ooo(s) - s.off
            if gap > 0:
                self._gap(s, gap, out)
            self._drain(s, out)
        self._frame(s, out)
        self._leftover(s, out)

    # --- bytes -------------------------------------------------------------------------------

    def _data(
        self, s: _Stream, seq: int, data: bytes, frame: int, ts: float, missing: int, out: list[Packet]
    ) -> None:
        rel = _signed(seq - s.next_seq)
        n = len(data)
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
        self._frame(s, out)
        s.next_seq = (s.next_seq + nbytes) & _MASK
        s.off += nbytes
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
        if s.mode == _SIP:
            frame = s.segs[-1].frame if s.segs else None
            self._warn(
                f"TCP {s.src} -> {s.dst}: {nbytes} octets missing from the capture; the message in "
                "progress is handed up truncated and the stream resynchronised",
                frame,
            )
        self._leftover(s, out)
        if s.mode != _IGNORE:
            s.mode = _HUNT

    def _leftover(self, s: _Stream, out: list[Packet]) -> None:
        """Hand up an incomplete message at the front of the buffer as truncated; drop the rest."""
        buf = s.buf
        if s.mode == _WS:
            self._ws_leftover(s, out)
            return
        if not buf:
            return
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
        last = max(touched, key=lambda seg: seg.frame)
        frames = tuple(sorted({seg.frame for seg in touched}))
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
            if s.mode == _IGNORE:
                self._consume(s, len(buf), s.kind)
                return
            if s.mode == _WS:
                self._ws_frames(s, out)
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
                i = detect.find_sip_start(buf)
                if i < 0:
                    # Keep the last, unfinished line: it may be the start of a start line.
                    keep_from = max(buf.rfind(b"\n") + 1, len(buf) - MAX_LINE)
                    if keep_from > 0:
                        self._consume(s, keep_from, s.kind)
                    if buf and not detect.TOKEN_START[buf[0]]:
                        self._consume(s, len(buf), s.kind)
                    return
                if i:
                    self._consume(s, i, s.kind)
                s.mode = _SIP
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
            eol = buf.find(b"\n", 0, MAX_LINE)
            if eol < 0:
                if len(buf) >= MAX_LINE or not detect.TOKEN_START[buf[0]]:
                    self._resync(s, "no SIP start line")
                    continue
                return
            if not detect.is_sip_start(buf, 0, eol + 1):
                self._resync(s, "data that is not a SIP start line")
                continue
            # The header ends at the first empty line; a sender that ends its start line with a
            # bare LF (not RFC 3261, seen in the wild) is expected to end the header with LFLF.
            if eol and buf[eol - 1] == 13:
                end, sep = buf.find(b"\r\n\r\n", s.scan), 4
            else:
                end, sep = buf.find(b"\n\n", s.scan), 2
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

    def _resync(self, s: _Stream, why: str) -> None:
        if not s.warned:
            s.warned = True
            frame = s.segs[0].frame if s.segs else None
            self._warn(f"TCP {s.src} -> {s.dst}: {why}; resynchronising on the next SIP start line", frame)
        s.mode = _HUNT  # the search starts after offset 0, which is known not to be a start

    def _oversize(self, s: _Stream, out: list[Packet], why: str) -> None:
        frame = s.segs[-1].frame if s.segs else None
        self._warn(f"TCP {s.src} -> {s.dst}: {why}; handed up truncated", frame)
        self._emit(s, len(s.buf), out, truncated=True)
        s.mode = _HUNT

    # --- WebSocket (RFC 6455, RFC 7118) ------------------------------------------------------------

    def _ws_frames(self, s: _Stream, out: list[Packet]) -> None:
        """Skip the HTTP handshake, then cut WebSocket frames; each message is one SIP message."""
        buf = s.buf
        while buf:
            if not s.ws_shaken:
                n = websocket.handshake_length(buf)
                if n < 0:
                    if len(buf) > self.max_message:
                        s.mode = _IGNORE
                        self._consume(s, len(buf), detect.WEBSOCKET)
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
            payload = websocket.unmask(bytes(buf[h.header_len : total]), h.mask)
            if h.opcode >= 0x8:  # RFC 6455 §5.5: control frames, may sit inside a fragmented message
                self._consume(s, total, detect.WEBSOCKET)
                continue
            if h.opcode != websocket.OP_CONTINUATION:
                if s.ws_open:
                    self._ws_emit(s, out, truncated=True)  # a message that never got its FIN
                s.ws_open = True
            elif not s.ws_open:
                self._consume(s, total, detect.WEBSOCKET)  # continuation of a message not seen
                continue
            s.ws_segs.extend(self._consume(s, total, None))
            s.ws_msg.append(payload)
            if h.fin:
                self._ws_emit(s, out)

    def _ws_leftover(self, s: _Stream, out: list[Packet]) -> None:
        """The stream ends or breaks: hand up a message in progress (truncated), drop the rest."""
        buf = s.buf
        if s.ws_shaken and buf:
            h = websocket.parse_header(buf)
            if h is not None and h.opcode < 0x8 and (h.opcode or s.ws_open):
                payload = websocket.unmask(bytes(buf[h.header_len : h.header_len + h.payload_len]), h.mask)
                if h.opcode:
                    if s.ws_open:
                        self._ws_emit(s, out, truncated=True)
                    s.ws_open = True
                s.ws_segs.extend(self._consume(s, len(buf), None))
                s.ws_msg.append(payload)
        if s.ws_open:
            self._ws_emit(s, out, truncated=True)
        if buf:
            self._consume(s, len(buf), detect.WEBSOCKET)

    def _ws_emit(self, s: _Stream, out: list[Packet], *, truncated: bool = False) -> None:
        payload = b"".join(s.ws_msg)
        segs = s.ws_segs
        s.ws_msg, s.ws_segs, s.ws_open = [], [], False
        if not segs:
            return
        frames = tuple(sorted({seg.frame for seg in segs}))
        if not (detect.is_sip_start(payload) or (truncated and detect.is_partial_sip_start(payload))):
            self.stats.count_non_sip(detect.WEBSOCKET, len(frames))
            return
        last = max(segs, key=lambda seg: seg.frame)
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
