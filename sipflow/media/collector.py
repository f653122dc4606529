"""RTP streams out of a capture: the payload sink that sorts RTP packets into streams.

A stream is one SSRC from one transport address to another (RFC 3550 §3: a synchronization
source; the same SSRC seen on two address pairs is two streams, as tshark lists them). The
collector is handed every UDP payload the decoder classified as RTP (``capture.detect.RTP``:
version 2, a known payload type, between unprivileged ports), keeps one
:class:`~sipflow.media.rtp.StreamMeter` per stream and forgets the packets: memory grows with
the streams, not with the packets.

The clock rate of a dynamic payload type comes from the SDP of the stream's receiver (RFC 3264
§5.1: the payload type numbers of a stream are those its receiver listed): told the session
descriptions as they are captured (:meth:`StreamCollector.describe`), the collector gives a
stream the ``a=rtpmap`` clock rates of the last description of its destination address and
port, as tshark does with the conversations SDP sets up. Told the messages instead
(:meth:`StreamCollector.offer`), it reads only which addresses each description names (the
compiled digest) and parses one in full when a stream to one of them starts: a capture of
signalling alone parses no SDP for its media.

The packets of a stream's telephone-event payload types (RFC 4733, ``a=rtpmap:N
telephone-event/8000``) also go to an :class:`~sipflow.media.dtmf.EventTracker`, made on the
stream's first event packet: :attr:`RtpStream.dtmf` holds the digits.

RTCP payloads go to an :class:`~sipflow.media.rtcp.RtcpTracker`: what the sender and receiver
reports of a stream's destination host said of its SSRC is :attr:`RtpStream.rtcp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sipflow.capture.detect import RTCP, RTP
from sipflow.capture.fastpath import FASTPATH
from sipflow.capture.ip import format_address
from sipflow.capture.types import Endpoint
from sipflow.media.dtmf import DtmfDigit, EventTracker, rtp_payload
from sipflow.media.payload_types import COMFORT_NOISE, STATIC
from sipflow.media.rtcp import RtcpFigures, RtcpTracker
from sipflow.media.rtp import RtpHeader, StreamFigures, StreamMeter, clock_rate, parse_header
from sipflow.sip.sdp import Media, SessionDescription, find_sdp, find_sdp_digest

if TYPE_CHECKING:
    from sipflow.sip.message import SipRequest, SipResponse

_RTP: Final = RTP
_RTCP: Final = RTCP
_COMFORT_NOISE: Final = bytes(pt in COMFORT_NOISE for pt in range(128))
_PENDING_MAX: Final = 1 << 16
"""Addresses with a description not read yet (``StreamCollector.offer``) before all are read."""

StreamKey = tuple[bytes, int, bytes, int, int]
"""(source address octets, source port, destination address octets, destination port, SSRC)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpStream:
    """One RTP stream of a capture, measured."""

    src: Endpoint
    dst: Endpoint
    ssrc: int
    first_frame: int
    last_frame: int
    first_time: float
    """Capture time of the first packet, seconds since the Unix epoch."""
    last_time: float
    figures: StreamFigures
    codecs: tuple[str, ...]
    """The encoding name of each payload type of ``figures.payload_types``: from the receiver's
    ``a=rtpmap``, else RFC 3551's static table, else the number."""
    dtmf: tuple[DtmfDigit, ...] = ()
    """The DTMF digits of the stream's telephone events (RFC 4733), in order."""
    rtcp: RtcpFigures | None = None
    """What the RTCP reports of the stream's receiver (its destination host) said of it."""


class _Entry:
    __slots__ = (
        "events",
        "first_frame",
        "first_time",
        "meter",
        "names",
        "rates",
        "tracker",
    )

    def __init__(
        self,
        frame: int,
        timestamp: float,
        meter: Any,
        names: dict[int, str],
        rates: dict[int, int],
        events: frozenset[int],
    ) -> None:
        self.first_frame = frame
        self.first_time = timestamp
        self.meter = meter
        """A :class:`StreamMeter`, or its compiled twin ``_fastpath.Meter`` (the same methods
        and the same ``last_frame``, ``last_time``)."""
        self.names = names
        self.rates = rates
        self.events = events
        """The stream's telephone-event payload types."""
        self.tracker: EventTracker | None = None
        """The stream's DTMF events, from its first telephone-event packet on."""

    def event(
        self, frame: int, timestamp: float, header: RtpHeader, data: bytes, start: int, end: int
    ) -> None:
        """A telephone-event packet of the stream (RFC 4733): its payload to the tracker."""
        span = rtp_payload(data, start, end)
        if span is None:
            return
        tracker = self.tracker
        if tracker is None:
            tracker = self.tracker = EventTracker()
        rate = self.rates.get(header.payload_type, 0)
        tracker.packet(frame, timestamp, data, span[0], span[1], header.timestamp, rate)


def _figures(meter: Any) -> StreamFigures:
    figures = meter.figures()
    return figures if isinstance(figures, StreamFigures) else StreamFigures(**figures)


def _codec_name(pt: int, names: dict[int, str]) -> str:
    if pt in names:
        return names[pt]
    static = STATIC.get(pt)
    return static.name if static is not None else str(pt)


class StreamCollector:
    """A :class:`~sipflow.capture.sink.PayloadSink` that measures every RTP stream.

    ``clock_rates`` maps a dynamic payload type to its clock rate for every stream (from SDP
    ``a=rtpmap``), ``events`` names the dynamic types that are telephone events; without them,
    jitter is computed for the static payload types only.

    With the compiled fast path (``compiled``; None, the default: where it was built), each stream is
    measured by a ``_fastpath.Meter``, and the IPv4 streams are listed in :attr:`fast_streams`:
    the decoder's record walk then measures their packets in C, and hands this collector only
    each stream's first packet, its telephone events and what the fast path does not take.
    """

    def __init__(
        self,
        *,
        clock_rates: dict[int, int] | None = None,
        events: frozenset[int] = frozenset(),
        compiled: bool | None = None,
    ) -> None:
        self._streams: dict[StreamKey, _Entry] = {}
        fast = FASTPATH if compiled is not False else None
        if compiled and fast is None:
            raise RuntimeError("the compiled fast path (sipflow.capture._fastpath) was not built")
        self._fast = fast
        self.fast_streams: Any = fast.StreamTable() if fast is not None else None
        """The streams the compiled fast path measures (``capture.decode.Decoder.skipper``)."""
        self._origin: float | None = None
        self.rtcp = RtcpTracker()
        """The RTCP sender and receiver reports (RFC 3550 §6.4), by reporter and stream."""
        self.clock_rates = clock_rates or {}
        self.events = events
        self._described: dict[tuple[str, int], tuple[dict[int, int], frozenset[int], dict[int, str]]] = {}
        """(address, port) of an m= line → its dynamic payload types' clock rates, events, names."""
        self._pending: dict[tuple[str, int], SipRequest | SipResponse] = {}
        """(address, port) → the last message whose SDP described it, not read yet (``offer``):
        newer than what ``_described`` holds for it."""

    def describe(self, description: SessionDescription) -> None:
        """A session description just captured: its m= lines' payload type bindings hold for
        the streams to their addresses from now on (RFC 4566 §5.14, §6 ``a=rtpmap``)."""
        for media in description.media:
            if media.port and media.connection is not None:
                key = (media.connection, media.port)
                self._pending.pop(key, None)  # older than this one
                self._described[key] = self._binding(media)

    def offer(self, message: SipRequest | SipResponse) -> None:
        """A message just captured: what ``describe`` does with the session description it
        carries (if any), the description parsed only when a stream to one of its addresses
        starts (its digest names them: ``sip.sdp.find_sdp_digest``, the ``(address, port)``
        pairs ``describe`` binds)."""
        digest = find_sdp_digest(message)
        if digest is None:
            return
        pending = self._pending
        for key in digest.media:
            if key[0]:
                pending[key] = message
        if len(pending) > _PENDING_MAX:  # read them all now: the same bindings, bounded memory
            for key in list(pending):
                self._resolve(key)

    def _resolve(self, key: tuple[str, int]) -> None:
        """The pending description of ``key`` read (``describe`` of its m= lines for ``key``)."""
        description = find_sdp(self._pending.pop(key))
        if description is None:  # not so: the digest raises where the parse does
            return
        for media in description.media:
            if (media.connection, media.port) == key:
                self._described[key] = self._binding(media)

    def _binding(self, media: Media) -> tuple[dict[int, int], frozenset[int], dict[int, str]]:
        """The clock rates, telephone-event types and encoding names an m= line binds."""
        rates = dict(self.clock_rates)
        events = set(self.events)
        names: dict[int, str] = {}
        for codec in media.codecs:
            if not codec.payload_type.isdigit():
                continue
            pt = int(codec.payload_type)
            if codec.name:
                names[pt] = codec.name
            if pt >= 96 and codec.clock_rate:
                rates[pt] = codec.clock_rate
                if (codec.name or "").lower() == "telephone-event":
                    events.add(pt)
        return rates, frozenset(events), names

    def datagram(
        self,
        kind: str,
        frame: int,
        timestamp: float,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        data: bytes,
        start: int,
        end: int,
    ) -> None:
        if kind is not _RTP:
            if kind is _RTCP:
                self.rtcp.packet(format_address(src), timestamp, data, start, end)
            return
        header = parse_header(data, start, end)
        if header is None:
            return
        origin = self._origin
        if origin is None:
            origin = self._origin = timestamp
            if self.fast_streams is not None:
                self.fast_streams.origin = origin
        key = (src, sport, dst, dport, header.ssrc)
        entry = self._streams.get(key)
        if entry is None:
            entry = self._streams[key] = self._entry(key, frame, timestamp)
        meter = entry.meter
        meter.last_frame = frame
        meter.last_time = timestamp
        # Milliseconds from the first RTP packet: small numbers keep the float's precision.
        meter.packet(header, (timestamp - origin) * 1000.0)
        if header.payload_type in entry.events:
            entry.event(frame, timestamp, header, data, start, end)

    def _entry(self, key: StreamKey, frame: int, timestamp: float) -> _Entry:
        """A new stream: the receiver's description of its address and port binds the payload
        types; with the fast path, an IPv4 stream's later packets are measured in C."""
        src, sport, dst, dport, ssrc = key
        receiver = (format_address(dst), dport)
        if receiver in self._pending:
            self._resolve(receiver)
        found = self._described.get(receiver)
        rates, events, names = found if found is not None else (self.clock_rates, self.events, {})
        table = self.fast_streams
        meter: Any
        if table is None:
            meter = StreamMeter(clock_rates=rates, events=events)
        else:
            assert self._fast is not None  # a table is there with the compiled module only
            meter = self._fast.Meter(
                [clock_rate(pt, rates, events) for pt in range(128)],
                bytes(pt in events for pt in range(128)),
                _COMFORT_NOISE,
            )
            if len(src) == 4 and len(dst) == 4:
                table.add(
                    src + sport.to_bytes(2, "big") + dst + dport.to_bytes(2, "big") + ssrc.to_bytes(4, "big"),
                    meter,
                )
        return _Entry(frame, timestamp, meter, names, rates, events)

    def framed(
        self,
        kind: str,
        frame: int,
        timestamp: float,
        src: Endpoint,
        dst: Endpoint,
        data: bytes | bytearray,
        start: int,
        end: int,
    ) -> None:
        """RTP over TCP (RFC 4571) is not measured yet: its timing is the TCP stream's."""

    def streams(self) -> list[RtpStream]:
        """Every stream, in order of its first packet."""
        out = [
            RtpStream(
                src=Endpoint(format_address(key[0]), key[1]),
                dst=Endpoint(format_address(key[2]), key[3]),
                ssrc=key[4],
                first_frame=e.first_frame,
                last_frame=e.meter.last_frame,
                first_time=e.first_time,
                last_time=e.meter.last_time,
                figures=(figures := _figures(e.meter)),
                codecs=tuple(_codec_name(pt, e.names) for pt in figures.payload_types),
                dtmf=tuple(e.tracker.digits()) if e.tracker is not None else (),
                rtcp=self.rtcp.figures(format_address(key[2]), key[4], figures.clock_rate),
            )
            for key, e in self._streams.items()
        ]
        out.sort(key=lambda s: s.first_frame)
        return out
