"""The framer of SIP over WebSocket streams, RFC 6455 and RFC 7118 (sans-I/O).

:class:`WebSocketFramer` skips the HTTP upgrade handshake (RFC 6455 §4; a handshake that offers
no ``sip`` subprotocol, RFC 7118 §4.1, gives the stream up), then cuts frames (§5.2): a message
(a text or binary frame and its continuation frames, §5.4) is one SIP message, held up to
``max_message`` octets, beyond which what came is handed up truncated and the rest of it
dropped; control frames (§5.5) are counted. Frames cannot be found again after a hole: the
stream is then given up (:class:`~sipflow.capture.framing.base.Opaque`). Compressed messages
(``permessage-deflate``, RFC 7692) are not inflated: they frame no SIP and are counted as
WebSocket. The frame codec is :mod:`sipflow.capture.websocket`.
"""

from __future__ import annotations

from sipflow.capture import detect, websocket
from sipflow.capture.framing.base import Framer, FramerContext, Opaque, Segment, StreamBytes
from sipflow.capture.types import SipPayload, Transport


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
