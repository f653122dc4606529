"""The RTP streams of an archive: a file's streams as rows of ``media_streams`` and back, and
which call each stream belongs to, in SQL.

A file's streams are measured when it is read, as ``analyze(media=True)`` measures each file
it is given: one ``StreamCollector`` per file, told the file's session descriptions as they
come (``readahead.parse_and_describe``). So a stream that a file cut divides is two streams,
as ``sipflow media a.pcap b.pcap`` lists it. Every value of an ``RtpStream`` has a column
(floats as DOUBLE, bit for bit), so what is read back is what was measured.

The call of a stream is the call with the latest description of the stream's destination
before the stream's first packet, else the first call that describes it
(``model.media.calls_of_streams``): ``schema.owner_sql`` says it in SQL over the derived table
``sdp_addresses``, one row per address and port a call's SDP described, so that a query for
some calls reads only their streams and links each as the analysis of every call would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from sipflow.archive.files import time_ns
from sipflow.capture.types import Endpoint
from sipflow.media.collector import RtpStream
from sipflow.media.dtmf import DtmfDigit
from sipflow.media.quality import quality
from sipflow.media.rtcp import RtcpFigures
from sipflow.media.rtp import StreamFigures

if TYPE_CHECKING:
    import pyarrow as pa

_FIGURES: Final = (
    "packets",
    "expected",
    "lost",
    "sequence_errors",
    "min_delta_ms",
    "mean_delta_ms",
    "max_delta_ms",
    "min_jitter_ms",
    "mean_jitter_ms",
    "max_jitter_ms",
    "clock_rate",
)
_RTCP: Final = (
    "reports",
    "last_fraction_lost_pct",
    "max_fraction_lost_pct",
    "cumulative_lost",
    "max_jitter_ms",
    "mean_round_trip_ms",
    "max_round_trip_ms",
)
STREAM_COLUMNS: Final = (
    "seq",
    "src_host",
    "src_port",
    "dst_host",
    "dst_port",
    "ssrc",
    "first_frame",
    "last_frame",
    "first_ns",
    "first_time",
    "last_ns",
    "last_time",
    *_FIGURES,
    "payload_types",
    "codecs",
    "mos",
    "r_factor",
    "dtmf",
    *(f"rtcp_{name}" for name in _RTCP),
)
"""The columns of ``media_streams`` a file's read fills, in the table's order after ``file_id``."""

_DTMF: Final = ("digit", "frame", "time", "duration_ms", "source")


def stream_schema() -> pa.Schema:
    import pyarrow as pa  # noqa: PLC0415

    dtmf = pa.struct(
        [
            ("digit", pa.string()),
            ("frame", pa.int64()),
            ("time", pa.float64()),
            ("duration_ms", pa.float64()),
            ("source", pa.string()),
        ]
    )
    types: dict[str, pa.DataType] = {
        "seq": pa.int32(),
        "src_host": pa.string(),
        "src_port": pa.int32(),
        "dst_host": pa.string(),
        "dst_port": pa.int32(),
        "ssrc": pa.int64(),
        "first_frame": pa.int64(),
        "last_frame": pa.int64(),
        "first_ns": pa.int64(),
        "first_time": pa.float64(),
        "last_ns": pa.int64(),
        "last_time": pa.float64(),
        "packets": pa.int64(),
        "expected": pa.int64(),
        "lost": pa.int64(),
        "sequence_errors": pa.int64(),
        "clock_rate": pa.int32(),
        "payload_types": pa.list_(pa.int32()),
        "codecs": pa.list_(pa.string()),
        "dtmf": pa.list_(dtmf),
        "rtcp_reports": pa.int32(),
        "rtcp_cumulative_lost": pa.int64(),
    }
    return pa.schema([(name, types.get(name, pa.float64())) for name in STREAM_COLUMNS])


def stream_table(streams: Sequence[RtpStream]) -> pa.Table:
    """A file's streams (``StreamCollector.streams()``, in that order) as ``media_streams`` rows."""
    import pyarrow as pa  # noqa: PLC0415

    columns: dict[str, list[Any]] = {name: [] for name in STREAM_COLUMNS}
    for seq, s in enumerate(streams):
        f = s.figures
        estimate = quality(f, s.codecs)
        row: dict[str, Any] = {
            "seq": seq,
            "src_host": s.src.host,
            "src_port": s.src.port,
            "dst_host": s.dst.host,
            "dst_port": s.dst.port,
            "ssrc": s.ssrc,
            "first_frame": s.first_frame,
            "last_frame": s.last_frame,
            "first_ns": time_ns(s.first_time),
            "first_time": s.first_time,
            "last_ns": time_ns(s.last_time),
            "last_time": s.last_time,
            "payload_types": list(f.payload_types),
            "codecs": list(s.codecs),
            "mos": estimate.mos if estimate is not None else None,
            "r_factor": estimate.r_factor if estimate is not None else None,
            "dtmf": [{name: getattr(d, name) for name in _DTMF} for d in s.dtmf],
        }
        row.update((name, getattr(f, name)) for name in _FIGURES)
        row.update((f"rtcp_{name}", getattr(s.rtcp, name) if s.rtcp is not None else None) for name in _RTCP)
        for name, column in columns.items():
            column.append(row[name])
    return pa.table(columns, schema=stream_schema())


SELECT_STREAM: Final = ", ".join(
    f"s.{name}" for name in STREAM_COLUMNS if name not in ("seq", "mos", "r_factor")
)
"""The columns ``restore_stream`` takes, in its order, from ``media_streams s``."""


def restore_stream(row: Sequence[Any]) -> RtpStream:
    """An ``RtpStream`` from the ``SELECT_STREAM`` columns of its row."""
    (sh, sp, dh, dp, ssrc, first_frame, last_frame, _fns, first_time, _lns, last_time, *rest) = row
    figures = dict(zip(_FIGURES, rest[: len(_FIGURES)], strict=True))
    payload_types, codecs, dtmf, *rtcp = rest[len(_FIGURES) :]
    return RtpStream(
        src=Endpoint(sh, sp),
        dst=Endpoint(dh, dp),
        ssrc=ssrc,
        first_frame=first_frame,
        last_frame=last_frame,
        first_time=first_time,
        last_time=last_time,
        figures=StreamFigures(**figures, payload_types=tuple(payload_types)),
        codecs=tuple(codecs),
        dtmf=tuple(DtmfDigit(**d) for d in dtmf),
        rtcp=RtcpFigures(**dict(zip(_RTCP, rtcp, strict=True))) if rtcp[0] is not None else None,
    )
