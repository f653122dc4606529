"""The RTP streams as a table (``sipflow media``) and as JSON objects, one row per stream.

The columns of ``tshark -q -z rtp,streams``, with the codec named and the call the stream
belongs to. Packet-derived text (addresses come from headers; codec names from SDP) goes through
``clean``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sipflow.media.collector import RtpStream
from sipflow.media.dtmf import DtmfDigit
from sipflow.media.quality import primary_codec, quality
from sipflow.media.rtcp import RtcpFigures
from sipflow.model.call import Call
from sipflow.model.media import StreamSdp
from sipflow.render.text import clean

_HEADINGS = (
    "#",
    "Src",
    "Dst",
    "SSRC",
    "Codec",
    "Pkts",
    "Lost",
    "Max Δ ms",
    "Mean J ms",
    "Max J ms",
    "Frames",
    "Call",
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _lost(stream: RtpStream) -> str:
    f = stream.figures
    return f"{f.lost} ({f.lost_pct or 0.0:.1f}%)"


_RTCP_HEADINGS = ("RTCP", "Rep. lost", "Rep. J ms", "RTT ms")
"""The columns added when some stream's receiver sent RTCP: report blocks about the stream, the
cumulative loss the last one gave, the highest jitter reported, the mean round trip."""


def _rtcp_cells(stream: RtpStream) -> tuple[str, ...]:
    r = stream.rtcp
    if r is None:
        return ("", "", "", "")
    return (
        str(r.reports),
        f"{r.cumulative_lost} ({r.last_fraction_lost_pct:.1f}%)",
        _ms(r.max_jitter_ms),
        _ms(r.mean_round_trip_ms),
    )


def media_rows(streams: Sequence[RtpStream], calls: Sequence[Call | None]) -> list[tuple[str, ...]]:
    """One row of cells per stream: ``_HEADINGS``'s columns, and ``_RTCP_HEADINGS``'s before the
    frames when some stream has RTCP reports."""
    with_rtcp = any(s.rtcp is not None for s in streams)
    rows: list[tuple[str, ...]] = []
    for number, (stream, call) in enumerate(zip(streams, calls, strict=True), start=1):
        f = stream.figures
        rows.append(
            (
                str(number),
                str(stream.src),
                str(stream.dst),
                f"0x{stream.ssrc:08X}",
                clean(",".join(stream.codecs), 40),
                str(f.packets),
                _lost(stream),
                _ms(f.max_delta_ms),
                _ms(f.mean_jitter_ms),
                _ms(f.max_jitter_ms),
                *(_rtcp_cells(stream) if with_rtcp else ()),
                f"{stream.first_frame}-{stream.last_frame}",
                str(call.index) if call is not None else "-",
            )
        )
    return rows


def media_lines(streams: Sequence[RtpStream], calls: Sequence[Call | None]) -> list[str]:
    """The table as aligned text lines (numbers right-aligned)."""
    headings: tuple[str, ...] = _HEADINGS
    if any(s.rtcp is not None for s in streams):
        headings = (*_HEADINGS[:-2], *_RTCP_HEADINGS, *_HEADINGS[-2:])
    rows = [headings, *media_rows(streams, calls)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headings))]
    left = {1, 2, 3, 4}
    return [
        "  ".join(
            cell.ljust(w) if i in left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def dtmf_dict(digit: DtmfDigit) -> dict[str, Any]:
    """One DTMF digit for JSON (README, "Media")."""
    return {
        "digit": digit.digit,
        "frame": digit.frame,
        "time": digit.time,
        "duration_ms": round(digit.duration_ms, 3) if digit.duration_ms is not None else None,
        "source": digit.source,
    }


def stream_dict(stream: RtpStream, call: Call | None, sdp: StreamSdp | None = None) -> dict[str, Any]:
    """One stream for JSON (README, "Media"); ``sdp``: what the call's SDP says of it."""
    f = stream.figures
    primary = primary_codec(f.payload_types, stream.codecs)
    estimate = quality(f, stream.codecs)
    return {
        "ssrc": f"0x{stream.ssrc:08x}",
        "src": str(stream.src),
        "dst": str(stream.dst),
        "payload_type": primary[0] if primary is not None else None,
        "codec": primary[1] if primary is not None else None,
        "payload_types": list(f.payload_types),
        "codecs": list(stream.codecs),
        "packets": f.packets,
        "expected": f.expected,
        "lost": f.lost,
        "sequence_errors": f.sequence_errors,
        "min_delta_ms": f.min_delta_ms,
        "mean_delta_ms": f.mean_delta_ms,
        "max_delta_ms": f.max_delta_ms,
        "min_jitter_ms": f.min_jitter_ms,
        "mean_jitter_ms": f.mean_jitter_ms,
        "max_jitter_ms": f.max_jitter_ms,
        "clock_rate": f.clock_rate,
        "first_frame": stream.first_frame,
        "last_frame": stream.last_frame,
        "first_time": stream.first_time,
        "last_time": stream.last_time,
        "mos": estimate.mos if estimate is not None else None,
        "r_factor": estimate.r_factor if estimate is not None else None,
        "sdp_matches": sdp.sdp_matches if sdp is not None else None,
        "dtmf": [dtmf_dict(d) for d in stream.dtmf],
        "rtcp": rtcp_dict(stream.rtcp) if stream.rtcp is not None else None,
        "call": call.index if call is not None else None,
    }


def rtcp_dict(figures: RtcpFigures) -> dict[str, Any]:
    """What the receiver's RTCP reports said of a stream, for JSON (README, "Media")."""
    return {
        "reports": figures.reports,
        "fraction_lost_pct": round(figures.last_fraction_lost_pct, 2),
        "max_fraction_lost_pct": round(figures.max_fraction_lost_pct, 2),
        "cumulative_lost": figures.cumulative_lost,
        "max_jitter_ms": figures.max_jitter_ms,
        "mean_round_trip_ms": figures.mean_round_trip_ms,
        "max_round_trip_ms": figures.max_round_trip_ms,
    }
