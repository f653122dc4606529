"""Streaming readers for pcap and pcapng files (optionally gzip/bzip2/xz-compressed).

This is the only module of sipflow that opens files. :class:`CaptureReader` opens one and
validates its header when it is created (raising :class:`CaptureError` for anything that is
not a readable capture), then runs its records (walked by
:class:`~sipflow.capture.records.RecordWalker`, which knows the pcap and pcapng formats)
through a :class:`Decoder`, yielding SIP-bearing :class:`SipPayload` objects; or, with
:meth:`CaptureReader.frames`, hands out the frames undecoded with their byte offsets. It never
holds more than one read chunk (plus one record) of the file in memory.

Damage inside a readable file is not an exception: a record cut by the end of the file or a
corrupt record length stops reading with a :class:`CaptureWarning` (file, frame, byte offset)
and ``stats.truncated`` set; every packet before it has been yielded.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import stat
import struct
import sys
import zlib
from collections.abc import Callable, Container, Generator, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType
from typing import BinaryIO, Final, NamedTuple, cast

from sipflow.capture.decode import Decoder
from sipflow.capture.records import CHUNK, MAX_BLOCK, MAX_RECORD, Frame, RecordWalker, capture_format
from sipflow.capture.sink import PayloadSink
from sipflow.capture.types import CaptureStats, CaptureWarning, SipPayload
from sipflow.errors import CaptureError, UsageError

__all__ = [
    "CHUNK",
    "MAX_BLOCK",
    "MAX_RECORD",
    "STDIN",
    "CaptureReader",
    "Frame",
    "RawFrame",
    "is_stream",
    "iter_frames",
    "read_packets",
    "read_raw_frames",
]

_COMPRESSED: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
STDIN: Final = "-"
"""The path that means standard input (a pcap or pcapng stream from a pipe: ``tcpdump -w -``)."""


def is_stream(path: str) -> bool:
    """Whether ``path`` is standard input or another stream that gives its octets once (a FIFO,
    ``/dev/stdin``, a terminal, a socket): what cannot be read again for a second pass, a worker
    process or copying frames out. A missing file is not (opening it says so)."""
    if path == STDIN:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


class _Rewound(io.RawIOBase):
    """A stream that cannot seek, with the octets already read from it put back in front: what
    reading the magic number of a pipe leaves to read."""

    def __init__(self, raw: BinaryIO | io.RawIOBase, head: bytes) -> None:
        super().__init__()
        self._raw = raw
        self._head = head

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(b)) or b""
        b[: len(data)] = data
        return len(data)


def _stdin() -> io.RawIOBase:
    """Standard input, unbuffered and left open when the reader closes; where it has no file
    descriptor (an embedding application, a test harness), its binary stream."""
    try:
        return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    except (AttributeError, OSError, ValueError):
        return _Rewound(sys.stdin.buffer, b"")


_UNSUPPORTED_COMPRESSION: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
)

_READ_ERRORS: Final = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)

_HEAD_MIN: Final = 28
"""Octets a walker needs to open a file: a pcap file header, or a pcapng Section Header Block
without options."""


def _whole_head_blocks(inp: _Input, head: bytes) -> bytes:
    """A pcapng stream's head read on until it holds the Section Header Block and the block
    after it whole (the first Interface Description Block, that names the first capture
    point), or the stream ends."""
    order = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    end = 0
    for _ in range(2):
        while len(head) < end + 8 and (more := inp.read(CHUNK)):
            head += more
        if len(head) < end + 8:
            break
        (length,) = struct.unpack_from(order + "I", head, end + 4)
        if length < 12 or length > 1 << 20:
            break
        end += length
        while len(head) < end and (more := inp.read(CHUNK)):
            head += more
    return head


class _Input:
    """An opened capture file and its decompressor: the :class:`~sipflow.capture.records.Source`
    its walker reads from."""

    __slots__ = ("closed", "compression", "failure", "partial", "position", "raw", "size", "stream")

    def __init__(self) -> None:
        self.raw: io.RawIOBase | None = None
        self.stream: BinaryIO | io.BufferedIOBase | io.RawIOBase | None = None
        self.compression: str | None = None
        self.failure: str | None = None
        """The exception that ended reading early, as text."""
        self.size = 0
        self.position = 0
        """Octets of the file on disk read so far (or as the reader last set it)."""
        self.closed = False
        self.partial = False
        """A stream: a read returns what has come (at least one octet until the end) rather
        than waiting for all it asked for, so that a live capture's packets are seen as they
        arrive."""

    @property
    def error(self) -> str | None:
        if self.failure is None:
            return None
        return f"{self.compression or 'read'} error: {self.failure}"

    def read(self, n: int, /) -> bytes:
        data = self._read_plain(n) if self.compression is None else self._read_compressed(n)
        self.position = self._raw_position()
        return data

    def _raw_position(self) -> int:
        if self.raw is None or self.closed:
            return self.size
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return self.size

    def _read_plain(self, n: int) -> bytes:
        stream = self.stream
        if stream is None or self.closed:
            return b""
        return self._gather(stream.read, n)

    def _read_compressed(self, n: int) -> bytes:
        # Smaller pieces so that damage late in a compressed stream loses little data.
        stream = self.stream
        if not isinstance(stream, io.BufferedIOBase) or self.closed:
            return b""
        # read1: one decompression step at a time, so that a stream cut short (EOFError) loses
        # only the step that failed, not everything buffered for a larger read.
        return self._gather(lambda k: stream.read1(min(k, 1 << 16)), n)

    def _gather(self, step: Callable[[int], bytes], n: int) -> bytes:
        """Up to ``n`` octets from ``step`` calls (each asked for what is still missing), fewer
        at the end of the file; a read error ends it (``failure`` says why) with what came."""
        parts: list[bytes] = []
        got = 0
        try:
            while got < n:
                data = step(n - got)
                if not data:
                    break
                parts.append(data)
                got += len(data)
                if self.partial:
                    break
        except _READ_ERRORS as exc:
            if not self.closed:
                self.failure = str(exc) or type(exc).__name__
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        self.closed = True
        for f in (self.stream, self.raw):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self.stream = None
        self.raw = None


class CaptureReader:
    """Streams the SIP-bearing packets of one pcap / pcapng file.

    >>> with CaptureReader("call.pcap") as reader:          # doctest: +SKIP
    ...     for packet in reader:
    ...         print(packet.frame, packet.src, packet.dst)
    ...     print(reader.stats)

    Creating the reader opens the file and validates its header, raising
    :class:`CaptureError` (one line naming the file and byte offset) if it is missing, a
    directory, unreadable, empty, compressed in an unsupported way, or not a pcap/pcapng file.
    Iterating it (once) yields :class:`SipPayload` objects in capture order, TCP messages at the
    frame that completes them; :meth:`frames` yields the frames undecoded instead. The path
    :data:`STDIN` (``-``) reads standard input; nothing is ever sought, so any pipe, FIFO or
    ``/dev/stdin`` streams as a file does (compressed too). A ``sink``
    (:class:`~sipflow.capture.sink.PayloadSink`) is handed every payload that carries no SIP
    (RTP, RTCP, STUN ...) while the reader is iterated.
    """

    _walker: RecordWalker

    def __init__(
        self, path: str | os.PathLike[str], *, name: str | None = None, sink: PayloadSink | None = None
    ) -> None:
        self.path = os.fspath(path)
        self.name = name if name is not None else self.path
        """The file's label in packets, warnings and errors."""
        self.stats = CaptureStats()
        self.warnings: list[CaptureWarning] = []
        self.size = 0
        """Size of the file on disk, in octets (compressed size for a compressed file)."""
        self.format = ""
        """``pcap`` or ``pcapng``."""
        self.compression: str | None = None
        """``gzip``, ``bzip2``, ``xz`` or None."""
        self.linktype: int | None = None
        """The pcap header's link type (None for pcapng, where each interface has its own)."""
        self.interfaces: tuple[str, ...] = ("",)
        """The name (``if_name``, or empty) of each interface a pcapng file describes before
        its first packet, found in the first read chunk when the reader is created; one
        unnamed interface for pcap. Each is a capture point of its own (``sipflow.merge``)."""
        self.reopenable = False
        """The input is a regular file, which can be opened and read again (by a worker process,
        a second pass); False for standard input and other pipes."""
        self.seen_interfaces: set[int] = {0}
        """Interface ids of the packets handed up so far (those past ``interfaces`` too)."""
        self._decoder = Decoder(file=self.name, stats=self.stats, warnings=self.warnings, sink=sink)
        self._input = _Input()
        self._started = False
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    @property
    def live(self) -> bool:
        """The input is a stream (a pipe, standard input, a socket): its packets are handed up
        as they arrive, a read returning what has come rather than a whole chunk."""
        return self._input.partial

    @property
    def position(self) -> int:
        """Octets of the file on disk consumed so far (advances by read chunks)."""
        return self._input.position

    @position.setter
    def position(self, value: int) -> None:
        self._input.position = value

    # --- opening -----------------------------------------------------------------------------

    def _error(self, reason: str, offset: int | None = None) -> CaptureError:
        return CaptureError(reason, file=self.name, offset=offset)

    def _open(self) -> None:
        inp = self._input
        try:
            raw: io.RawIOBase = (
                _stdin() if self.path == STDIN else open(self.path, "rb", buffering=0)  # noqa: SIM115
            )  # closed by close()
        except FileNotFoundError:
            raise self._error("no such file") from None
        except IsADirectoryError:
            raise self._error("is a directory, not a capture file") from None
        except PermissionError:
            raise self._error("permission denied") from None
        except OSError as exc:
            raise self._error(f"cannot open: {exc.strerror or exc}") from None
        inp.raw = raw
        if not isinstance(raw, _Rewound):
            try:
                st = os.fstat(raw.fileno())
            except OSError as exc:
                raise self._error(f"cannot stat: {exc.strerror or exc}") from None
            if stat.S_ISDIR(st.st_mode):
                raise self._error("is a directory, not a capture file")
            self.size = inp.size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            self.reopenable = stat.S_ISREG(st.st_mode) and self.path != STDIN
        try:
            head = b""
            while len(head) < 8 and (part := raw.read(8 - len(head))):  # a pipe gives what it has
                head += part
        except OSError as exc:
            raise self._error(f"cannot read: {exc.strerror or exc}", 0) from None
        if not head:
            raise self._error("empty file", 0)
        for magic, kind in _UNSUPPORTED_COMPRESSION:
            if head.startswith(magic):
                raise self._error(f"{kind}-compressed file: decompress it first", 0)
        stream: BinaryIO = cast(BinaryIO, raw)
        try:
            raw.seek(0)
        except (OSError, ValueError):  # a pipe, a terminal, a socket: what was read is put back
            # Unbuffered: a read gives what has come, and closing it from another thread (a
            # live capture stopped) does not wait for the read blocked in it.
            stream = cast(BinaryIO, _Rewound(raw, head))
            inp.partial = True
        inp.stream = stream
        for magic, kind in _COMPRESSED:
            if head.startswith(magic):
                self.compression = inp.compression = kind
                if kind == "gzip":
                    inp.stream = gzip.GzipFile(fileobj=stream, mode="rb")
                elif kind == "bzip2":
                    inp.stream = bz2.BZ2File(stream, mode="rb")
                else:
                    inp.stream = lzma.LZMAFile(stream, mode="rb")  # noqa: SIM115  # closed by close()
                break
        head = inp.read(CHUNK)
        while inp.partial and 0 < len(head) < _HEAD_MIN and (more := inp.read(CHUNK)):
            head += more  # a stream's first read may hold less than the file header
        if inp.partial and capture_format(head) == "pcapng":
            head = _whole_head_blocks(inp, head)
        if inp.failure is not None and len(head) < 4:
            raise self._error(f"not a valid {self.compression} file ({inp.failure})", 0)
        if not head:
            raise self._error(
                f"empty {self.compression}-compressed file" if self.compression else "empty file", 0
            )
        if capture_format(head) is None:
            what = f" (after {self.compression} decompression)" if self.compression else ""
            raise self._error(f"not a pcap or pcapng file{what}: magic number {head[:4].hex()}", 0)
        walker = RecordWalker(
            inp, head, name=self.name, stats=self.stats, warnings=self.warnings, chunk=CHUNK
        )
        self._walker = walker
        self.format, self.linktype, self.interfaces = walker.format, walker.linktype, walker.interfaces

    # --- iteration ---------------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            raise UsageError(f"{self.name}: a CaptureReader can be iterated only once")
        self._started = True

    def __iter__(self) -> Iterator[SipPayload]:
        """Stream the file's SIP packets (a reader can be iterated once)."""
        self._start()
        return self._packets()

    def _packets(self) -> Iterator[SipPayload]:
        inp = self._input
        plain = self.compression is None
        try:
            decoder = self._decoder
            walked = self._walker.walk(decoder.feed, skip=decoder.skipper)
            clock = _ClockWatch(self.name, self.warnings)
            for packets, _offset, end, iface, _ticks, _units in walked:
                if iface:
                    # Another capture point of the file (sipflow.merge); rare, so the common
                    # interface 0 pays nothing.
                    packets = [replace(p, interface=iface) for p in packets]
                    self.seen_interfaces.add(iface)
                if plain:
                    inp.position = end
                clock.check(packets)
                yield from packets
            tail = self._decoder.finish()
            if tail:
                clock.check(tail)
                yield from tail
            clock.finish()
        finally:
            self._end()

    def frames(self, select: Container[int] | None = None) -> Iterator[Frame]:
        """Stream the file's frames undecoded, with their byte offsets, instead of its packets
        (instead of iterating the reader: either, once); only those numbered in ``select`` when
        given. Damage ends the stream with a warning, as iterating does; ``stats`` counts the
        frames and nothing is decoded."""
        self._start()
        return self._frames(self._walker.frames(select))

    def _frames(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        inp = self._input
        plain = self.compression is None
        try:
            for frame in frames:
                if frame.interface:
                    self.seen_interfaces.add(frame.interface)
                if plain:
                    inp.position = frame.offset + frame.length
                yield frame
        finally:
            self._end()

    def _end(self) -> None:
        if not self._input.closed:
            self.position = self.size
        self.close()

    # --- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file (iteration, if unfinished, ends)."""
        if not self._input.closed:
            self._input.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        compression = f" {self.compression}" if self.compression else ""
        return f"<CaptureReader {self.name!r} {self.format}{compression}>"


def read_packets(path: str | os.PathLike[str], *, name: str | None = None) -> Iterator[SipPayload]:
    """Open ``path`` (raising :class:`CaptureError` at once if it is not a readable capture)
    and return an iterator over its SIP packets; the file closes when the iterator ends."""
    reader = CaptureReader(path, name=name)

    def packets() -> Iterator[SipPayload]:
        with reader:
            yield from reader

    return packets()


def iter_frames(
    path: str | os.PathLike[str], select: Container[int] | None = None, *, name: str | None = None
) -> Iterator[Frame]:
    """Open ``path`` (raising :class:`CaptureError` at once if it is not a readable capture)
    and return an iterator over its frames, undecoded, each with the byte offset of its record
    in the (decompressed) file; only those numbered in ``select`` when given. Damage ends the
    stream quietly (a :class:`CaptureReader` reports it); the file closes when the iterator
    ends."""
    reader = CaptureReader(path, name=name)

    def frames() -> Iterator[Frame]:
        with reader:
            yield from reader.frames(select)

    return frames()


# --- raw frames (for copying frames into another capture: sipflow.capture.writer) -------------


class RawFrame(NamedTuple):
    """One frame as the capture stores it: undecoded, with its exact timestamp (the fields of
    :class:`Frame` that ``sipflow.capture.writer`` copies)."""

    frame: int
    """1-based frame number, as in :attr:`SipPayload.frame`."""
    linktype: int
    """The link type of the frame's interface (pcap header or pcapng IDB)."""
    ticks: int
    """Capture time in 1/``units`` seconds since the Unix epoch (pcapng ``if_tsoffset`` included)."""
    units: int
    """Timestamp units per second: 10**6, 10**9, or what a pcapng ``if_tsresol`` says."""
    data: bytes
    """The captured octets."""
    orig_len: int
    """Length of the frame on the wire."""


def read_raw_frames(
    path: str | os.PathLike[str], frames: Container[int] | None = None, *, name: str | None = None
) -> Generator[RawFrame, None, None]:
    """Open ``path`` as :class:`CaptureReader` does (raising :class:`CaptureError` at once if it
    is not a readable capture) and stream its frames undecoded, numbered as the packets of
    :class:`CaptureReader` are; only those numbered in ``frames`` when given. Damage ends the
    stream quietly (``CaptureReader`` reports it); the file closes when the iterator ends."""
    selected = iter_frames(path, frames, name=name)

    def raw_frames() -> Generator[RawFrame, None, None]:
        for f in selected:
            yield RawFrame(f.number, f.linktype, f.ticks, f.units, f.data, f.orig_len)

    return raw_frames()


CLOCK_JUMP_S: Final = 86_400.0
"""A capture time this far (a day) from the SIP message before it, in one file, is reported:
no call waits a day between two messages, but a damaged record or a clock step makes one."""
MAX_CLOCK_WARNINGS: Final = 5
"""Clock jumps reported one by one per file; the others are counted in one more warning."""


def _when(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.0f} s after 1970"


def _span(seconds: float) -> str:
    days = seconds / 86_400.0
    return f"{days / 365.25:.1f} years" if days >= 730 else f"{days:.1f} days"


class _ClockWatch:
    """Says where a file's capture times jump (``CLOCK_JUMP_S``) from one SIP message to the
    next: the durations and delays measured across such a jump are wrong, and silence would
    let a setup time of years pass as data."""

    __slots__ = ("file", "jumps", "last", "last_frame", "warnings")

    def __init__(self, file: str, warnings: list[CaptureWarning]) -> None:
        self.file, self.warnings = file, warnings
        self.last: float | None = None
        self.last_frame = 0
        self.jumps = 0

    def check(self, packets: Sequence[SipPayload]) -> None:
        last = self.last
        for p in packets:
            t = p.timestamp
            if last is not None and abs(t - last) > CLOCK_JUMP_S:
                self.jumps += 1
                if self.jumps <= MAX_CLOCK_WARNINGS:
                    way = "forward" if t > last else "back"
                    self.warnings.append(
                        CaptureWarning(
                            file=self.file,
                            message=f"the capture time jumps {_span(abs(t - last))} {way} after frame "
                            f"{self.last_frame} ({_when(last)} to {_when(t)} UTC): a damaged record, "
                            "a clock step or captures of other days joined; delays and durations "
                            "across it are wrong",
                            frame=p.frame,
                        )
                    )
            last = t
            self.last_frame = p.frame
        self.last = last

    def finish(self) -> None:
        if self.jumps > MAX_CLOCK_WARNINGS:
            more = self.jumps - MAX_CLOCK_WARNINGS
            self.warnings.append(
                CaptureWarning(file=self.file, message=f"{more} more jumps of the capture time of over a day")
            )
