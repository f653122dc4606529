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

The package holds one module per idea; every name is importable from here:

* :mod:`.base`: the interface (:class:`Framer`, :func:`run`), what framers are fed
  (:class:`StreamBytes`) and share (:class:`FramerContext`), and :class:`Opaque`;
* :mod:`.sniff`: :class:`Sniffer`, which tells a stream's kind;
* :mod:`.resync`: the framers that resynchronise after a hole, :class:`SipFramer` (RFC 3261
  §18.3) and :class:`HepFramer` (HEP3);
* :mod:`.ws`: :class:`WebSocketFramer` (RFC 6455, RFC 7118);
* :mod:`.rtp`: :class:`RtpFramer` and the RFC 4571 frame tests.
"""

from sipflow.capture.framing.base import (
    Framer,
    FramerContext,
    Opaque,
    Segment,
    StreamBytes,
    Warn,
    run,
    span,
)
from sipflow.capture.framing.resync import MAX_LINE, HepFramer, SipFramer, content_length
from sipflow.capture.framing.rtp import (
    RFC4571_RUN,
    RFC4571_SNIFFED,
    RTP_OVER_TCP,
    RtpFramer,
    rfc4571_frame,
    rfc4571_run,
)
from sipflow.capture.framing.sniff import MAX_HANDSHAKE, Sniffer
from sipflow.capture.framing.ws import WebSocketFramer

__all__ = [
    "MAX_HANDSHAKE",
    "MAX_LINE",
    "RFC4571_RUN",
    "RFC4571_SNIFFED",
    "RTP_OVER_TCP",
    "Framer",
    "FramerContext",
    "HepFramer",
    "Opaque",
    "RtpFramer",
    "Segment",
    "SipFramer",
    "Sniffer",
    "StreamBytes",
    "Warn",
    "WebSocketFramer",
    "content_length",
    "rfc4571_frame",
    "rfc4571_run",
    "run",
    "span",
]
