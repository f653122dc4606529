"""RTCP sender and receiver reports (RFC 3550 §6.4), sans-I/O: bytes in, reports out, and what
the reports say of each RTP stream.

A compound RTCP packet (§6.1) is a run of packets, each with its version, count, type and
length in 32-bit words minus one. Sender reports (SR, type 200) and receiver reports (RR, 201)
carry report blocks: for one source (an SSRC) the reporter receives, the fraction and number
of its packets lost, the highest sequence number seen, the interarrival jitter (in the
source's timestamp units) and, to measure the round trip, the middle 32 bits of the NTP time of
the last SR received from that source (LSR) and the delay since (DLSR, in 1/65536 s). The other
packet types (SDES, BYE, APP, XR, feedback) are skipped by their length.

Round trip: RFC 3550 §6.4.1 computes it at the SR's sender as A - LSR - DLSR, A the report's
arrival in the sender's NTP clock. A capture has its own clock, so the round trip here is as
Wireshark computes it: the capture time of the report block minus the capture time of the SR
whose NTP middle bits are the block's LSR, minus DLSR; where that SR is not in the capture,
there is no round trip. Measured at one point of the path, it is the round trip seen from there.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import Final

__all__ = ["ReportBlock", "RtcpFigures", "RtcpReport", "RtcpTracker", "parse_compound"]

SR: Final = 200
RR: Final = 201
_HEADER: Final = struct.Struct("!BBH")
_SSRC: Final = struct.Struct("!I")
_SENDER_INFO: Final = struct.Struct("!IIIII")  # NTP seconds, fraction, RTP timestamp, packets, octets
_BLOCK: Final = struct.Struct("!IIIIII")
_KEEP: Final = 32
"""Sender reports remembered per SSRC for the round trip (a report block names one of the last
few; a few minutes of reports at the usual 5 s interval)."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One report block (RFC 3550 §6.4.1) about ``source``."""

    source: int
    fraction_lost: int
    """Lost since the reporter's previous report, in 1/256."""
    cumulative_lost: int
    """Signed: duplicates make it negative."""
    highest_sequence: int
    jitter: int
    """Interarrival jitter, in the source's RTP timestamp units."""
    lsr: int
    dlsr: int


@dataclass(frozen=True, slots=True)
class RtcpReport:
    """One SR or RR of a compound packet."""

    kind: int
    """``SR`` (200) or ``RR`` (201)."""
    ssrc: int
    """The reporter's own SSRC."""
    ntp_middle: int | None
    """An SR's NTP timestamp, middle 32 bits (what later LSR fields name); None for an RR."""
    blocks: tuple[ReportBlock, ...]


def parse_compound(
    data: bytes | bytearray, start: int = 0, end: int | None = None
) -> list[RtcpReport] | None:
    """The SR and RR packets of the compound RTCP packet ``data[start:end]``; None when it is
    not one (a version other than 2, a length past the end). Reports before a damaged packet
    are kept: a truncated capture still yields what it holds."""
    end = len(data) if end is None else min(end, len(data))
    out: list[RtcpReport] = []
    pos = start
    while pos + 4 <= end:
        first, ptype, words = _HEADER.unpack_from(data, pos)
        if first >> 6 != 2:
            return out or None
        length = 4 * (words + 1)
        if pos + length > end:
            return out or None
        count = first & 0x1F
        body = pos + 4
        if ptype in (SR, RR) and length >= 8:
            (ssrc,) = _SSRC.unpack_from(data, body)
            body += 4
            ntp: int | None = None
            if ptype == SR:
                if body + 20 > pos + length:
                    return out or None
                seconds, fraction, _ts, _packets, _octets = _SENDER_INFO.unpack_from(data, body)
                ntp = ((seconds & 0xFFFF) << 16) | (fraction >> 16)
                body += 20
            blocks = []
            for _ in range(count):
                if body + 24 > pos + length:
                    break
                source, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, body)
                cumulative = lost & 0xFFFFFF
                if cumulative & 0x800000:
                    cumulative -= 0x1000000
                blocks.append(ReportBlock(source, lost >> 24, cumulative, highest, jitter, lsr, dlsr))
                body += 24
            out.append(RtcpReport(ptype, ssrc, ntp, tuple(blocks)))
        pos += length
    return out if pos > start else None


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpFigures:
    """What the RTCP reports of one receiver said of one RTP stream."""

    reports: int
    """Report blocks about the stream."""
    last_fraction_lost_pct: float
    max_fraction_lost_pct: float
    cumulative_lost: int
    """As the last block said."""
    max_jitter_ms: float | None
    """The largest jitter reported, in ms (None: the stream's clock rate is not known)."""
    mean_round_trip_ms: float | None
    max_round_trip_ms: float | None
    """None: no block named a sender report of the capture."""


class _Reported:
    __slots__ = (
        "cumulative",
        "jitter",
        "last_fraction",
        "max_fraction",
        "max_rtt",
        "reports",
        "rtt_sum",
        "rtts",
    )

    def __init__(self) -> None:
        self.reports = self.last_fraction = self.max_fraction = self.cumulative = self.jitter = 0
        self.rtts = 0
        self.rtt_sum = self.max_rtt = 0.0


class RtcpTracker:
    """The reports of a capture, per (reporter's host, reported SSRC); feed :meth:`packet` the
    RTCP payloads in capture order. Memory grows with the streams, not with the reports."""

    def __init__(self) -> None:
        self._sent: dict[int, deque[tuple[int, float]]] = {}
        self._about: dict[tuple[str, int], _Reported] = {}
        self.packets = 0
        """Compound packets read."""
        self.malformed = 0
        """Payloads classified as RTCP that did not parse."""

    def packet(self, host: str, timestamp: float, data: bytes | bytearray, start: int, end: int) -> None:
        """One RTCP payload sent by ``host`` and captured at ``timestamp`` (seconds)."""
        reports = parse_compound(data, start, end)
        if reports is None:
            self.malformed += 1
            return
        self.packets += 1
        for report in reports:
            if report.ntp_middle is not None:
                sent = self._sent.get(report.ssrc)
                if sent is None:
                    sent = self._sent[report.ssrc] = deque(maxlen=_KEEP)
                sent.append((report.ntp_middle, timestamp))
            for block in report.blocks:
                if block.source == report.ssrc:
                    continue  # a report about the reporter's own stream says nothing of its path
                about = self._about.get((host, block.source))
                if about is None:
                    about = self._about[(host, block.source)] = _Reported()
                about.reports += 1
                about.last_fraction = block.fraction_lost
                about.max_fraction = max(about.max_fraction, block.fraction_lost)
                about.cumulative = block.cumulative_lost
                about.jitter = max(about.jitter, block.jitter)
                if block.lsr:
                    rtt = self._round_trip(block, timestamp)
                    if rtt is not None:
                        about.rtts += 1
                        about.rtt_sum += rtt
                        about.max_rtt = max(about.max_rtt, rtt)

    def _round_trip(self, block: ReportBlock, timestamp: float) -> float | None:
        for ntp, sent_at in reversed(self._sent.get(block.source, ())):
            if ntp == block.lsr:
                rtt = (timestamp - sent_at - block.dlsr / 65536.0) * 1000.0
                return rtt if rtt >= 0 else None  # clocks of two capture points: not a round trip
        return None

    def figures(self, receiver: str, ssrc: int, clock_rate: int | None) -> RtcpFigures | None:
        """What ``receiver`` reported of ``ssrc`` (None: no report); ``clock_rate`` converts
        the jitter to milliseconds."""
        about = self._about.get((receiver, ssrc))
        if about is None:
            return None
        return RtcpFigures(
            reports=about.reports,
            last_fraction_lost_pct=100.0 * about.last_fraction / 256,
            max_fraction_lost_pct=100.0 * about.max_fraction / 256,
            cumulative_lost=about.cumulative,
            max_jitter_ms=1000.0 * about.jitter / clock_rate if clock_rate else None,
            mean_round_trip_ms=about.rtt_sum / about.rtts if about.rtts else None,
            max_round_trip_ms=about.max_rtt if about.rtts else None,
        )
