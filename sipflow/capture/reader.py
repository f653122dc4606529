"""Streaming readers for pcap and pcapng files (optionally gzip/bzip2/xz-compressed).

This is the only module of sipflow that opens files. :class:`CaptureReader` validates the
file header when it is created (raising :class:`CaptureError` for anything that is not a
readable capture) and then streams records through a :class:`Decoder`, yielding SIP-bearing
:class:`Packet` objects. It never holds more than one read chunk (plus one record) of the
file in memory.

Formats:

* pcap (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html): both byte orders,
  microsecond (``a1b2c3d4``) and nanosecond (``a1b23c4d``) timestamps, and the "modified"
  Kuznetzov format (``a1b2cd34``, 24-octet record headers);
* pcapng (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html): Section Header
  Blocks of either byte order (several sections per file), Interface Description Blocks with
  their own link types and ``if_tsresol`` / ``if_tsoffset``, Enhanced, Simple and obsolete
  Packet Blocks; other blocks are skipped.

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
import zlib
from collections.abc import Callable, Container, Generator, Iterator
from dataclasses import replace
from types import TracebackType
from typing import Final, NamedTuple

from sipflow.capture.decode import Decoder
from sipflow.capture.packet import CaptureStats, CaptureWarning, Packet
from sipflow.errors import CaptureError, UsageError

CHUNK: Final = 1 << 20
"""Octets read from the file at a time."""

MAX_RECORD: Final = 262144
"""Largest captured length accepted in a record (Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD);
a larger value means a corrupt record header."""

MAX_BLOCK: Final = 16 << 20
"""Largest pcapng block accepted (a packet block is at most MAX_RECORD plus its options)."""

# pcap magic numbers as they appear in the file (draft-ietf-opsawg-pcap §4).
_PCAP_MAGICS: Final[dict[bytes, tuple[str, float, int]]] = {
    # magic octets: (byte order, timestamp fraction scale, record header length)
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6, 16),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9, 16),
    b"\x34\xcd\xb2\xa1": ("<", 1e-6, 24),  # Alexey Kuznetzov's modified pcap
    b"\xa1\xb2\xcd\x34": (">", 1e-6, 24),
}

# pcapng (draft-ietf-opsawg-pcapng §4).
_SHB: Final = 0x0A0D0D0A
_SHB_MAGIC: Final = b"\x0a\x0d\x0d\x0a"
_BOM_LE: Final = b"\x4d\x3c\x2b\x1a"
_BOM_BE: Final = b"\x1a\x2b\x3c\x4d"
_IDB: Final = 1
_PB: Final = 2  # obsolete Packet Block (Appendix A)
_SPB: Final = 3
_EPB: Final = 6
_BLOCK_NAMES: Final = {_PB: "Packet Block", _EPB: "Enhanced Packet Block"}
_OPT_IF_NAME: Final = 2
_OPT_IF_TSRESOL: Final = 9
_OPT_IF_TSOFFSET: Final = 14

_COMPRESSED: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
_UNSUPPORTED_COMPRESSION: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
)

_READ_ERRORS: Final = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)


class _Structs:
    """Precompiled structs of one byte order."""

    __slots__ = ("epb", "head", "idb", "opt", "pb", "shb", "u32", "u64")

    def __init__(self, order: str) -> None:
        self.head = struct.Struct(order + "II")
        self.u32 = struct.Struct(order + "I")
        self.epb = struct.Struct(order + "IIIII")
        self.pb = struct.Struct(order + "HHIIII")
        self.idb = struct.Struct(order + "HHI")
        self.shb = struct.Struct(order + "HH")
        self.opt = struct.Struct(order + "HH")
        self.u64 = struct.Struct(order + "q")


_LE: Final = _Structs("<")
_BE: Final = _Structs(">")


def _head_interfaces(buf: bytes, s: _Structs) -> tuple[str, ...]:
    """The ``if_name`` of each Interface Description Block of the first section before its
    first packet block (pcapng §4.2, option 2), as far as ``buf`` holds whole blocks."""
    names: list[str] = []
    pos, n = 0, len(buf)
    while pos + 12 <= n:
        btype, blen = s.head.unpack_from(buf, pos)
        if blen < 12 or blen % 4 or pos + blen > n or (btype == _SHB and pos):
            break
        if btype in (_EPB, _PB, _SPB):
            break
        if btype == _IDB and blen >= 20:
            name = ""
            q, end = pos + 16, pos + blen - 4
            while q + 4 <= end:
                code, olen = s.opt.unpack_from(buf, q)
                if code == 0 or q + 4 + olen > end:
                    break
                if code == _OPT_IF_NAME:
                    name = buf[q + 4 : q + 4 + olen].decode("utf-8", "replace").rstrip("\0")
                q += 4 + ((olen + 3) & ~3)
            names.append(name)
        pos += blen
    return tuple(names)


class CaptureReader:
    """Streams the SIP-bearing packets of one pcap / pcapng file.

    >>> with CaptureReader("call.pcap") as reader:          # doctest: +SKIP
    ...     for packet in reader:
    ...         print(packet.frame, packet.src, packet.dst)
    ...     print(reader.stats)

    Creating the reader opens the file and validates its header, raising
    :class:`CaptureError` (one line naming the file and byte offset) if it is missing, a
    directory, unreadable, empty, compressed in an unsupported way, or not a pcap/pcapng file.
    Iterating it (once) yields :class:`Packet` objects in capture order, TCP messages at the
    frame that completes them.
    """

    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None) -> None:
        self.path = os.fspath(path)
        self.name = name if name is not None else self.path
        """The file's label in packets, warnings and errors."""
        self.stats = CaptureStats()
        self.warnings: list[CaptureWarning] = []
        self.size = 0
        """Size of the file on disk, in octets (compressed size for a compressed file)."""
        self.position = 0
        """Octets of the file on disk consumed so far (advances by read chunks)."""
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
        self.seen_interfaces: set[int] = {0}
        """Interface ids of the packets handed up so far (those past ``interfaces`` too)."""
        self._decoder = Decoder(file=self.name, stats=self.stats, warnings=self.warnings)
        self._raw: io.FileIO | None = None
        self._stream: io.BufferedIOBase | io.FileIO | None = None
        self._read: Callable[[int], bytes] = self._read_plain
        self._buf = b""
        self._base = 0
        self._started = False
        self._closed = False
        self._read_error: str | None = None
        # pcap
        self._order = "<"
        self._scale = 1e-6
        self._rec_len = 16
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # --- opening -----------------------------------------------------------------------------

    def _error(self, reason: str, offset: int | None = None) -> CaptureError:
        return CaptureError(reason, file=self.name, offset=offset)

    def _open(self) -> None:
        try:
            raw = open(self.path, "rb", buffering=0)  # noqa: SIM115  # closed by close()
        except FileNotFoundError:
            raise self._error("no such file") from None
        except IsADirectoryError:
            raise self._error("is a directory, not a capture file") from None
        except PermissionError:
            raise self._error("permission denied") from None
        except OSError as exc:
            raise self._error(f"cannot open: {exc.strerror or exc}") from None
        self._raw = raw
        try:
            st = os.fstat(raw.fileno())
        except OSError as exc:
            raise self._error(f"cannot stat: {exc.strerror or exc}") from None
        if stat.S_ISDIR(st.st_mode):
            raise self._error("is a directory, not a capture file")
        self.size = st.st_size
        try:
            head = raw.read(8)
        except OSError as exc:
            raise self._error(f"cannot read: {exc.strerror or exc}", 0) from None
        if not head:
            raise self._error("empty file", 0)
        for magic, kind in _UNSUPPORTED_COMPRESSION:
            if head.startswith(magic):
                raise self._error(f"{kind}-compressed file: decompress it first", 0)
        raw.seek(0)
        self._stream = raw
        for magic, kind in _COMPRESSED:
            if head.startswith(magic):
                self.compression = kind
                if kind == "gzip":
                    self._stream = gzip.GzipFile(fileobj=raw, mode="rb")
                elif kind == "bzip2":
                    self._stream = bz2.BZ2File(raw, mode="rb")
                else:
                    self._stream = lzma.LZMAFile(raw, mode="rb")  # noqa: SIM115  # closed by close()
                self._read = self._read_compressed
                break
        self._buf = self._read(CHUNK)
        self.position = self._raw_position()
        if self._read_error is not None and len(self._buf) < 4:
            raise self._error(f"not a valid {self.compression} file ({self._read_error})", 0)
        if not self._buf:
            raise self._error(
                f"empty {self.compression}-compressed file" if self.compression else "empty file", 0
            )
        magic = self._buf[:4]
        if magic in _PCAP_MAGICS:
            self._open_pcap(magic)
        elif magic == _SHB_MAGIC:
            self._open_pcapng()
        else:
            what = f" (after {self.compression} decompression)" if self.compression else ""
            raise self._error(f"not a pcap or pcapng file{what}: magic number {magic.hex()}", 0)

    def _open_pcap(self, magic: bytes) -> None:
        self.format = "pcap"
        self._order, self._scale, self._rec_len = _PCAP_MAGICS[magic]
        if len(self._buf) < 24:
            raise self._error(f"pcap header cut short ({len(self._buf)} of 24 octets)", len(self._buf))
        major, minor, _zone, _sigfigs, _snaplen, network = struct.unpack_from(
            self._order + "HHiIII", self._buf, 4
        )
        if major != 2:
            raise self._error(f"unsupported pcap version {major}.{minor}", 4)
        # The upper bits carry the FCS length (draft-ietf-opsawg-pcap §4, LinkType and
        # additional information); an Ethernet FCS is ignored anyway (IP lengths bound payloads).
        self.linktype = network & 0x03FFFFFF
        self._base = 0
        self._buf = self._buf[24:]
        self._base = 24

    def _open_pcapng(self) -> None:
        self.format = "pcapng"
        buf = self._buf
        if len(buf) < 28:
            raise self._error(f"pcapng Section Header Block cut short ({len(buf)} octets)", len(buf))
        bom = buf[8:12]
        if bom not in (_BOM_LE, _BOM_BE):
            raise self._error(f"bad pcapng byte-order magic {bom.hex()}", 8)
        s = _LE if bom == _BOM_LE else _BE
        _, blen = s.head.unpack_from(buf, 0)
        major, minor = s.shb.unpack_from(buf, 12)
        if major != 1:
            raise self._error(f"unsupported pcapng version {major}.{minor}", 12)
        if blen < 28 or blen % 4 or blen > MAX_BLOCK:
            raise self._error(f"bad pcapng Section Header Block length {blen}", 4)
        self.interfaces = _head_interfaces(buf, s) or ("",)

    # --- reading -----------------------------------------------------------------------------

    def _raw_position(self) -> int:
        if self._raw is None or self._closed:
            return self.size
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return self.size

    def _read_plain(self, n: int) -> bytes:
        stream = self._stream
        if stream is None or self._closed:
            return b""
        parts: list[bytes] = []
        got = 0
        try:
            while got < n:
                data = stream.read(n - got)
                if not data:
                    break
                parts.append(data)
                got += len(data)
        except _READ_ERRORS as exc:
            if not self._closed:
                self._read_error = str(exc) or type(exc).__name__
            return b"".join(parts)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _read_compressed(self, n: int) -> bytes:
        # Smaller pieces so that damage late in a compressed stream loses little data.
        stream = self._stream
        if not isinstance(stream, io.BufferedIOBase) or self._closed:
            return b""
        parts: list[bytes] = []
        got = 0
        try:
            while got < n:
                # read1: one decompression step at a time, so that a stream cut short (EOFError)
                # loses only the step that failed, not everything buffered for a larger read.
                data = stream.read1(min(n - got, 1 << 16))
                if not data:
                    break
                parts.append(data)
                got += len(data)
        except _READ_ERRORS as exc:
            if not self._closed:
                self._read_error = str(exc) or type(exc).__name__
        return b"".join(parts)

    def _refill(self, buf: bytes, pos: int, base: int, need: int) -> tuple[bytes, int]:
        """Keep ``buf[pos:]`` and read until it holds ``need`` octets (or the file ends).

        Returns the new buffer and the file offset of its first octet.
        """
        tail = buf[pos:]
        more = self._read(max(CHUNK, need - len(tail)))
        self.position = self._raw_position()
        return (tail + more if tail else more), base + pos

    def _stop(self, message: str, frame: int, offset: int) -> None:
        """Damage in the file: warn, mark the result partial, stop reading."""
        if self._read_error is not None:
            message = f"{message} ({self.compression or 'read'} error: {self._read_error})"
        self.stats.truncated = True
        self.warnings.append(CaptureWarning(file=self.name, message=message, frame=frame, offset=offset))

    # --- iteration ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Packet]:
        """Stream the file's SIP packets (a reader can be iterated once)."""
        if self._started:
            raise UsageError(f"{self.name}: a CaptureReader can be iterated only once")
        self._started = True
        return self._packets()

    def _packets(self) -> Iterator[Packet]:
        try:
            if self.format == "pcap":
                yield from self._pcap_records()
            else:
                yield from self._pcapng_records()
            tail = self._decoder.finish()
            if tail:
                yield from tail
        finally:
            self.position = self.size if not self._closed else self.position
            self.close()

    def _pcap_records(self) -> Iterator[Packet]:
        assert self.linktype is not None
        rec = struct.Struct(self._order + "IIII")
        unpack = rec.unpack_from
        hlen = self._rec_len
        scale = self._scale
        linktype = self.linktype
        feed = self._decoder.feed
        refill = self._refill
        buf, base = self._buf, self._base
        self._buf = b""
        pos = 0
        n = len(buf)
        frame = 0
        plain = self.compression is None
        while True:
            if pos + hlen > n:
                buf, base = refill(buf, pos, base, hlen)
                pos, n = 0, len(buf)
                if hlen > n:
                    if n:
                        self._stop(f"the file ends inside the header of record {frame + 1}", frame + 1, base)
                    elif self._read_error is not None:
                        self._stop("the file cannot be read further", frame + 1, base)
                    return
            ts_s, ts_frac, incl, orig = unpack(buf, pos)
            if incl > MAX_RECORD:
                self._stop(
                    f"corrupt record header: captured length {incl} exceeds {MAX_RECORD}; reading stopped",
                    frame + 1,
                    base + pos,
                )
                return
            start = pos + hlen
            stop = start + incl
            if stop > n:
                buf, base = refill(buf, pos, base, hlen + incl)
                pos, n = 0, len(buf)
                start, stop = hlen, hlen + incl
                if stop > n:
                    self._stop(
                        f"the file ends inside record {frame + 1} ({n - hlen} of {incl} octets)",
                        frame + 1,
                        base,
                    )
                    return
            frame += 1
            packets = feed(frame, ts_s + ts_frac * scale, linktype, buf, orig, start, stop)
            pos = stop
            if packets:
                if plain:
                    self.position = base + pos
                yield from packets

    def _pcapng_records(self) -> Iterator[Packet]:
        s = _LE
        head, epb, u32 = s.head.unpack_from, s.epb.unpack_from, s.u32.unpack_from
        feed = self._decoder.feed
        refill = self._refill
        buf, base = self._buf, self._base
        self._buf = b""
        pos = 0
        n = len(buf)
        frame = 0
        interfaces: list[tuple[int, int, float, int]] = []  # (linktype, units, offset, snaplen)
        last_ts = 0.0
        plain = self.compression is None
        warned_ifaces: set[int] = set()
        while True:
            if pos + 28 > n:
                buf, base = refill(buf, pos, base, 28)
                pos, n = 0, len(buf)
                if n < 12:
                    if n:
                        self._stop("the file ends inside a block header", frame + 1, base)
                    elif self._read_error is not None:
                        self._stop("the file cannot be read further", frame + 1, base)
                    return
            if buf[pos] == 0x0A and buf[pos : pos + 4] == _SHB_MAGIC:
                bom = buf[pos + 8 : pos + 12]
                if bom == _BOM_LE:
                    s = _LE
                elif bom == _BOM_BE:
                    s = _BE
                else:
                    self._stop(
                        f"corrupt Section Header Block (byte-order magic {bom.hex()})", frame + 1, base + pos
                    )
                    return
                head, epb, u32 = s.head.unpack_from, s.epb.unpack_from, s.u32.unpack_from
            btype, blen = head(buf, pos)
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                self._stop(f"corrupt block length {blen}; reading stopped", frame + 1, base + pos)
                return
            if pos + blen > n:
                buf, base = refill(buf, pos, base, blen)
                pos, n = 0, len(buf)
                if blen > n:
                    self._stop(f"the file ends inside a block ({n} of {blen} octets)", frame + 1, base)
                    return
            if u32(buf, pos + blen - 4)[0] != blen:
                self._stop("corrupt block: trailing length differs; reading stopped", frame + 1, base + pos)
                return
            if btype in (_EPB, _PB):
                # pcapng §4.3 Enhanced Packet Block: interface id, timestamp (high, low), captured
                # and original length; Appendix A, the obsolete Packet Block: the same with a
                # 16-bit interface id and a drops count.
                if blen < 32:
                    self._stop(f"corrupt {_BLOCK_NAMES[btype]} (too short)", frame + 1, base + pos)
                    return
                if btype == _EPB:
                    iface, hi, lo, caplen, olen = epb(buf, pos + 8)
                else:
                    iface, _drops, hi, lo, caplen, olen = s.pb.unpack_from(buf, pos + 8)
                if 32 + caplen > blen:
                    self._stop(
                        f"corrupt {_BLOCK_NAMES[btype]}: captured length {caplen}", frame + 1, base + pos
                    )
                    return
                frame += 1
                if iface < len(interfaces):
                    linktype, units, offset, _ = interfaces[iface]
                    last_ts = ((hi << 32) | lo) / units + offset
                    packets = feed(frame, last_ts, linktype, buf, olen, pos + 28, pos + 28 + caplen)
                    if iface and packets:
                        # Another capture point of the file (sipflow.merge); rare, so the
                        # common interface 0 pays nothing.
                        packets = [replace(p, interface=iface) for p in packets]
                        self.seen_interfaces.add(iface)
                else:
                    packets = self._no_interface(iface, frame, base + pos, warned_ifaces)
            elif btype == _SPB:
                # pcapng §4.4: original length only; interface 0, no timestamp.
                frame += 1
                if interfaces:
                    linktype, _, _, snaplen = interfaces[0]
                    olen = u32(buf, pos + 8)[0]
                    caplen = min(olen, blen - 16)
                    if snaplen:
                        caplen = min(caplen, snaplen)
                    # A Simple Packet Block has no timestamp: it inherits the previous one.
                    packets = feed(frame, last_ts, linktype, buf, olen, pos + 12, pos + 12 + caplen)
                else:
                    packets = self._no_interface(0, frame, base + pos, warned_ifaces)
            elif btype == _IDB:
                packets = []
                if blen < 20:
                    self._stop("corrupt Interface Description Block (too short)", frame + 1, base + pos)
                    return
                interfaces.append(self._interface(s, buf, pos, blen, frame + 1, base + pos))
            elif btype == _SHB:
                packets = []
                if blen < 28:
                    self._stop("corrupt Section Header Block (too short)", frame + 1, base + pos)
                    return
                major, minor = s.shb.unpack_from(buf, pos + 12)
                if major != 1:
                    self._stop(f"unsupported pcapng section version {major}.{minor}", frame + 1, base + pos)
                    return
                interfaces = []  # interface ids are per section
                warned_ifaces = set()
            else:
                packets = []  # NRB, ISB, DSB, custom and unknown blocks carry no packets
            pos += blen
            if packets:
                if plain:
                    self.position = base + pos
                yield from packets

    def _interface(
        self, s: _Structs, buf: bytes, pos: int, blen: int, frame: int, offset: int
    ) -> tuple[int, int, float, int]:
        """An Interface Description Block (pcapng §4.2): (link type, timestamp units per
        second from ``if_tsresol``, seconds added from ``if_tsoffset``, snapshot length)."""
        linktype, _reserved, snaplen = s.idb.unpack_from(buf, pos + 8)
        units = 1_000_000
        tsoffset = 0
        q = pos + 16
        end = pos + blen - 4
        while q + 4 <= end:
            code, olen = s.opt.unpack_from(buf, q)
            q += 4
            if code == 0:
                break
            if q + olen > end:
                self.warnings.append(
                    CaptureWarning(
                        file=self.name,
                        message="Interface Description Block option runs past the block",
                        frame=frame,
                        offset=offset,
                    )
                )
                break
            if code == _OPT_IF_TSRESOL and olen >= 1:
                # pcapng §4.2: MSB clear, 10^-v seconds; MSB set, 2^-v seconds.
                v = buf[q]
                units = 2 ** (v & 0x7F) if v & 0x80 else 10 ** min(v, 30)
            elif code == _OPT_IF_TSOFFSET and olen >= 8:
                tsoffset = s.u64.unpack_from(buf, q)[0]
            q += (olen + 3) & ~3
        return linktype, units, float(tsoffset), snaplen

    def _no_interface(self, iface: int, frame: int, offset: int, warned: set[int]) -> list[Packet]:
        self.stats.frames += 1
        self.stats.count_unsupported("packet block without interface")
        if iface not in warned:
            warned.add(iface)
            self.warnings.append(
                CaptureWarning(
                    file=self.name,
                    message=f"packet refers to undefined interface {iface}; skipped",
                    frame=frame,
                    offset=offset,
                )
            )
        return []

    # --- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file (iteration, if unfinished, ends)."""
        if self._closed:
            return
        self._closed = True
        for f in (self._stream, self._raw):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self._stream = None
        self._raw = None

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


def read_packets(path: str | os.PathLike[str], *, name: str | None = None) -> Iterator[Packet]:
    """Open ``path`` (raising :class:`CaptureError` at once if it is not a readable capture)
    and return an iterator over its SIP packets; the file closes when the iterator ends."""
    reader = CaptureReader(path, name=name)

    def packets() -> Iterator[Packet]:
        with reader:
            yield from reader

    return packets()


# --- raw frames (for copying frames into another capture: sipflow.capture.writer) -------------


class RawFrame(NamedTuple):
    """One frame as the capture stores it: undecoded, with its exact timestamp."""

    frame: int
    """1-based frame number, as in :attr:`Packet.frame`."""
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
    reader = CaptureReader(path, name=name)
    walk = _raw_pcap if reader.format == "pcap" else _raw_pcapng

    def raw_frames() -> Generator[RawFrame, None, None]:
        with reader:
            yield from walk(reader, frames)

    return raw_frames()


def _raw_pcap(reader: CaptureReader, wanted: Container[int] | None) -> Iterator[RawFrame]:
    # The record loop of CaptureReader._pcap_records, keeping the integer timestamp fields.
    assert reader.linktype is not None
    unpack = struct.Struct(reader._order + "IIII").unpack_from
    hlen = reader._rec_len
    units = round(1 / reader._scale)
    linktype = reader.linktype
    buf, base = reader._buf, reader._base
    pos = frame = 0
    while True:
        if pos + hlen > len(buf):
            buf, base = reader._refill(buf, pos, base, hlen)
            pos = 0
            if hlen > len(buf):
                return
        ts_s, ts_frac, incl, orig = unpack(buf, pos)
        if incl > MAX_RECORD:
            return
        stop = pos + hlen + incl
        if stop > len(buf):
            buf, base = reader._refill(buf, pos, base, hlen + incl)
            pos, stop = 0, hlen + incl
            if stop > len(buf):
                return
        frame += 1
        if wanted is None or frame in wanted:
            yield RawFrame(frame, linktype, ts_s * units + ts_frac, units, buf[pos + hlen : stop], orig)
        pos = stop


def _raw_pcapng(reader: CaptureReader, wanted: Container[int] | None) -> Iterator[RawFrame]:
    # The block loop of CaptureReader._pcapng_records, keeping the integer timestamps.
    s = _LE
    buf, base = reader._buf, reader._base
    pos = frame = 0
    interfaces: list[tuple[int, int, int, int]] = []  # (linktype, units, offset in units, snaplen)
    last = (0, 1_000_000)  # (ticks, units) of the last timestamp, for Simple Packet Blocks
    while True:
        if pos + 28 > len(buf):
            buf, base = reader._refill(buf, pos, base, 28)
            pos = 0
            if len(buf) < 12:
                return
        if buf[pos : pos + 4] == _SHB_MAGIC:
            bom = buf[pos + 8 : pos + 12]
            if bom not in (_BOM_LE, _BOM_BE):
                return
            s = _LE if bom == _BOM_LE else _BE
        btype, blen = s.head.unpack_from(buf, pos)
        if blen < 12 or blen % 4 or blen > MAX_BLOCK:
            return
        if pos + blen > len(buf):
            buf, base = reader._refill(buf, pos, base, blen)
            pos = 0
            if blen > len(buf):
                return
        if s.u32.unpack_from(buf, pos + blen - 4)[0] != blen:
            return
        if btype in (_EPB, _PB):
            if blen < 32:
                return
            if btype == _EPB:
                iface, hi, lo, caplen, olen = s.epb.unpack_from(buf, pos + 8)
            else:
                iface, _drops, hi, lo, caplen, olen = s.pb.unpack_from(buf, pos + 8)
            if 32 + caplen > blen:
                return
            frame += 1
            if iface < len(interfaces):
                linktype, units, offset, _ = interfaces[iface]
                last = ((hi << 32 | lo) + offset, units)
                if wanted is None or frame in wanted:
                    yield RawFrame(frame, linktype, *last, buf[pos + 28 : pos + 28 + caplen], olen)
        elif btype == _SPB:
            frame += 1
            if interfaces and (wanted is None or frame in wanted):
                linktype, _, _, snaplen = interfaces[0]
                olen = s.u32.unpack_from(buf, pos + 8)[0]
                caplen = min(olen, blen - 16, snaplen or olen)
                yield RawFrame(frame, linktype, *last, buf[pos + 12 : pos + 12 + caplen], olen)
        elif btype == _IDB:
            if blen < 20:
                return
            linktype, units, tsoffset, snaplen = reader._interface(s, buf, pos, blen, frame + 1, base + pos)
            interfaces.append((linktype, units, int(tsoffset) * units, snaplen))
        elif btype == _SHB:
            if blen < 28 or s.shb.unpack_from(buf, pos + 12)[0] != 1:
                return
            interfaces = []
        pos += blen
