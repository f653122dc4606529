"""Copying selected frames of captures into a new capture (``sipflow export`` to pcap).

:func:`write_frames` takes plain data, file name → frame numbers (the caller collects them from
the messages of the calls it selected: ``Message.file`` and every frame in ``Message.frames``),
and copies exactly those frames: their octets, original timestamps, lengths and link types.
Nothing is decoded or rebuilt, so what was captured is what is written.

The output is the simplest file that holds the frames without loss:

* **classic pcap** when every frame has the same link type: written with scapy's
  :class:`~scapy.utils.PcapWriter` (as sngrep's "save" writes with libpcap), microsecond
  timestamps, or nanosecond ones when a source has a finer resolution (a rare power-of-two
  pcapng resolution is rounded to the nanosecond);
* **pcapng** otherwise, with one interface per (source file, link type), named after the file
  and keeping the source's timestamp resolution (two, should one file mix resolutions). This
  part is written here with ``struct`` (pcapng §4.1–4.3): scapy's ``PcapNgWriter`` writes no
  ``if_tsresol`` (microseconds only, so the nanosecond stamps of a dumpcap capture would be
  cut), chooses interfaces by ``if_name`` with an unnamed interface 0 of one preset link type,
  and takes a frame's link type only through a private method.

Frames are written in time order across files (a stable merge: frames of one file keep their
order in it, ties go to the earlier file). Only the selected frames are written: for SIP over
TCP that is every segment that carried part of a message, but not the handshake or the bare
ACKs, which on a shared connection belong to no call in particular (tshark and sipflow
reassemble the messages without them, even across the gaps other calls' messages leave).
"""

from __future__ import annotations

import heapq
import itertools
import os
import secrets
import stat
import struct
from collections.abc import Collection, Iterator, Mapping
from fractions import Fraction
from typing import BinaryIO, Final

from sipflow.capture.reader import MAX_RECORD, RawFrame, is_stream, read_raw_frames
from sipflow.errors import CaptureError, UsageError

LINKTYPE_ETHERNET: Final = 1
"""The link type of an empty output (no frame selected)."""

_MICRO: Final = 10**6
_NANO: Final = 10**9
_U32: Final = 0xFFFFFFFF
_U64: Final = 0xFFFFFFFFFFFFFFFF

# pcapng (draft-ietf-opsawg-pcapng §4): block types and option codes.
_SHB: Final = 0x0A0D0D0A
_IDB: Final = 1
_EPB: Final = 6
_OPT_END: Final = 0
_SHB_USERAPPL: Final = 4
_IF_NAME: Final = 2
_IF_TSRESOL: Final = 9

_Interface = tuple[str, int, int]
"""(source file, link type, timestamp units per second): one pcapng interface of the output."""


def write_frames(selection: Mapping[str, Collection[int]], out: str | os.PathLike[str]) -> int:
    """Copy the frames ``selection`` names (source file → 1-based frame numbers, as in
    ``SipPayload.frame``) into a new capture at ``out``; return how many were written.

    The sources are streamed (gzip, bzip2 and xz too) twice: once for the link types and
    timestamp resolutions, which decide the format (see the module docstring), once to copy.
    A frame number the file does not have is skipped (the count tells). ``out`` is replaced
    only once it is complete, so it may even be one of the sources.

    >>> write_frames({"a.pcap": {1, 2, 5}, "b.pcap": {3}}, "call.pcap")  # doctest: +SKIP
    4

    Raises :class:`CaptureError` if a source cannot be read or ``out`` cannot be written.
    """
    wanted = {file: frozenset(frames) for file, frames in selection.items() if frames}
    for file in wanted:
        if is_stream(file):
            raise UsageError(f"cannot copy frames from {file}: a pipe (standard input) is read only once")
    interfaces: dict[_Interface, int] = {}
    for file, frames in wanted.items():
        for raw in _selected(file, frames):
            interfaces.setdefault((file, raw.linktype, raw.units), len(interfaces))
    streams = [_tagged(file, frames) for file, frames in wanted.items()]
    merged = heapq.merge(*streams, key=_time) if len(streams) > 1 else itertools.chain(*streams)
    linktypes = {linktype for _, linktype, _ in interfaces}
    path = os.fspath(out)
    try:
        with _Output(path) as f:
            if len(linktypes) <= 1:
                linktype = linktypes.pop() if linktypes else LINKTYPE_ETHERNET
                units = _NANO if any(_MICRO % u for _, _, u in interfaces) else _MICRO
                return _write_pcap(f, linktype, units, (raw for _, raw in merged))
            return _write_pcapng(f, interfaces, merged)
    except OSError as exc:  # the sources' read errors are CaptureError or end them quietly
        raise CaptureError(f"cannot write: {exc.strerror or exc}", file=path) from None


def _selected(file: str, frames: Collection[int]) -> Iterator[RawFrame]:
    """The frames of ``file`` numbered in ``frames``; reading stops after the last of them."""
    left = len(frames)
    raw_frames = read_raw_frames(file, frames)
    try:
        for raw in raw_frames:
            yield raw
            left -= 1
            if not left:
                return
    finally:
        raw_frames.close()


def _tagged(file: str, frames: Collection[int]) -> Iterator[tuple[str, RawFrame]]:
    for raw in _selected(file, frames):
        yield file, raw


def _time(item: tuple[str, RawFrame]) -> Fraction:
    return Fraction(item[1].ticks, item[1].units)


def _rescale(raw: RawFrame, units: int) -> int:
    """The frame's timestamp in 1/``units`` seconds (exact, or rounded to the nearest)."""
    if raw.units == units:
        return raw.ticks
    return (2 * raw.ticks * units + raw.units) // (2 * raw.units)


def _write_pcap(f: BinaryIO, linktype: int, units: int, frames: Iterator[RawFrame]) -> int:
    """A classic pcap file (draft-ietf-opsawg-pcap §4), little-endian, written by scapy."""
    # scapy takes a second to import: only exporting to pcap pays for it.
    from scapy.utils import PcapWriter  # noqa: PLC0415

    writer = PcapWriter(f, linktype=linktype, nano=units == _NANO, endianness="<", snaplen=MAX_RECORD)
    writer.linktype = linktype  # the constructor ignores a falsy one: 0 is BSD loopback (NULL)
    writer.write_header(None)
    n = 0
    for raw in frames:
        sec, frac = divmod(min(max(_rescale(raw, units), 0), _U32 * units), units)
        writer.write_packet(raw.data, sec=sec, usec=frac, caplen=len(raw.data), wirelen=raw.orig_len)
        n += 1
    writer.flush()
    return n


def _block(btype: int, body: bytes) -> bytes:
    """A pcapng block (§3.1), the body padded to 32 bits."""
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def _option(code: int, value: bytes) -> bytes:
    """A pcapng option (§3.5), padded to 32 bits."""
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _tsresol(units: int) -> bytes:
    """The ``if_tsresol`` octet (§4.2) for ``units`` per second: 10^-v, or 2^-v with the MSB set."""
    v = len(str(units)) - 1
    if units == 10**v:
        return bytes([v])
    return bytes([0x80 | (units.bit_length() - 1)])


def _write_pcapng(
    f: BinaryIO, interfaces: Mapping[_Interface, int], frames: Iterator[tuple[str, RawFrame]]
) -> int:
    """A little-endian pcapng file: one section, the interfaces, then Enhanced Packet Blocks."""
    shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)  # byte-order magic, version 1.0, length unknown
    f.write(_block(_SHB, shb + _option(_SHB_USERAPPL, b"sipflow") + _option(_OPT_END, b"")))
    for (file, linktype, units), _ in sorted(interfaces.items(), key=lambda item: item[1]):
        options = _option(_IF_NAME, file.encode("utf-8", "replace")) + _option(_IF_TSRESOL, _tsresol(units))
        f.write(_block(_IDB, struct.pack("<HHI", linktype, 0, 0) + options + _option(_OPT_END, b"")))
    epb = struct.Struct("<IIIII")
    n = 0
    for file, raw in frames:
        ticks = min(max(raw.ticks, 0), _U64)
        head = epb.pack(
            interfaces[file, raw.linktype, raw.units], ticks >> 32, ticks & _U32, len(raw.data), raw.orig_len
        )
        f.write(_block(_EPB, head + raw.data))
        n += 1
    return n


class _Output:
    """The output file: written beside ``path`` and moved over it once complete (so a failed
    export leaves nothing behind, and ``path`` may be one of the sources), or written in place
    when ``path`` exists and is not a regular file (``/dev/stdout``, a pipe)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp: str | None = None
        try:
            in_place = not stat.S_ISREG(os.stat(path).st_mode)
        except OSError:
            in_place = False
        if not in_place:
            head, tail = os.path.split(path)
            self.tmp = os.path.join(head, f".{tail}.{secrets.token_hex(4)}.part")
        self.file: BinaryIO = open(self.tmp or path, "wb")  # noqa: SIM115  # closed by __exit__

    def __enter__(self) -> BinaryIO:
        return self.file

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            self.file.close()
            if self.tmp is not None and exc_type is None:
                os.replace(self.tmp, self.path)
        finally:
            if self.tmp is not None and os.path.exists(self.tmp):
                os.unlink(self.tmp)
