"""The records of a pcap or pcapng file, walked once in file order: the capture formats.

:class:`RecordWalker` owns the read buffer of one capture. It parses the file header when it
is created (raising :class:`CaptureError`) and then walks the records, reading the
(decompressed) octets from a :class:`Source` a chunk at a time: it never holds more than one
chunk plus one record. Every record is found here and nowhere else, whether it is decoded
into packets (:class:`~sipflow.capture.reader.CaptureReader`), copied into another capture
(``sipflow.capture.writer``) or indexed by its byte offset (:class:`Frame`).

Formats:

* pcap (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html): both byte orders,
  microsecond (``a1b2c3d4``) and nanosecond (``a1b23c4d``) timestamps, and the "modified"
  Kuznetzov format (``a1b2cd34``, 24-octet record headers);
* pcapng (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html): Section Header
  Blocks of either byte order (several sections per file), Interface Description Blocks with
  their own link types and ``if_tsresol`` / ``if_tsoffset``, Enhanced, Simple and obsolete
  Packet Blocks; other blocks are skipped.

Damage inside a readable file is not an exception: a record cut by the end of the file or a
corrupt record length stops the walk with a :class:`CaptureWarning` (file, frame, byte offset)
and ``stats.truncated`` set; every record before it has been handed on.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from sipflow.capture.types import CaptureStats, CaptureWarning
from sipflow.errors import CaptureError, UsageError

CHUNK: Final = 1 << 20
"""Octets read from the file at a time."""

MAX_RECORD: Final = 262144
"""Largest captured length accepted in a record (Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD);
a larger value means a corrupt record header."""

MAX_BLOCK: Final = 16 << 20
"""Largest pcapng block accepted (a packet block is at most MAX_RECORD plus its options)."""

_ETHERNET: Final = 1


class Skipper(Protocol):
    """Takes a run of records that need no decoding at once (``Decoder``, with the compiled
    fast path, counts them, measures their RTP and makes the packets of plain SIP datagrams):
    given the read buffer, where a record starts and the number of the frame before it, it
    returns where the first record it does not take starts, and how many it took (having
    counted them)."""

    def skip_pcap(
        self, buf: bytes, pos: int, big_endian: bool, header_length: int, frame: int, scale: float
    ) -> tuple[int, int, list[Any]]:
        """Ethernet pcap records from ``pos``; ``scale``: seconds per timestamp fraction unit.
        Also returns what the sink would have returned for the records taken, all together
        (empty when none of them was kept)."""
        ...

    def skip_pcapng(
        self, buf: bytes, pos: int, big_endian: bool, ethernet: bytes, frame: int, clocks: bytes
    ) -> tuple[int, int, int]:
        """Enhanced Packet Blocks from ``pos`` of the interfaces ``ethernet`` marks (octet i
        non-zero: interface i is Ethernet); also where the last block taken starts (-1: none).
        ``clocks``: per interface, two native doubles: timestamp units per second, and
        ``if_tsoffset`` in seconds."""
        ...


# pcap magic numbers as they appear in the file (draft-ietf-opsawg-pcap §4).
_PCAP_MAGICS: Final[dict[bytes, tuple[str, int, int]]] = {
    # magic octets: (byte order, timestamp fraction units per second, record header length)
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000, 16),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000, 16),
    b"\x34\xcd\xb2\xa1": ("<", 1_000_000, 24),  # Alexey Kuznetzov's modified pcap
    b"\xa1\xb2\xcd\x34": (">", 1_000_000, 24),
}
_SCALES: Final = {1_000_000: 1e-6, 1_000_000_000: 1e-9}
_CLOCK: Final = struct.Struct("=dd")
_EXACT: Final = 1 << 53


def _seconds(ticks: int, units: int, offset: float) -> float:
    """A pcapng timestamp in seconds: ``ticks`` of 1/``units`` s, plus ``if_tsoffset``.

    Below 2**53 ticks (microseconds until the year 2255) one division, exact to the last bit;
    above (nanoseconds), whole seconds and their fraction apart, within one unit in the last
    place. The compiled fast path (``_fastpath.skip_pcapng``) does the very same arithmetic, so
    that both give the same floats."""
    if ticks < _EXACT:
        return ticks / units + offset
    whole, part = divmod(ticks, units)
    return whole + part / units + offset


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

R = TypeVar("R")


def capture_format(head: bytes) -> str | None:
    """``pcap`` or ``pcapng`` as the first octets of a (decompressed) file say, else None."""
    magic = head[:4]
    if magic in _PCAP_MAGICS:
        return "pcap"
    return "pcapng" if magic == _SHB_MAGIC else None


class Source(Protocol):
    """Where a :class:`RecordWalker` reads the octets of a capture (decompressed) from."""

    def read(self, n: int, /) -> bytes:
        """The next ``n`` octets; fewer only at the end of the data or after a read error."""
        ...

    @property
    def error(self) -> str | None:
        """Why reading ended early (e.g. ``gzip error: ...``), or None."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One frame of a capture, undecoded, with where its record is in the file."""

    number: int
    """1-based frame number, as in :attr:`SipPayload.frame`."""
    offset: int
    """Byte offset of the frame's record (pcap record header or pcapng block) in the file,
    after decompression for a compressed file."""
    length: int
    """Octets of the record in the file, header and padding included: ``offset + length`` is
    the offset of the next record or block."""
    timestamp: float
    """Capture time in seconds since the Unix epoch, as :attr:`SipPayload.timestamp` has it."""
    ticks: int
    """The exact capture time in 1/``units`` seconds since the Unix epoch (pcapng
    ``if_tsoffset`` included)."""
    units: int
    """Timestamp units per second: 10**6, 10**9, or what a pcapng ``if_tsresol`` says."""
    interface: int
    """The pcapng interface id within its section (0 for pcap)."""
    linktype: int
    """The link type of the frame's interface (pcap header or pcapng IDB)."""
    data: bytes
    """The captured octets."""
    orig_len: int
    """Length of the frame on the wire."""


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

_Interface = tuple[int, int, float, int, int]
"""A pcapng interface: (link type, timestamp units per second, ``if_tsoffset`` in seconds,
snapshot length, ``if_tsoffset`` in units)."""

_NO_TIME: Final[_Interface] = (0, 1_000_000, 0.0, 0, 0)
"""The timestamp units a Simple Packet Block inherits when no packet block precedes it."""


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


class RecordWalker:
    """The records of one pcap or pcapng capture, walked once.

    >>> walker = RecordWalker(source, name="call.pcap")   # doctest: +SKIP
    >>> for frame in walker:
    ...     print(frame.number, frame.offset, len(frame.data))

    (For a file, ``sipflow.capture.reader.iter_frames(path)`` opens and decompresses it.)

    ``source`` gives the octets of the file after ``head``, the octets already read from its
    start (a chunk is read when ``head`` is None; a reader passes what it read to check the
    file type). Creating the walker parses the file header, raising :class:`CaptureError`
    (naming ``name`` and the byte offset) if it is not a pcap or pcapng header. Damage found
    while walking is appended to ``warnings`` and sets ``stats.truncated`` (both made here
    unless given: a reader shares them with its decoder).

    Walk it once, either as :class:`Frame` objects (iterating it, or :meth:`frames`) or through
    a sink (:meth:`walk`), which is how a decoder sees every record without one object being
    built for it.
    """

    def __init__(
        self,
        source: Source,
        head: bytes | None = None,
        *,
        name: str,
        stats: CaptureStats | None = None,
        warnings: list[CaptureWarning] | None = None,
        chunk: int = CHUNK,
    ) -> None:
        self.name = name
        """The file's label in warnings and errors."""
        self.stats = stats if stats is not None else CaptureStats()
        """``truncated`` is set here; ``frames`` counts the records walked (a decoder sink
        counts those it is fed)."""
        self.warnings: list[CaptureWarning] = warnings if warnings is not None else []
        self.chunk = chunk
        """Octets read from ``source`` at a time (more for a record that is larger)."""
        self.format = ""
        """``pcap`` or ``pcapng``."""
        self.linktype: int | None = None
        """The pcap header's link type (None for pcapng, where each interface has its own)."""
        self.interfaces: tuple[str, ...] = ("",)
        """The name (``if_name``, or empty) of each interface a pcapng file describes before
        its first packet, as far as ``head`` holds them; one unnamed interface for pcap."""
        self._source = source
        # At least a pcap file header or a Section Header Block without options.
        self._buf = source.read(max(chunk, 28)) if head is None else head
        self._base = 0  # file offset of _buf[0]
        self._order = "<"
        self._units = 1_000_000
        self._hlen = 16
        self._started = False
        fmt = capture_format(self._buf)
        if fmt == "pcap":
            self._open_pcap()
        elif fmt == "pcapng":
            self._open_pcapng()
        else:
            raise self._error(f"not a pcap or pcapng file: magic number {self._buf[:4].hex()}", 0)

    # --- the file header ---------------------------------------------------------------------

    def _error(self, reason: str, offset: int) -> CaptureError:
        return CaptureError(reason, file=self.name, offset=offset)

    def _open_pcap(self) -> None:
        self.format = "pcap"
        buf = self._buf
        self._order, self._units, self._hlen = _PCAP_MAGICS[buf[:4]]
        if len(buf) < 24:
            raise self._error(f"pcap header cut short ({len(buf)} of 24 octets)", len(buf))
        major, minor, _zone, _sigfigs, _snaplen, network = struct.unpack_from(self._order + "HHiIII", buf, 4)
        if major != 2:
            raise self._error(f"unsupported pcap version {major}.{minor}", 4)
        # The upper bits carry the FCS length (draft-ietf-opsawg-pcap §4, LinkType and
        # additional information); an Ethernet FCS is ignored anyway (IP lengths bound payloads).
        self.linktype = network & 0x03FFFFFF
        self._buf = buf[24:]
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

    # --- walking -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        """The file's frames (see :meth:`frames`)."""
        return self.frames()

    def frames(self, select: Container[int] | None = None) -> Iterator[Frame]:
        """The file's frames in file order; only those numbered in ``select`` when given
        (the others are still walked and counted, but not copied)."""
        stats = self.stats

        def sink(
            number: int, timestamp: float, linktype: int, data: bytes, orig_len: int, start: int, end: int
        ) -> tuple[int, float, int, bytes, int] | None:
            stats.frames += 1
            if select is None or number in select:
                return number, timestamp, linktype, data[start:end], orig_len
            return None

        return self._frames(self.walk(sink, exact=True))

    @staticmethod
    def _frames(
        walked: Iterator[tuple[tuple[int, float, int, bytes, int], int, int, int, int, int]],
    ) -> Iterator[Frame]:
        for (number, timestamp, linktype, data, orig_len), offset, end, interface, ticks, units in walked:
            yield Frame(
                number=number, offset=offset, length=end - offset, timestamp=timestamp, ticks=ticks,
                units=units, interface=interface, linktype=linktype, data=data, orig_len=orig_len,
            )  # fmt: skip

    def walk(
        self,
        sink: Callable[[int, float, int, bytes, int, int, int], R | None],
        *,
        exact: bool = False,
        skip: Skipper | None = None,
    ) -> Iterator[tuple[R, int, int, int, int, int]]:
        """Hand every frame to ``sink``; yield what it returns, when that is true.

        ``sink(number, timestamp, linktype, buffer, orig_len, start, end)`` gets the frame
        number (from 1), its capture time in seconds, its link type, the read buffer with the
        captured octets at ``buffer[start:end]`` (valid during the call only: the buffer is
        reused) and the frame's length on the wire: the signature of ``Decoder.feed``. For
        each true result the walk yields ``(result, offset, end_offset, interface, ticks,
        units)``: the result, where the frame's record starts and ends in the file, its pcapng
        interface id (0 for pcap) and, with ``exact``, its exact timestamp (see
        :class:`Frame`; else ``ticks`` and ``units`` are 0: the integer arithmetic costs about
        1 % of reading a SIP-dense file). Only a sink that keeps something pays for these, so
        a decoder that rejects most frames costs no more than its own calls. A walker walks
        once.

        ``skip``, when given, is asked to take the records after each one ``sink`` kept nothing
        of (a run of media frames, say), which ``sink`` then never sees.
        """
        if self._started:
            raise UsageError(f"{self.name}: a capture's records can be walked only once")
        self._started = True
        if self.format == "pcap":
            return self._pcap(sink, exact, skip)
        return self._pcapng(sink, exact, skip)

    def _refill(self, buf: bytes, pos: int, base: int, need: int) -> tuple[bytes, int]:
        """Keep ``buf[pos:]`` and read until it holds ``need`` octets (or the file ends).

        Returns the new buffer and the file offset of its first octet.
        """
        tail = buf[pos:]
        want = need - len(tail)
        more = self._source.read(max(self.chunk, want))
        while 0 < len(more) < want:
            # A stream (a pipe from a live capture) gives what it has: read on until the
            # record is whole; only an empty read is the end.
            extra = self._source.read(max(self.chunk, want - len(more)))
            if not extra:
                break
            more += extra
        return (tail + more if tail else more), base + pos

    def _stop(self, message: str, frame: int, offset: int) -> None:
        """Damage in the file: warn, mark the result partial, stop reading."""
        error = self._source.error
        if error is not None:
            message = f"{message} ({error})"
        self.stats.truncated = True
        self.warnings.append(CaptureWarning(file=self.name, message=message, frame=frame, offset=offset))

    def _pcap(
        self,
        sink: Callable[[int, float, int, bytes, int, int, int], R | None],
        exact: bool,
        skip: Skipper | None,
    ) -> Iterator[tuple[R, int, int, int, int, int]]:
        assert self.linktype is not None
        unpack = struct.Struct(self._order + "IIII").unpack_from
        hlen = self._hlen
        units = self._units
        scale = _SCALES[units]
        linktype = self.linktype
        refill = self._refill
        buf, base = self._buf, self._base
        self._buf = b""
        pos = 0
        n = len(buf)
        frame = 0
        fast = skip.skip_pcap if skip is not None and linktype == _ETHERNET else None
        big = self._order == ">"
        try_fast = fast is not None
        while True:
            if try_fast:
                assert fast is not None
                start = pos
                pos, taken, kept = fast(buf, pos, big, hlen, frame, scale)
                frame += taken
                try_fast = False
                if kept:
                    # The run's packets at once; their offsets are those of the run.
                    yield kept, base + start, base + pos, 0, 0, 0  # type: ignore[misc]
            if pos + hlen > n:
                buf, base = refill(buf, pos, base, hlen)
                pos, n = 0, len(buf)
                if hlen > n:
                    if n:
                        self._stop(f"the file ends inside the header of record {frame + 1}", frame + 1, base)
                    elif self._source.error is not None:
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
            end = start + incl
            if end > n:
                buf, base = refill(buf, pos, base, hlen + incl)
                pos, n = 0, len(buf)
                start, end = hlen, hlen + incl
                if end > n:
                    self._stop(
                        f"the file ends inside record {frame + 1} ({n - hlen} of {incl} octets)",
                        frame + 1,
                        base,
                    )
                    return
            frame += 1
            result = sink(frame, ts_s + ts_frac * scale, linktype, buf, orig, start, end)
            if result:
                if exact:
                    yield result, base + pos, base + end, 0, ts_s * units + ts_frac, units
                else:
                    yield result, base + pos, base + end, 0, 0, 0
            try_fast = fast is not None
            pos = end

    def _pcapng(
        self,
        sink: Callable[[int, float, int, bytes, int, int, int], R | None],
        exact: bool,
        skip: Skipper | None,
    ) -> Iterator[tuple[R, int, int, int, int, int]]:
        s = _LE
        head, epb, u32 = s.head.unpack_from, s.epb.unpack_from, s.u32.unpack_from
        refill = self._refill
        buf, base = self._buf, self._base
        self._buf = b""
        pos = 0
        n = len(buf)
        frame = 0
        interfaces: list[_Interface] = []
        # The last packet block's timestamp, which a Simple Packet Block inherits: in seconds,
        # and exactly (ticks before if_tsoffset, in the units of interface ``last``).
        last_ts = 0.0
        last_ticks = 0
        last = _NO_TIME
        warned_ifaces: set[int] = set()
        fast = skip.skip_pcapng if skip is not None else None
        ethernet = b""  # octet i: 1 when interface i of the section is Ethernet
        clocks = b""  # per interface: units per second and offset, as native doubles
        big = False
        try_fast = False
        while True:
            if try_fast:
                assert fast is not None
                pos, taken, at = fast(buf, pos, big, ethernet, frame, clocks)
                if taken:
                    frame += taken
                    # The last block taken has the walker's last timestamp (Simple Packet Blocks).
                    iface, hi, lo, _caplen, _olen = epb(buf, at + 8)
                    last = interfaces[iface]
                    last_ticks = (hi << 32) | lo
                    last_ts = _seconds(last_ticks, last[1], last[2])
                try_fast = False
            if pos + 28 > n:
                buf, base = refill(buf, pos, base, 28)
                pos, n = 0, len(buf)
                if n < 12:
                    if n:
                        self._stop("the file ends inside a block header", frame + 1, base)
                    elif self._source.error is not None:
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
                big = s is _BE
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
                    last = interfaces[iface]
                    last_ticks = (hi << 32) | lo
                    if last_ticks < _EXACT:  # _seconds, inline: this is once per packet
                        last_ts = last_ticks / last[1] + last[2]
                    else:
                        last_ts = _seconds(last_ticks, last[1], last[2])
                    result = sink(frame, last_ts, last[0], buf, olen, pos + 28, pos + 28 + caplen)
                    if result:
                        if exact:
                            yield result, base + pos, base + pos + blen, iface, last_ticks + last[4], last[1]
                        else:
                            yield result, base + pos, base + pos + blen, iface, 0, 0
                    elif fast is not None and ethernet:
                        try_fast = True
                else:
                    self._no_interface(iface, frame, base + pos, warned_ifaces)
            elif btype == _SPB:
                # pcapng §4.4: original length only; interface 0, no timestamp.
                frame += 1
                if interfaces:
                    linktype, _, _, snaplen, _ = interfaces[0]
                    olen = u32(buf, pos + 8)[0]
                    caplen = min(olen, blen - 16)
                    if snaplen:
                        caplen = min(caplen, snaplen)
                    # A Simple Packet Block has no timestamp: it inherits the previous one.
                    result = sink(frame, last_ts, linktype, buf, olen, pos + 12, pos + 12 + caplen)
                    if result:
                        if exact:
                            yield result, base + pos, base + pos + blen, 0, last_ticks + last[4], last[1]
                        else:
                            yield result, base + pos, base + pos + blen, 0, 0, 0
                else:
                    self._no_interface(0, frame, base + pos, warned_ifaces)
            elif btype == _IDB:
                if blen < 20:
                    self._stop("corrupt Interface Description Block (too short)", frame + 1, base + pos)
                    return
                interfaces.append(self._interface(s, buf, pos, blen, frame + 1, base + pos))
                marks = bytes(i[0] == _ETHERNET for i in interfaces)
                ethernet = marks if any(marks) else b""
                clocks = b"".join(_CLOCK.pack(float(i[1]), i[2]) for i in interfaces)
            elif btype == _SHB:
                if blen < 28:
                    self._stop("corrupt Section Header Block (too short)", frame + 1, base + pos)
                    return
                major, minor = s.shb.unpack_from(buf, pos + 12)
                if major != 1:
                    self._stop(f"unsupported pcapng section version {major}.{minor}", frame + 1, base + pos)
                    return
                interfaces = []  # interface ids are per section
                ethernet = clocks = b""
                warned_ifaces = set()
            # NRB, ISB, DSB, custom and unknown blocks carry no packets: skipped.
            pos += blen

    def _interface(self, s: _Structs, buf: bytes, pos: int, blen: int, frame: int, offset: int) -> _Interface:
        """An Interface Description Block (pcapng §4.2): link type, timestamp units per second
        from ``if_tsresol``, ``if_tsoffset`` (in seconds, and in units), snapshot length."""
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
        return linktype, units, float(tsoffset), snaplen, tsoffset * units

    def _no_interface(self, iface: int, frame: int, offset: int, warned: set[int]) -> None:
        """A packet block of an interface its section has not described: counted, skipped."""
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
