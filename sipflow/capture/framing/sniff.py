"""The first framer of every stream: tells the stream's kind from its first octets (sans-I/O).

:class:`Sniffer` decides once enough octets in sequence are there: ``HEP3`` →
:class:`~sipflow.capture.framing.resync.HepFramer`; an HTTP upgrade request or ``101``
response (RFC 6455 §4.1, §4.2.2; the decision waits for the end of its header block, up to
:data:`MAX_HANDSHAKE` octets, so that a handshake spread over several segments is recognised)
→ :class:`~sipflow.capture.framing.ws.WebSocketFramer`; a TLS record header (RFC 8446 §5.1) →
:class:`~sipflow.capture.framing.base.Opaque`; RFC 4571 framing seen
:data:`~sipflow.capture.framing.rtp.RFC4571_RUN` times in a row →
:class:`~sipflow.capture.framing.rtp.RtpFramer`; anything else →
:class:`~sipflow.capture.framing.resync.SipFramer` at once (a SIP start line is never waited
on).
"""

from __future__ import annotations

from typing import Final

from sipflow.capture import detect, hep
from sipflow.capture.framing.base import Framer, FramerContext, Opaque, StreamBytes, run
from sipflow.capture.framing.resync import HepFramer, SipFramer
from sipflow.capture.framing.rtp import RFC4571_RUN, RFC4571_SNIFFED, RtpFramer, rfc4571_run
from sipflow.capture.framing.ws import WebSocketFramer
from sipflow.capture.types import SipPayload

MAX_HANDSHAKE: Final = 16384
"""Longest HTTP header block waited for before a stream that opens like a WebSocket handshake
(``GET`` request, ``HTTP/1.1 101`` response) is classified from what has arrived."""

_HTTP_STARTS: Final = (b"GET ", b"HTTP/1.1 101")
"""How an RFC 6455 §4.1 opening handshake and its §4.2.2 response begin."""
_WAIT_PREFIXES: Final = (hep.HEP3_MAGIC, *_HTTP_STARTS)


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
