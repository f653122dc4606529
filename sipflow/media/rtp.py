"""One RTP stream measured as it is captured: sequence, loss, delta and jitter (RFC 3550).

:func:`parse_header` reads the fixed header (RFC 3550 §5.1). :class:`StreamMeter` takes a
stream's packets in capture order, each with its arrival time, and keeps what the Wireshark RTP
analysis keeps (the figures of ``tshark -q -z rtp,streams``), in constant memory:

* *expected* packets from the first and the highest sequence number, counting wrap-arounds
  (RFC 3550 Appendix A.1), and *lost* = expected - received: negative when packets came twice;
* *sequence errors*: a packet that is not the successor of the last in-order one;
* *delta*: the time since the previous in-order packet; min, mean and max over the regular
  packets (not the first, not those with the marker bit, not comfort noise or what follows it,
  not those whose timestamp runs backwards);
* *jitter*: the interarrival jitter of RFC 3550 §6.4.1 (J += (|D| - J) / 16, D the difference
  between the arrival spacing and the RTP timestamp spacing), in milliseconds with the payload
  type's clock rate (RFC 3551, or an SDP ``a=rtpmap``); not computed where the clock rate is not
  known or for telephone events (RFC 4733 §2.2.1: their timestamp stays put).

Times are in milliseconds, as tshark shows them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, NamedTuple

from sipflow.media.payload_types import COMFORT_NOISE, STATIC

_HEADER: Final = struct.Struct("!BBHII").unpack_from


class RtpHeader(NamedTuple):
    """The fixed RTP header (RFC 3550 §5.1)."""

    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int


def parse_header(data: bytes | bytearray, start: int = 0, end: int | None = None) -> RtpHeader | None:
    """The header of the RTP packet ``data[start:end]``, or None if it is not version 2 or is
    shorter than its fixed header and CSRC list."""
    if end is None:
        end = len(data)
    if end - start < 12:
        return None
    b0, b1, sequence, timestamp, ssrc = _HEADER(data, start)
    if b0 >> 6 != 2 or end - start < 12 + 4 * (b0 & 0x0F):
        return None
    return RtpHeader(bool(b1 & 0x80), b1 & 0x7F, sequence, timestamp, ssrc)


def clock_rate(pt: int, clock_rates: dict[int, int], events: frozenset[int]) -> int:
    """The clock rate the jitter of payload type ``pt`` is computed with, 0 for none: RFC 3551's
    for a static type, the SDP's (``clock_rates``) for a dynamic one, none for telephone events
    (``events``)."""
    if pt < 96:
        known = STATIC.get(pt)
        return known.clock_rate if known is not None else 0
    if pt in events:
        return 0
    return clock_rates.get(pt, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamFigures:
    """What :class:`StreamMeter` measured of one stream."""

    packets: int
    """Packets received (duplicates included)."""
    expected: int
    """Packets the sequence numbers span, from the first to the highest (RFC 3550 A.3)."""
    lost: int
    """``expected - packets``: negative when packets arrived more than once."""
    sequence_errors: int
    """Packets that were not the successor of the last in-order one (lost before, late, twice)."""
    min_delta_ms: float | None
    mean_delta_ms: float | None
    max_delta_ms: float | None
    """Arrival spacing of the regular packets (None: a stream of one packet)."""
    min_jitter_ms: float | None
    mean_jitter_ms: float | None
    max_jitter_ms: float | None
    """Interarrival jitter (RFC 3550 §6.4.1) over the regular packets (None: no clock rate)."""
    clock_rate: int | None
    """The clock rate the jitter was computed with."""
    payload_types: tuple[int, ...]
    """The payload types seen, in order of first appearance."""

    @property
    def lost_pct(self) -> float | None:
        """``lost`` as a share of ``expected``, in per cent (None: nothing expected)."""
        return 100.0 * self.lost / self.expected if self.expected else None


class StreamMeter:
    """The measurements of one RTP stream (one SSRC from one source to one destination).

    Feed :meth:`packet` the stream's packets in capture order; ``clock_rates`` maps a dynamic
    payload type to its clock rate (from the SDP ``a=rtpmap`` lines), and ``events`` names the
    dynamic types that are telephone events (RFC 4733), whose timestamps do not advance.

    ``sipflow/capture/_fastpath.c`` has its twin, ``Meter``, which the compiled fast path
    feeds without a Python call per packet: the same steps in the same order (this class is
    the reference; tests compare the two on every capture with RTP).
    """

    __slots__ = (
        "_first_ts",
        "_last_nominal",
        "_mean_delta",
        "_mean_jitter",
        "_regular",
        "_time",
        "_under",
        "clock_rate",
        "clock_rates",
        "cycles",
        "delta",
        "events",
        "jitter",
        "last_frame",
        "last_seq",
        "last_time",
        "max_delta",
        "max_jitter",
        "min_delta",
        "min_jitter",
        "packets",
        "payload_types",
        "pt",
        "sequence_errors",
        "start_seq",
        "stop_seq",
    )

    def __init__(
        self, *, clock_rates: dict[int, int] | None = None, events: frozenset[int] = frozenset()
    ) -> None:
        self.clock_rates = clock_rates or {}
        self.events = events
        self.packets = 0
        self.payload_types: list[int] = []
        self.start_seq = self.stop_seq = self.last_seq = 0
        self.cycles = 0
        self._under = False
        self.sequence_errors = 0
        self.pt = -1
        self.clock_rate: int | None = None
        self._first_ts = 0
        self._time = 0.0
        """Arrival time (ms) of the last in-order packet."""
        self._last_nominal = 0.0
        self.delta = 0.0
        self.jitter = 0.0
        self.min_delta = self.min_jitter = -1.0
        self.max_delta = self.max_jitter = 0.0
        self._mean_delta = self._mean_jitter = 0.0
        self._regular = 0
        self.last_frame = 0
        self.last_time = 0.0
        """Frame and capture time of the stream's last packet (kept by the collector)."""

    def _rate(self, pt: int) -> int:
        return clock_rate(pt, self.clock_rates, self.events)

    def packet(self, header: RtpHeader, arrival_ms: float) -> None:
        """One packet of the stream, arrived at ``arrival_ms`` (any fixed origin)."""
        seq, ts, pt = header.sequence, header.timestamp, header.payload_type
        if pt not in self.payload_types:
            self.payload_types.append(pt)
        if not self.packets:
            self.packets = 1
            self.start_seq = self.stop_seq = self.last_seq = seq
            self._first_ts = ts
            self._time = arrival_ms
            self.pt = pt
            return
        # In time order: the timestamp less than half the 32-bit range after the first one's.
        in_time = (ts - self._first_ts) & 0xFFFFFFFF < 0x80000000
        # Wrap-arounds of the sequence number (RFC 3550 A.1): below the first one again.
        if in_time and not self._under and (seq < self.start_seq or (seq == 0 and self.stop_seq == 65535)):
            self.cycles += 1
            self._under = True
        elif in_time and self._under and seq > self.start_seq:
            self._under = False
        last = self.last_seq
        if in_time and (seq == last + 1 or (last == 65535 and seq == 0)):
            self.last_seq = seq
        elif in_time and (last + 1 < seq or last - seq > 0xFF00):
            self.last_seq = seq  # packets lost before this one (or a wrap whose packets were)
            self.sequence_errors += 1
        elif last + 1 > seq:
            self.sequence_errors += 1  # late or twice
        previous_pt = self.pt
        self.pt = pt
        rate = self._rate(pt)
        if in_time:
            if rate:
                self.clock_rate = rate
                nominal = ((ts - self._first_ts) & 0xFFFFFFFF) / (rate / 1000)
                diff = abs(arrival_ms - (self._time + nominal - self._last_nominal))
                self.jitter += (diff - self.jitter) / 16  # RFC 3550 §6.4.1
                self._last_nominal = nominal
            self.delta = arrival_ms - self._time
        regular = (
            in_time and not header.marker and pt not in COMFORT_NOISE and previous_pt not in COMFORT_NOISE
        )
        if regular:
            delta = self.delta
            self.max_delta = max(self.max_delta, delta)
            if self.min_delta < 0 or delta < self.min_delta:
                self.min_delta = delta
            n = self.packets  # the deltas so far, this one included
            self._mean_delta += (delta - self._mean_delta) / n
            if rate:
                jitter = self.jitter
                self.max_jitter = max(self.max_jitter, jitter)
                if self.min_jitter < 0 or jitter < self.min_jitter:
                    self.min_jitter = jitter
                self._mean_jitter += (jitter - self._mean_jitter) / n
            self._regular += 1
        if in_time:
            self._time = arrival_ms
        self.stop_seq = seq
        self.packets += 1

    def figures(self) -> StreamFigures:
        expected = self.stop_seq + 65536 * self.cycles - self.start_seq + 1 if self.packets else 0
        deltas = self._regular > 0
        jitter = deltas and self.clock_rate is not None and self.min_jitter >= 0
        return StreamFigures(
            packets=self.packets,
            expected=expected,
            lost=expected - self.packets,
            sequence_errors=self.sequence_errors,
            min_delta_ms=self.min_delta if deltas else None,
            mean_delta_ms=self._mean_delta if deltas else None,
            max_delta_ms=self.max_delta if deltas else None,
            min_jitter_ms=self.min_jitter if jitter else None,
            mean_jitter_ms=self._mean_jitter if jitter else None,
            max_jitter_ms=self.max_jitter if jitter else None,
            clock_rate=self.clock_rate,
            payload_types=tuple(self.payload_types),
        )
