"""Framers: each kind of TCP byte stream, cut into the messages it carries (sans-I/O).

:mod:`sipflow.capture.tcp` puts a direction's octets in sequence and hands them to the
stream's framer, one class per stream kind (as h11's ``READERS`` maps each state to the object
that reads it). A framer owns its state and answers three calls, each handing out packets
(appended to ``out``) and warnings (through :attr:`FramerContext.warn`):

* :meth:`Framer.feed`: the stream's contiguous octets (:class:`StreamBytes`) grew: cut off
  the messages they complete;
* :meth:`Framer.gap`: octets right after them were never captured (a hole): end or skip the
  message in progress and resynchronise as the kind allows;
* :meth:`Framer.end`: the stream ends: hand up the message in progress, truncated.

``feed`` and ``gap`` return the framer for what follows: itself, or the one it hands the stream
to (:func:`run` feeds on until the stream stays put). The kinds:

* :class:`Sniffer`, the first framer of every stream: decides the kind from the first octets
  in sequence, once enough of them are there: ``HEP3`` → :class:`HepFramer`; an HTTP upgrade
  request or ``101`` response (the decision waits for the end of its header block, up to
  :data:`MAX_HANDSHAKE` octets, so that a handshake spread over several segments is
  recognised) → :class:`WebSocketFramer`; a TLS record header → :class:`Opaque`; RFC 4571
  framing seen :data:`RFC4571_RUN` times in a row → :class:`RtpFramer`; anything else →
  :class:`SipFramer` at once.
* :class:`SipFramer`, RFC 3261 §18.3: a message's header ends at the first empty line
  (CRLFCRLF), its body is ``Content-Length`` octets long (compact form ``l``, any case; absent
  means 0). CRLFs between messages are keep-alives (RFC 5626 §3.5.1, RFC 3261 §7.5) and are
  skipped. A stream that does not start with a SIP start line (picked up mid-message, or after
  a hole) is searched for the next line that is one (:func:`detect.find_sip_start`); octets
  searched in vain are not searched again as more arrive, so each octet costs O(1) however the
  stream is cut into segments. HEP3 headers found while searching hand the stream to
  :class:`HepFramer`.
* :class:`HepFramer`: HEP3 messages back to back, each framed by its 16-bit total length and
  decoded like HEP over UDP (inner addresses and time); resynchronises on the next plausible
  HEP3 header.
* :class:`WebSocketFramer`, RFC 6455 and RFC 7118: the HTTP handshake, then frames; a message
  (a text or binary frame and its continuation frames) is one SIP message, held up to
  ``max_message`` octets, beyond which what came is handed up truncated and the rest of it
  dropped. Frames cannot be found again after a hole: the stream is then given up
  (:class:`Opaque`). Compressed messages (``permessage-deflate``, RFC 7692) are not inflated:
  they frame no SIP and are counted as WebSocket.
* :class:`RtpFramer`, RFC 4571: a 16-bit length, then an RTP or RTCP packet (or, on an
  ICE-TCP stream, STUN, RFC 6544); counted, for the media analysis to plug into.
* :class:`Opaque`: counted by kind, never decoded (TLS, a WebSocket stream given up).

Every frame is accounted for exactly once in :attr:`CaptureStats.non_sip` unless it carried
part of a SIP message (:meth:`StreamBytes.consume`): its octets are counted by the kind of the
framer that consumed them (``other TCP``, ``SIP keep-alive``, ``HEP``, ``WebSocket``, ``TLS``,
:data:`RTP_OVER_TCP`). Memory is bounded per stream by ``max_message`` (and 64 KiB for RFC 4571).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final

from sipflow.capture import detect, hep, websocket
from sipflow.capture.types import CaptureStats, Endpoint, SipPayload, Transport, make_sip_payload

MAX_LINE: Final = 16384
"""Longest start line waited for before a stream is declared out of sync."""

MAX_HANDSHAKE: Final = 16384
"""Longest HTTP header block waited for before a stream that opens like a WebSocket handshake
(``GET`` request, ``HTTP/1.1 101`` response) is classified from what has arrived."""

RTP_OVER_TCP: Final = "RTP over TCP"
"""Kind in :attr:`CaptureStats.non_sip`: the frames of an RFC 4571 stream (RTP, RTCP, STUN)."""

RFC4571_RUN: Final = 3
"""RFC 4571 frames in a row (each length leading to the next plausible RTP/RTCP header) that
identify a stream as RTP over TCP, when it is sniffed or resynchronised."""

RFC4571_SNIFFED: Final = 0x0600
"""Frame lengths (RTP/RTCP packet octets) below which a length prefix is plausible when sniffing
or resynchronising: an RTP packet that fits an Ethernet MTU (RFC 4571 streams mostly carry what
was made for UDP: ICE-TCP, RFC 6544), and a first octet (0-5) that no SIP, HEP3, HTTP or TLS
stream starts with, so that none of them is ever taken for RTP or waits on the sniffer."""

Warn = Callable[[str, int | None], None]
"""Callback receiving a warning message and the frame it concerns."""

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
_RTP_KIND: Final = detect.RTP_KIND


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


# --- the stream's octets ---------------------------------------------------------------------------


class Segment:
    """The part of :attr:`StreamBytes.data` one frame contributed."""

    __slots__ = ("frame", "left", "sip", "timestamp")

    def __init__(self, frame: int, timestamp: float, left: int) -> None:
        self.frame = frame
        self.timestamp = timestamp
        self.left = left
        """Its octets still in the buffer."""
        self.sip = False
        """Some of its octets belonged to a SIP message (the frame is then not counted as non-SIP)."""


def span(segs: list[Segment]) -> tuple[Segment, tuple[int, ...]]:
    """The segment with the last frame among ``segs`` (it completes the message: its frame and
    time are the message's) and every frame they came in, sorted."""
    if len(segs) == 1:  # the common case: a message in one segment
        seg = segs[0]
        return seg, (seg.frame,)
    return max(segs, key=lambda seg: seg.frame), tuple(sorted({seg.frame for seg in segs}))


class StreamBytes:
    """The octets of one direction of a connection that are in sequence and not framed yet, and
    the frames they came in (what a framer is fed)."""

    __slots__ = ("data", "dst", "segs", "src", "stats", "warned")

    def __init__(self, src: Endpoint, dst: Endpoint, stats: CaptureStats) -> None:
        self.src = src
        self.dst = dst
        self.stats = stats
        self.data = bytearray()
        self.segs: deque[Segment] = deque()
        self.warned = False
        """The direction's one warning about octets out of step was given (whatever its framers)."""

    def __len__(self) -> int:
        return len(self.data)

    def append(self, data: bytes, frame: int, timestamp: float) -> None:
        """The next octets in sequence, from ``frame``."""
        self.data += data
        self.segs.append(Segment(frame, timestamp, len(data)))

    def consume(self, n: int, kind: str | None) -> list[Segment]:
        """Remove ``n`` octets from the front; ``kind`` None means they belong to a SIP message.

        Returns the segments that contributed to them when ``kind`` is None. A segment whose
        octets are all gone and none of which were SIP is counted as ``kind``.
        """
        del self.data[:n]
        touched: list[Segment] = []
        segs = self.segs
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
            elif not seg.left:
                segs.popleft()
                if not seg.sip:
                    count(kind)
        return touched

    @property
    def first_frame(self) -> int | None:
        """The frame of the oldest octets buffered (None when empty)."""
        return self.segs[0].frame if self.segs else None

    @property
    def last_frame(self) -> int | None:
        """The frame of the newest octets buffered (None when empty)."""
        return self.segs[-1].frame if self.segs else None


@dataclass(frozen=True, slots=True, kw_only=True)
class FramerContext:
    """What the framers of one reassembler share."""

    stats: CaptureStats
    """Where octets that frame no SIP are counted."""
    warn: Warn
    file: str
    """Copied into every packet."""
    max_message: int
    """Largest message (SIP header + body, HEP3 message, WebSocket message) buffered."""
    tls_conversations: set[tuple[Endpoint, Endpoint]]
    """TCP conversations (endpoint pairs, either direction) whose first payload was a TLS record."""

    def warn_stream(self, b: StreamBytes, text: str, frame: int | None) -> None:
        self.warn(f"TCP {b.src} -> {b.dst}: {text}", frame)

    def packet(
        self, b: StreamBytes, segs: list[Segment], transport: Transport, payload: bytes, truncated: bool
    ) -> SipPayload:
        """The packet of a message framed out of ``segs`` of the stream ``b``."""
        last, frames = span(segs)
        return make_sip_payload(
            frame=last.frame,
            frames=frames,
            timestamp=last.timestamp,
            src=b.src,
            dst=b.dst,
            transport=transport,
            payload=payload,
            truncated=truncated,
            file=self.file,
        )


# --- the interface -----------------------------------------------------------------------------------


class Framer(ABC):
    """Cuts one kind of byte stream into messages; one instance per stream direction."""

    __slots__ = ("ctx", "kind")

    decodes: ClassVar[bool] = True
    """False: the stream is no longer reassembled, each segment is counted as :attr:`kind`."""

    def __init__(self, ctx: FramerContext, kind: str) -> None:
        self.ctx = ctx
        self.kind = kind
        """What the stream's octets that frame nothing count as in :attr:`CaptureStats.non_sip`."""

    @abstractmethod
    def feed(self, b: StreamBytes, out: list[SipPayload]) -> Framer:
        """``b`` grew: frame what it holds; return the framer for what follows."""

    @abstractmethod
    def gap(self, b: StreamBytes, nbytes: int, out: list[SipPayload]) -> Framer:
        """``nbytes`` octets after those in ``b`` were never captured (called after :meth:`feed`);
        return the framer for the octets after the hole."""

    @abstractmethod
    def end(self, b: StreamBytes, out: list[SipPayload]) -> None:
        """The stream ends (called after :meth:`feed`): hand up a message in progress
        (truncated), count the rest; ``b`` is left empty."""


def run(framer: Framer, b: StreamBytes, out: list[SipPayload]) -> Framer:
    """Feed ``b`` to ``framer`` and to each framer it hands the stream to; the last one."""
    while (nxt := framer.feed(b, out)) is not framer:
        framer = nxt
    return framer


# --- the kinds -------------------------------------------------------------------------------------


class Sniffer(Framer):
    """A stream whose kind is not known yet (no octet in sequence, or too few to tell)."""

    __slots__ = ("scan",)

    def __init__(self, ctx: FramerContext) -> None:
        super().__init__(ctx, detect.OTHER_TCP)
        self.scan = 0
        """Where to resume the search for the end of an HTTP header block."""

    def feed(self, b: StreamBytes, out: list[SipPayload]) -> Framer:
        if not b.data:
            return self
        nxt = self._sniff(b, final=False)
        return self if nxt is None else nxt

    def gap(self, b: StreamBytes, nbytes: int, out: list[SipPayload]) -> Framer:
        if not b.data:
            return self  # nothing in sequence yet: the octets after the hole will tell the kind
        return run(self._decide(b), b, out).gap(b, nbytes, out)

    def end(self, b: StreamBytes, out: list[SipPayload]) -> None:
        if b.data:
            run(self._decide(b), b, out).end(b, out)

    def _decide(self, b: StreamBytes) -> Framer:
        nxt = self._sniff(b, final=True)
        assert nxt is not None  # a final decision is always taken
        return nxt

    def _sniff(self, b: StreamBytes, *, final: bool) -> Framer | None:
        """The framer for the stream's kind, from its first octets; None while undecided.

        Waits only for octets that could still change the answer: the end of an HTTP header
        block that may be a WebSocket handshake (bounded by :data:`MAX_HANDSHAKE`), the rest of
        a prefix the first octets begin (``HEP3``, ``GET ``, ``HTTP/1.1 101``, a TLS record
        header), or the rest of a run of RFC 4571 frames (a first octet below 6, which no SIP
        start line has, then at least an RTP version octet). A SIP start line is never waited on;
        a stream whose first 1 or 2 octets come alone is framed as SIP, as it always was.
        ``final``: no more octets come before a hole or the end of the stream, decide with what
        is there.
        """
        buf = b.data
        n = len(buf)
        ctx = self.ctx
        if buf.startswith(hep.HEP3_MAGIC):
            return HepFramer(ctx)
        if buf.startswith(_HTTP_STARTS) and not detect.is_sip_start(buf):
            # RFC 6455 §4.1: the handshake is an HTTP header block; Upgrade may be its last line.
            end = buf.find(b"\r\n\r\n", self.scan, MAX_HANDSHAKE)
            if end < 0 and n < MAX_HANDSHAKE and not final:
                self.scan = max(0, n - 3)
                return None
            kind = detect.classify_tcp(buf, 0, end + 4 if end >= 0 else min(n, MAX_HANDSHAKE))
        elif not final and n < 12 and any(p.startswith(buf) for p in _WAIT_PREFIXES):
            return None
        elif not final and n < 3 and 0x14 <= buf[0] <= 0x17 and (n == 1 or buf[1] == 3):
            return None  # perhaps a TLS record header (RFC 8446 §5.1)
        elif (
            buf[0] < RFC4571_SNIFFED >> 8
            and n >= 3  # the length and the RTP version: fewer octets are no evidence to wait on
            and (rtp := rfc4571_run(buf, 0)) >= 0
            and not (final and rtp < RFC4571_RUN)
        ):
            return RtpFramer(ctx) if rtp >= RFC4571_RUN else None
        else:
            kind = detect.classify_tcp(buf, 0, n) if 0x14 <= buf[0] <= 0x17 else detect.OTHER_TCP
        if kind is detect.TLS:
            a, z = b.src, b.dst  # encrypted: counted per conversation, never guessed at
            ctx.tls_conversations.add((a, z) if a <= z else (z, a))
            return Opaque(ctx, detect.TLS)
        if kind is detect.WEBSOCKET:
            return WebSocketFramer(ctx)  # RFC 7118: SIP inside WebSocket frames after the handshake
        return SipFramer(ctx)


class Opaque(Framer):
    """Counted by kind, never decoded: TLS, a WebSocket stream given up."""

    __slots__ = ()
    decodes = False

    def feed(self, b: StreamBytes, out: list[SipPayload]) -> Framer:
        if b.data:
            b.consume(len(b.data), self.kind)
        return self

    def gap(self, b: StreamBytes, nbytes: int, out: list[SipPayload]) -> Framer:
        return self

    def end(self, b: StreamBytes, out: list[SipPayload]) -> None:
        self.feed(b, out)


class _Resynchronising(Framer):
    """A framer of messages back to back that, after a hole, hands up the message in progress
    (truncated) and hunts for the next one's start: SIP and HEP3."""

    __slots__ = ("hunting", "skip")

    MESSAGE: ClassVar[str] = "message"
    """What the warning about a hole calls the message in progress."""

    hunting: bool
    """Searching for the next message's start (False: in step with the stream's messages)."""
    skip: int
    """Octets of an oversized message still to be dropped."""

    def gap(self, b: StreamBytes, nbytes: int, out: list[SipPayload]) -> Framer:
        if self.skip >= nbytes:
            self.skip -= nbytes  # the hole is inside octets being dropped anyway: still in sync
            return self
        self.skip = 0
        if not self.hunting:
            self.ctx.warn_stream(
                b,
                f"{nbytes} octets missing from the capture; the {self.MESSAGE} in progress is handed "
                "up truncated and the stream resynchronised",
                b.last_frame,
            )
        self.end(b, out)
        self.hunting = True
        return self


class SipFramer(_Resynchronising):
    """SIP messages on a stream, framed by their Content-Length (RFC 3261 §18.3)."""

    __slots__ = ("need", "scan", "sep")

    def __init__(self, ctx: FramerContext) -> None:
        super().__init__(ctx, detect.OTHER_TCP)
        self.hunting = True
        """Searching for a SIP start line (False: in step with the stream's messages)."""
        self.need = 0
        """Total length of the message at the front of the buffer once its header is complete."""
        self.scan = 0
        """Where to resume a search: for the end of the header, or, hunting, the octets already
        searched in vain for a SIP start line (they hold no line feed)."""
        self.sep = 0
        """Length of the empty line ending the header at the front of the buffer (4: CRLFCRLF,
        2: LFLF) once its start line has been checked; 0 before."""
        self.skip = 0
        """Body octets of an oversized message still to be dropped."""

    def _consume(self, b: StreamBytes, n: int, kind: str | None) -> list[Segment]:
        self.need = self.scan = self.sep = 0  # positions in the buffer, whose front moves
        return b.consume(n, kind)

    def feed(self, b: StreamBytes, out: list[SipPayload]) -> Framer:
        buf = b.data
        max_message = self.ctx.max_message
        while buf:
            if self.skip:
                n = min(self.skip, len(buf))
                self.skip -= n
                self._consume(b, n, None)
                continue
            if self.hunting:
                skip = _CRLF_RUN.match(buf).end()  # type: ignore[union-attr]  # always matches
                if skip:
                    self._consume(b, skip, detect.SIP_KEEPALIVE)
                    continue
                # Octets searched in vain before hold no line feed (the search kept only the
                # unfinished last line): unless a line ends in the new ones, only a Status-Line
                # can have been completed, and only by them. Each octet is searched O(1) times.
                searched = self.scan
                last_nl = buf.rfind(b"\n", searched)
                if searched and last_nl < 0:
                    i = _status_line_from(buf, searched - 11)  # 11: "SIP/2.0 NNN" may straddle
                else:
                    i = detect.find_sip_start(buf)
                if i and hep.hep3_before(buf, i):
                    # HEP3 messages picked up mid-stream: the SIP inside them is read through
                    # their headers, never found by the SIP search.
                    return HepFramer(self.ctx, hunting=True)
                if i < 0:
                    # Keep the last, unfinished line: it may be the start of a start line.
                    keep_from = max(last_nl + 1, len(buf) - MAX_LINE)
                    if keep_from > 0:
                        self._consume(b, keep_from, self.kind)
                    if buf and not detect.TOKEN_START[buf[0]]:
                        self._consume(b, len(buf), self.kind)
                    self.scan = len(buf)
                    return self
                if i:
                    self._consume(b, i, self.kind)
                self.hunting = False
                self.scan = self.sep = 0
            if self.need:
                if len(buf) < self.need:
                    return self
                self._emit(b, self.need, out)
                continue
            # RFC 5626 §3.5.1 keep-alives and RFC 3261 §7.5 leading CRLFs.
            skip = _CRLF_RUN.match(buf).end()  # type: ignore[union-attr]  # always matches
            if skip:
                self._consume(b, skip, detect.SIP_KEEPALIVE)
                continue
            if not self.sep:
                # The start line, checked once per message; ``scan``: no line feed before it.
                eol = buf.find(b"\n", self.scan, MAX_LINE)
                if eol < 0:
                    if len(buf) >= MAX_LINE or not detect.TOKEN_START[buf[0]]:
                        self._resync(b, "no SIP start line")
                        continue
                    self.scan = len(buf)
                    return self
                if not detect.is_sip_start(buf, 0, eol + 1):
                    self._resync(b, "data that is not a SIP start line")
                    continue
                # The header ends at the first empty line; a sender that ends its start line with
                # a bare LF (not RFC 3261, seen in the wild) is expected to end the header with LFLF.
                self.sep = 4 if eol and buf[eol - 1] == 13 else 2
                self.scan = max(0, eol - 1)
            sep = self.sep
            end = buf.find(b"\r\n\r\n" if sep == 4 else b"\n\n", self.scan)
            if end < 0:
                if len(buf) > max_message:
                    self._oversize(b, out, f"SIP header longer than {max_message} octets")
                    continue
                self.scan = max(0, len(buf) - 3)
                return self
            clen = content_length(buf, end) or 0
            total = end + sep + clen
            if total > max_message and len(buf) < total:
                # Too big to wait for: hand up what is here, drop the rest of the body as it
                # arrives; the next message starts right after it.
                self.skip = total - len(buf)
                self._oversize(b, out, f"SIP message of {total} octets exceeds {max_message}")
                self.hunting = False
                continue
            if len(buf) < total:
                self.need = total
                return self
            self._emit(b, total, out)
        return self

    def end(self, b: StreamBytes, out: list[SipPayload]) -> None:
        buf = b.data
        if not buf:
            return
        if not self.hunting:
            skip = _CRLF_RUN.match(buf).end()  # type: ignore[union-attr]  # always matches
            if skip:
                self._consume(b, skip, detect.SIP_KEEPALIVE)
            if buf and (detect.is_sip_start(buf, 0) or detect.is_partial_sip_start(buf, 0)):
                self._emit(b, len(buf), out, truncated=True)
                return
        else:
            i = detect.find_sip_start(buf)
            if i >= 0:
                self._consume(b, i, self.kind)
                self._emit(b, len(buf), out, truncated=True)
                return
        if buf:
            self._consume(b, len(buf), self.kind)

    def _resync(self, b: StreamBytes, why: str) -> None:
        if not b.warned:
            b.warned = True
            self.ctx.warn_stream(b, f"{why}; resynchronising on the next SIP start line", b.first_frame)
        self.hunting = True
        self.scan = self.sep = 0  # the search starts after offset 0, which is known not to be a start

    def _oversize(self, b: StreamBytes, out: list[SipPayload], why: str) -> None:
        self.ctx.warn_stream(b, f"{why}; handed up truncated", b.last_frame)
        self._emit(b, len(b.data), out, truncated=True)
        self.hunting = True

    def _emit(self, b: StreamBytes, n: int, out: list[SipPayload], *, truncated: bool = False) -> None:
        payload = bytes(b.data[:n])
        self.need = self.scan = self.sep = 0  # as _consume (inlined: once per message)
        touched = b.consume(n, None)
        if touched:
            out.append(self.ctx.packet(b, touched, Transport.TCP, payload, truncated))


class HepFramer(_Resynchronising):
    """HEP3 messages back to back, each framed by its 16-bit total length (HEP3 spec)."""

    __slots__ = ()

    MESSAGE = "HEP3 message"

    def __init__(self, ctx: FramerContext, *, hunting: bool = False) -> None:
        super().__init__(ctx, detect.HEP)
        self.hunting = hunting
        """Searching for the next HEP3 header (after junk, a hole, or a mid-stream pickup)."""
        self.skip = 0
        """Octets of an oversized message still to be dropped."""

    def feed(self, b: StreamBytes, out: list[SipPayload]) -> Framer:
        """Cut HEP3 messages by their total length; each one that carries SIP is one packet."""
        buf = b.data
        max_message = self.ctx.max_message
        while buf:
            if self.skip:
                n = min(self.skip, len(buf))
                self.skip -= n
                b.consume(n, detect.HEP)
                continue
            if self.hunting and not self._hunt(b):
                return self
            total = hep.v3_length(buf)
            if total == 0 and hep.HEP3_MAGIC.startswith(buf[:4]):
                return self  # the header is still arriving
            if total <= 0:
                if buf.startswith(hep.HEP3_MAGIC):  # 6 octets or more are there
                    self._resync(b, f"a HEP3 header with an impossible length ({buf[4] << 8 | buf[5]})")
                else:
                    self._resync(b, "data that is not a HEP3 header")
                continue
            if total > max_message:
                self.ctx.warn_stream(
                    b, f"HEP3 message of {total} octets exceeds {max_message}; skipped", b.first_frame
                )
                self.skip = total
                continue
            if len(buf) < total:
                return self
            if not hep.v3_well_formed(buf, 0, total):
                self._resync(b, f"a HEP3 header whose length ({total}) does not fit its chunks")
                continue
            h = hep.decode(buf, 0, total)
            if h is None or hep.sip_transport(h) is None:
                b.consume(total, detect.HEP)  # RTCP reports, logs, ... (as over UDP)
                continue
            self._emit(b, h, total, out)
        return self

    def end(self, b: StreamBytes, out: list[SipPayload]) -> None:
        """Hand up the SIP a HEP3 message cut short began (truncated); count the rest."""
        buf = b.data
        if not buf:
            return
        if not self.hunting and not self.skip and hep.v3_length(buf) > len(buf):
            h = hep.decode(buf, 0, len(buf), cut=True)
            if h is not None and hep.sip_transport(h, truncated=True) is not None:
                self._emit(b, h, len(buf), out, truncated=True)
        if buf:
            b.consume(len(buf), detect.HEP)

    def _hunt(self, b: StreamBytes) -> bool:
        """Drop octets up to the next plausible HEP3 header; False while none is in the buffer."""
        buf = b.data
        find = buf.find
        i = find(hep.HEP3_MAGIC)
        while i >= 0:
            if len(buf) - i < hep.V3_PLAUSIBLE:
                break  # a candidate still arriving
            if hep.v3_plausible(buf, i):
                if i:
                    b.consume(i, detect.HEP)
                self.hunting = False
                return True
            i = find(hep.HEP3_MAGIC, i + 1)
        keep = len(buf) - i if i >= 0 else 3  # the last octets may begin a magic
        if len(buf) > keep:
            b.consume(len(buf) - keep, detect.HEP)
        return False

    def _resync(self, b: StreamBytes, why: str) -> None:
        if not b.warned:
            b.warned = True
            self.ctx.warn_stream(b, f"{why}; resynchronising on the next HEP3 header", b.first_frame)
        b.consume(1, detect.HEP)  # the search starts after the octet known not to begin one
        self.hunting = True

    def _emit(
        self, b: StreamBytes, h: hep.HepPacket, n: int, out: list[SipPayload], *, truncated: bool = False
    ) -> None:
        touched = b.consume(n, None)
        if not touched:
            return
        last, frames = span(touched)
        p = hep.to_packet(
            h,
            frame=last.frame,
            frames=frames,
            timestamp=last.timestamp,
            file=self.ctx.file,
            truncated=truncated,
        )
        if p is not None:
            out.append(p)


class WebSocketFramer(Framer):
    """The HTTP upgrade handshake, then WebSocket frames carrying SIP (RFC 6455, RFC 7118)."""

    __slots__ = ("drop", "open", "parts", "scan", "segs", "shaken", "size")

    def __init__(self, ctx: FramerContext) -> None:
        super().__init__(ctx, detect.WEBSOCKET)
        self.shaken = False
        """The HTTP handshake is behind us, frames follow (RFC 6455 §4)."""
        self.scan = 0
        """Where to resume the search for the end of the handshake."""
        self.open = False
        """A data message has begun and awaits its FIN frame."""
        self.parts: list[bytes] = []
        """The unmasked payloads of the message in progress (joined once, when it is complete)."""
        self.segs: list[Segment] = []
        """The segments that carried the message in progress."""
        self.size = 0
        """Octets in ``parts``."""
        self.drop = False
        """The message in progress outgrew ``max_message``, was handed up truncated, and its
        remaining frames are dropped up to its FIN."""

    def feed(self, b: StreamBytes, out: list[SipPayload]) -> Framer:
        """Skip the HTTP handshake, then cut WebSocket frames; each message is one SIP message."""
        buf = b.data
        max_message = self.ctx.max_message
        while buf:
            if not self.shaken:
                n = websocket.handshake_length(buf, self.scan)
                if n < 0:
                    if len(buf) > max_message:
                        b.consume(len(buf), detect.WEBSOCKET)
                        return Opaque(self.ctx, detect.WEBSOCKET)
                    self.scan = max(0, len(buf) - 3)
                    return self
                sip = websocket.offers_sip(buf[:n])
                b.consume(n, detect.WEBSOCKET)
                self.scan = 0
                if not sip:
                    b.consume(len(buf), detect.WEBSOCKET)
                    return Opaque(self.ctx, detect.WEBSOCKET)  # another subprotocol (RFC 7118 §4.1)
                self.shaken = True
                continue
            h = websocket.parse_header(buf)
            if h is None:
                return self
            total = h.header_len + h.payload_len
            if h.payload_len > max_message:
                self.ctx.warn_stream(
                    b,
                    f"WebSocket frame of {h.payload_len} octets exceeds {max_message}; the rest of the "
                    "stream is not decoded",
                    b.first_frame,
                )
                self.end(b, out)
                return Opaque(self.ctx, detect.WEBSOCKET)
            if len(buf) < total:
                return self
            if h.opcode >= 0x8:  # RFC 6455 §5.5: control frames, may sit inside a fragmented message
                b.consume(total, detect.WEBSOCKET)
                continue
            if h.opcode != websocket.OP_CONTINUATION:
                if self.open:
                    self._emit(b, out, truncated=True)  # a message that never got its FIN
                self.open = True
            elif not self.open or self.drop:
                # Continuation of a message not seen, or of one handed up already (too long).
                b.consume(total, detect.WEBSOCKET)
                if h.fin:
                    self.open = self.drop = False
                continue
            over = self._gather(b, h, total)
            if over or h.fin:
                self._emit(b, out, truncated=over)
                if over and not h.fin:
                    self.open = self.drop = True  # its later frames are dropped up to its FIN
        return self

    def gap(self, b: StreamBytes, nbytes: int, out: list[SipPayload]) -> Framer:
        # WebSocket frames cannot be found again after a hole: give the stream up.
        self.ctx.warn_stream(
            b,
            f"{nbytes} octets missing from a WebSocket stream; the rest of the stream is not decoded",
            b.last_frame,
        )
        self.end(b, out)
        return Opaque(self.ctx, detect.WEBSOCKET)

    def end(self, b: StreamBytes, out: list[SipPayload]) -> None:
        """Hand up a message in progress (truncated), drop the rest."""
        buf = b.data
        if self.shaken and buf:
            h = websocket.parse_header(buf)
            if h is not None and h.opcode < 0x8 and (h.opcode or self.open):
                if h.opcode:
                    if self.open:
                        self._emit(b, out, truncated=True)
                    self.open = True
                if not self.drop:
                    # What arrived of the frame: its header is there, its payload perhaps not all.
                    cut = h._replace(payload_len=min(h.payload_len, len(buf) - h.header_len))
                    self._gather(b, cut, len(buf))
        if self.open:
            self._emit(b, out, truncated=True)
        if buf:
            b.consume(len(buf), detect.WEBSOCKET)

    def _gather(self, b: StreamBytes, h: websocket.FrameHeader, n: int) -> bool:
        """Add the frame of ``n`` octets at the front of the buffer to the message in progress.

        A message is held up to ``max_message`` octets, as a SIP message on a plain stream (the
        frames' payloads are kept apart and joined once). True when the frame takes it beyond:
        the message is then to be handed up truncated with what fits, and its later frames
        dropped up to its FIN (one warning per message).
        """
        max_message = self.ctx.max_message
        take = min(h.payload_len, max_message - self.size)
        payload = websocket.unmask(bytes(b.data[h.header_len : h.header_len + take]), h.mask)
        self.segs.extend(b.consume(n, None))
        self.parts.append(payload)
        self.size += take
        if take == h.payload_len:
            return False
        self.ctx.warn_stream(
            b,
            f"WebSocket message longer than {max_message} octets; its first {max_message} handed up "
            "truncated, the rest dropped",
            self.segs[-1].frame if self.segs else None,
        )
        return True

    def _emit(self, b: StreamBytes, out: list[SipPayload], *, truncated: bool = False) -> None:
        payload = b"".join(self.parts)
        segs = self.segs
        self.parts, self.segs, self.open, self.drop, self.size = [], [], False, False, 0
        if not segs:
            return
        if not (detect.is_sip_start(payload) or (truncated and detect.is_partial_sip_start(payload))):
            self.ctx.stats.count_non_sip(detect.WEBSOCKET, len({seg.frame for seg in segs}))
            return
        out.append(self.ctx.packet(b, segs, Transport.WS, payload, truncated))


# --- RTP and RTCP over TCP (RFC 4571) ------------------------------------------------------------

_RFC4571_CANDIDATE: Final = re.compile(rb"[\x00-%c].[\x80-\xbf]" % ((RFC4571_SNIFFED - 1) >> 8), re.DOTALL)
"""Where an RFC 4571 frame of a sniffed length may begin: length octets, an RTP version-2 octet."""


def rfc4571_frame(buf: bytes | bytearray, i: int) -> int:
    """Octets of the RFC 4571 frame at ``buf[i]`` (2-octet length and packet) when its packet
    begins like an RTP (RFC 3550 §5.1) or RTCP (§6.4) one; 0 while the octets there (fewer
    than 6) do not tell; -1 when it does not.

    RTP: version 2, a payload type of RFC 3551 §6 or dynamic, at least the fixed header and its
    CSRC list. RTCP (RFC 5761 §4 packet types 192-223): version 2, its first packet fitting.
    """
    have = len(buf) - i
    if have < 3:
        return 0
    b0 = buf[i + 2]
    if not 0x80 <= b0 < 0xC0:
        return -1
    kind = _RTP_KIND[buf[i + 3]] if have > 3 else detect.RTP
    if kind is None:
        return -1
    if have < 6:
        return 0
    n = buf[i] << 8 | buf[i + 1]
    if kind is detect.RTP:
        ok = n >= 12 + 4 * (b0 & 0x0F)
    elif kind is detect.RTCP:
        ok = n >= 8 and 4 * ((buf[i + 4] << 8 | buf[i + 5]) + 1) <= n
    else:
        ok = False
    return 2 + n if ok else -1


def rfc4571_run(buf: bytes | bytearray, i: int, limit: int = RFC4571_SNIFFED) -> int:
    """How many RFC 4571 frames of RTP or RTCP follow each other from ``buf[i]``, each shorter
    than ``limit`` octets, up to :data:`RFC4571_RUN`; -1 when the run breaks before that.

    Less than :data:`RFC4571_RUN`: the run is intact as far as the buffer goes (more octets may
    complete it).
    """
    count = 0
    while count < RFC4571_RUN:
        n = rfc4571_frame(buf, i)
        if n == 0:
            return count
        if n < 0 or n - 2 >= limit:
            return -1
        count += 1
        i += n
    return count


class RtpFramer(Framer):
    """RTP and RTCP packets, each after its 16-bit length (RFC 4571 §2), counted.

    The length is trusted while in step; a packet that does not begin like RTP, RTCP or STUN
    (RFC 7983 §7: first octet 0-3; ICE-TCP, RFC 6544) shows the stream out of step, which is
    then searched for the next :data:`RFC4571_RUN` frames in a row. A hole inside a frame of
    known length keeps the stream in step. The media analysis is to plug in at
    :meth:`_packet`.
    """

    __slots__ = ("hunting", "others", "rtcp", "rtp", "skip")

    def __init__(self, ctx: FramerContext) -> None:
        super().__init__(ctx, RTP_OVER_TCP)
        self.hunting = False
        """Searching for the next run of frames (after junk or a hole)."""
        self.skip = 0
        """Octets of a frame cut by a hole still to be dropped (the stream is still in step)."""
        self.rtp = 0
        """RTP packets framed."""
        self.rtcp = 0
        """RTCP (compound) packets framed."""
        self.others = 0
        """Other packets framed (STUN)."""

    def feed(self, b: StreamBytes, out: list[SipPayload]) -> Framer:
        buf = b.data
        while buf:
            if self.skip:
                n = min(self.skip, len(buf))
                self.skip -= n
                b.consume(n, RTP_OVER_TCP)
                continue
            if self.hunting and not self._hunt(b):
                return self
            if len(buf) < 3:
                return self
            total = 2 + (buf[0] << 8 | buf[1])
            b0 = buf[2]
            if 0x80 <= b0 < 0xC0:
                n = rfc4571_frame(buf, 0)
                if n == 0:
                    return self  # the RTP/RTCP header is still arriving
                ok = n > 0
            else:
                ok = b0 < 4 and total >= 22  # RFC 8489 §5: a 20-octet STUN header
            if not ok:
                if not b.warned:
                    b.warned = True
                    self.ctx.warn_stream(
                        b,
                        "data that is not an RTP, RTCP or STUN packet on an RFC 4571 stream; "
                        "resynchronising on the next run of RTP/RTCP packets",
                        b.first_frame,
                    )
                b.consume(1, RTP_OVER_TCP)
                self.hunting = True
                continue
            if len(buf) < total:
                return self
            self._packet(buf, total)
            b.consume(total, RTP_OVER_TCP)
        return self

    def gap(self, b: StreamBytes, nbytes: int, out: list[SipPayload]) -> Framer:
        if self.skip >= nbytes:
            self.skip -= nbytes
            return self
        buf = b.data
        if not self.hunting and not self.skip and len(buf) >= 2:
            left = 2 + (buf[0] << 8 | buf[1]) - len(buf)  # octets of the frame in progress to come
            if nbytes <= left:
                self.skip = left - nbytes  # the hole ends inside the frame: still in step
                b.consume(len(buf), RTP_OVER_TCP)
                return self
        self.skip = 0
        self.end(b, out)
        self.hunting = True
        return self

    def end(self, b: StreamBytes, out: list[SipPayload]) -> None:
        if b.data:
            b.consume(len(b.data), RTP_OVER_TCP)

    def _hunt(self, b: StreamBytes) -> bool:
        """Drop octets up to the next run of frames; False while none is in the buffer."""
        buf = b.data
        i = 0
        while True:
            m = _RFC4571_CANDIDATE.search(buf, i)
            if m is None:
                i = max(i, len(buf) - 2)  # the last two octets may begin a frame
                break
            i = m.start()
            run_ = rfc4571_run(buf, i)
            if run_ >= RFC4571_RUN:
                if i:
                    b.consume(i, RTP_OVER_TCP)
                self.hunting = False
                return True
            if run_ >= 0:
                break  # a run still arriving: wait for it there
            i += 1
        if i > 0:
            b.consume(i, RTP_OVER_TCP)
        return False

    def _packet(self, buf: bytearray, total: int) -> None:
        """One RFC 4571 frame of ``total`` octets at the front of ``buf``: RTP, RTCP or STUN."""
        if buf[2] < 0x80:
            self.others += 1
        elif _RTP_KIND[buf[3]] is detect.RTCP:
            self.rtcp += 1
        else:
            self.rtp += 1
