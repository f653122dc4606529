"""The captures an archive indexes: finding them (files, folders, globs), telling whether one
changed since it was indexed, and reading one into rows: the per-file task, which runs in this
process, in a pool's worker or as a task on a Dask cluster, and pickles its result back.
"""

from __future__ import annotations

import glob
import hashlib
import os
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from sipflow.errors import CaptureError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from sipflow.media.collector import StreamCollector

HEAD_BYTES: Final = 1 << 16
"""Octets at the start of a file that its content hash covers (with its size and mtime, what
tells a file already indexed from a new one under the same name)."""

CAPTURE_SUFFIXES: Final = (
    ".pcap",
    ".pcapng",
    ".cap",
    ".ntar",
    ".dmp",
    ".pcap.gz",
    ".pcapng.gz",
    ".cap.gz",
    ".pcap.bz2",
    ".pcapng.bz2",
    ".pcap.xz",
    ".pcapng.xz",
)
"""What a file in a folder is taken as a capture by (a file named on the command line is read
whatever its name)."""

RAW_LEVEL: Final = 6
"""zlib level of the stored payloads (SIP text: about 2:1 per message at 6)."""


def discover(inputs: Iterable[str]) -> list[str]:
    """The capture files named by ``inputs``: files as given, folders searched (recursively)
    for ``CAPTURE_SUFFIXES``, glob patterns expanded; each once, in sorted order within a
    folder or a pattern. Raises ``UsageError`` for an input that names nothing."""
    out: dict[str, None] = {}
    for given in inputs:
        if os.path.isdir(given):
            found = []
            for root, dirs, names in os.walk(given):
                dirs.sort()
                found += [os.path.join(root, n) for n in names if n.lower().endswith(CAPTURE_SUFFIXES)]
            out.update(dict.fromkeys(sorted(found)))
        elif os.path.exists(given):
            out[given] = None
        elif glob.has_magic(given):
            matches = sorted(m for m in glob.glob(given, recursive=True) if os.path.isfile(m))
            if not matches:
                raise UsageError(f"{given}: no file matches")
            out.update(dict.fromkeys(matches))
        else:
            raise UsageError(f"{given}: no such file or folder")
    return list(out)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What tells whether a file changed since it was indexed."""

    size: int
    mtime_ns: int
    head_hash: str


def fingerprint(path: str) -> Fingerprint:
    """The file's size, modification time and the SHA-256 of its first ``HEAD_BYTES``."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        head = f.read(HEAD_BYTES)
    return Fingerprint(st.st_size, st.st_mtime_ns, hashlib.sha256(head).hexdigest())


@dataclass(frozen=True, slots=True, kw_only=True)
class FileCapture:
    """One file read: its SIP-bearing packets as rows of ``packets`` and its RTP streams as rows
    of ``media_streams`` (``file_id`` left out of both), and what the reader learnt about it.
    Plain data: it pickles (a worker's or a Dask task's result)."""

    path: str
    """As discovered (the name in messages and warnings)."""
    fingerprint: Fingerprint
    packets: pa.Table | None = None
    streams: pa.Table | None = None
    format: str = ""
    interfaces: tuple[str, ...] = ("",)
    seen_interfaces: tuple[int, ...] = (0,)
    frames: int = 0
    sip_packets: int = 0
    non_sip: dict[str, int] = field(default_factory=dict)
    unsupported: dict[str, int] = field(default_factory=dict)
    truncated: bool = False
    """The file ended inside a record (still being written?) or a corrupt record stopped it."""
    warnings: tuple[tuple[str, int | None, int | None], ...] = ()
    """(message, frame, byte offset) of each problem inside the file."""
    error: str | None = None
    """Why the file could not be read at all (then no packets)."""
    seconds: float = 0.0
    """Time spent reading it."""

    @property
    def rows(self) -> int:
        return 0 if self.packets is None else self.packets.num_rows


PACKET_COLUMNS: Final = (
    "seq",
    "frame",
    "frames",
    "time_ns",
    "timestamp",
    "interface",
    "src_host",
    "src_port",
    "dst_host",
    "dst_port",
    "transport",
    "ip_id",
    "truncated",
    "call_id",
    "cseq",
    "cseq_method",
    "method",
    "status",
    "branch",
    "parse_error",
    "length",
    "raw",
)
"""The columns of ``packets`` a file's read fills, in the table's order after ``file_id``."""


def time_ns(timestamp: float) -> int:
    """Integer nanoseconds of a capture time in float seconds (the float's own error, about
    240 ns today, is the analysis's: both are kept)."""
    return round(timestamp * 1e9)


def _packet_columns(packets: Iterator[Any], media: StreamCollector) -> dict[str, list[Any]]:
    """The ``packets`` columns of a file's payloads, each message's session description told to
    ``media`` (the reader's sink) as it is read, as ``analyze(media=True)`` reads a file."""
    from sipflow.readahead import ParseFailure, parse_and_describe  # noqa: PLC0415
    from sipflow.sip.message import SipRequest  # noqa: PLC0415

    columns: dict[str, list[Any]] = {name: [] for name in PACKET_COLUMNS}
    (
        seq,
        frame,
        frames,
        tns,
        ts,
        iface,
        src_host,
        src_port,
        dst_host,
        dst_port,
        transport,
        ip_id,
        truncated,
        call_id,
        cseq,
        cseq_method,
        method,
        status,
        branch,
        parse_error,
        length,
        raw,
    ) = columns.values()
    compress = zlib.compress
    for n, packet in enumerate(packets):
        parsed = parse_and_describe(packet, media)
        seq.append(n)
        frame.append(packet.frame)
        frames.append(list(packet.frames))
        tns.append(time_ns(packet.timestamp))
        ts.append(packet.timestamp)
        iface.append(packet.interface)
        src_host.append(packet.src.host)
        src_port.append(packet.src.port)
        dst_host.append(packet.dst.host)
        dst_port.append(packet.dst.port)
        transport.append(packet.transport.value)
        ip_id.append(packet.ip_id)
        truncated.append(packet.truncated)
        if isinstance(parsed, ParseFailure):
            call_id.append(None)
            parse_error.append(parsed.reason)
            cseq.append(None)
            cseq_method.append(None)
            method.append(None)
            status.append(None)
            branch.append(None)
        else:
            call_id.append(parsed.call_id or "")
            parse_error.append(None)
            # With the addresses, what tells copies of a message apart (``merge.duplicate_key``):
            # the clock skew between capture points is estimated from these, nothing parsed again.
            number = parsed.cseq
            cseq.append(number.seq if number is not None else None)
            cseq_method.append(number.method if number is not None else None)
            if isinstance(parsed, SipRequest):
                method.append(parsed.method)
                status.append(None)
            else:
                method.append(None)
                status.append(parsed.status)
            branch.append(parsed.branch)
        length.append(len(packet.payload))
        raw.append(compress(packet.payload, RAW_LEVEL))
    return columns


def packet_schema() -> pa.Schema:
    import pyarrow as pa  # noqa: PLC0415

    return pa.schema(
        [
            ("seq", pa.int32()),
            ("frame", pa.int64()),
            ("frames", pa.list_(pa.int64())),
            ("time_ns", pa.int64()),
            ("timestamp", pa.float64()),
            ("interface", pa.int32()),
            ("src_host", pa.string()),
            ("src_port", pa.int32()),
            ("dst_host", pa.string()),
            ("dst_port", pa.int32()),
            ("transport", pa.string()),
            ("ip_id", pa.int32()),
            ("truncated", pa.bool_()),
            ("call_id", pa.string()),
            ("cseq", pa.int64()),
            ("cseq_method", pa.string()),
            ("method", pa.string()),
            ("status", pa.int32()),
            ("branch", pa.string()),
            ("parse_error", pa.string()),
            ("length", pa.int32()),
            ("raw", pa.binary()),
        ]
    )


def read_capture(path: str) -> FileCapture:
    """Read one capture into rows: the per-file task. Never raises for a bad file: a file
    that cannot be read comes back with ``error`` set, damage inside one as ``warnings``."""
    import pyarrow as pa  # noqa: PLC0415

    from sipflow.archive.media import stream_table  # noqa: PLC0415
    from sipflow.capture.reader import CaptureReader  # noqa: PLC0415
    from sipflow.media.collector import StreamCollector  # noqa: PLC0415

    start = time.perf_counter()
    try:
        print_ = fingerprint(path)
    except OSError as exc:
        return FileCapture(
            path=path, fingerprint=Fingerprint(0, 0, ""), error=f"{path}: {exc.strerror or exc}"
        )
    try:
        media = StreamCollector()
        with CaptureReader(path, sink=media) as reader:
            columns = _packet_columns(iter(reader), media)
            stats = reader.stats
            return FileCapture(
                path=path,
                fingerprint=print_,
                packets=pa.table(columns, schema=packet_schema()),
                streams=stream_table(media.streams()),
                format=reader.format,
                interfaces=tuple(reader.interfaces),
                seen_interfaces=tuple(sorted(reader.seen_interfaces)),
                frames=stats.frames,
                sip_packets=stats.sip_packets,
                non_sip=dict(stats.non_sip),
                unsupported=dict(stats.unsupported),
                truncated=stats.truncated,
                warnings=tuple((w.message, w.frame, w.offset) for w in reader.warnings),
                seconds=time.perf_counter() - start,
            )
    except CaptureError as exc:
        return FileCapture(path=path, fingerprint=print_, error=str(exc))
    except OSError as exc:
        return FileCapture(path=path, fingerprint=print_, error=f"{path}: {exc.strerror or exc}")


def read_captures(paths: Sequence[str]) -> list[FileCapture]:
    """``read_capture`` of each (a batch: one task for several small files)."""
    return [read_capture(p) for p in paths]
