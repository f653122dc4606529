"""The framer interface, and what every framer is fed and shares (sans-I/O).

* :class:`StreamBytes`: the octets of one direction of a TCP connection that are in sequence
  and not framed yet, and the :class:`Segment` each frame contributed to them; every frame is
  counted once, by the kind of the framer that consumed its octets, unless it carried part of
  a SIP message (:meth:`StreamBytes.consume`);
* :class:`FramerContext`: what the framers of one reassembler share (where octets are counted,
  the warning callback, ``max_message``) and how a framed message becomes a packet;
* :class:`Framer`: the three calls every kind answers (``feed``, ``gap``, ``end``), and
  :func:`run`, which feeds a stream on through the framers it is handed to;
* :class:`Opaque`: the kind that frames nothing: counted, never decoded (TLS, RFC 8446 §5.1; a
  WebSocket stream given up).

The kinds that frame something are in the sibling modules (:mod:`.sniff`, :mod:`.resync`,
:mod:`.ws`, :mod:`.rtp`); the package's docstring describes them all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from sipflow.capture.sink import PayloadSink
from sipflow.capture.types import CaptureStats, Endpoint, SipPayload, Transport, make_sip_payload

Warn = Callable[[str, int | None], None]
"""Callback receiving a warning message and the frame it concerns."""

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
    sink: PayloadSink | None = None
    """Handed the packets framed out of RFC 4571 streams (:mod:`sipflow.capture.sink`)."""

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


# --- the kind that frames nothing ------------------------------------------------------------------


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
