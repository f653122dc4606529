"""The record walker: frames with their byte offsets, checked against the raw file bytes."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import pytest

from sipflow.capture.reader import CaptureReader, RawFrame, iter_frames, read_raw_frames
from sipflow.capture.records import Frame, RecordWalker
from sipflow.capture.types import CaptureWarning
from sipflow.errors import CaptureError, UsageError
from tests.capture_util import (
    RTP,
    SAMPLES,
    Interface,
    Record,
    Section,
    pcap_bytes,
    pcapng_bytes,
    raw_ip_frame,
    read_all,
    records,
    sip_request,
    sip_response,
    udp_frame,
)

FRAMES = [udp_frame(sip_request()), udp_frame(RTP, 40000, 40002), udp_frame(sip_response()), b""]


class BytesSource:
    """A :class:`~sipflow.capture.records.Source` over bytes in memory."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)
        self.error: str | None = None

    def read(self, n: int, /) -> bytes:
        return self._f.read(n)


def walk_bytes(data: bytes, chunk: int = 1 << 20) -> tuple[list[Frame], RecordWalker]:
    walker = RecordWalker(BytesSource(data), name="mem", chunk=chunk)
    return list(walker), walker


def write(tmp_path: Path, data: bytes, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def pcapng_packet_blocks(raw: bytes) -> list[tuple[int, int, str]]:
    """(offset, length, byte order) of every packet block, found independently of sipflow."""
    out = []
    pos, order = 0, "<"
    while pos < len(raw):
        if raw[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if raw[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack_from(order + "II", raw, pos)
        if btype in (2, 3, 6):
            out.append((pos, blen, order))
        pos += blen
    return out


# --- pcap -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_offsets_point_at_the_record_headers(tmp_path: Path, big_endian: bool, nanosecond: bool) -> None:
    frac = 123_456_789 if nanosecond else 123_456
    recs = [Record(f, 1_700_000_000 + i, frac, len(f) + 7) for i, f in enumerate(FRAMES)]
    raw = pcap_bytes(recs, big_endian=big_endian, nanosecond=nanosecond)
    order = ">" if big_endian else "<"
    frames = list(iter_frames(write(tmp_path, raw, "t.pcap")))
    assert [f.number for f in frames] == [1, 2, 3, 4]
    assert frames[0].offset == 24
    for f, r in zip(frames, recs, strict=True):
        assert raw[f.offset : f.offset + 16] == struct.pack(
            order + "IIII", r.sec, r.frac, len(r.data), r.orig_len
        )
        assert raw[f.offset + 16 : f.offset + f.length] == f.data == r.data
        assert f.orig_len == r.orig_len and f.linktype == 1 and f.interface == 0
        assert f.units == (10**9 if nanosecond else 10**6)
        assert f.ticks == r.sec * f.units + r.frac
    assert [a.offset + a.length for a in frames[:-1]] == [b.offset for b in frames[1:]]
    assert frames[-1].offset + frames[-1].length == len(raw)


def test_modified_pcap_offsets(tmp_path: Path) -> None:
    # Kuznetzov's patched libpcap: magic a1b2cd34, 24-octet record headers.
    out = [struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(FRAMES):
        out.append(
            struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + struct.pack("<IHBB", 2, 0x0800, 0, 0)
        )
        out.append(f)
    raw = b"".join(out)
    frames, _ = walk_bytes(raw)
    for i, f in enumerate(frames):
        assert raw[f.offset : f.offset + 16] == struct.pack(
            "<IIII", 1_700_000_000, i, len(f.data), len(f.data)
        )
        assert f.length == 24 + len(f.data) and raw[f.offset + 24 : f.offset + f.length] == f.data


def test_frame_timestamps_are_the_packets_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path, pcap_bytes(records(FRAMES * 20), nanosecond=True), "t.pcap")
    packets, _ = read_all(path)
    frames = {f.number: f for f in iter_frames(path)}
    assert packets
    for p in packets:
        assert p.timestamp == frames[p.frame].timestamp and p.interface == frames[p.frame].interface


# --- pcapng ---------------------------------------------------------------------------------------


def test_pcapng_offsets_over_sections_and_interfaces(tmp_path: Path) -> None:
    inv, ok, bye = sip_request(), sip_response(), sip_request("BYE", cseq=2)
    little = Section(
        big_endian=False,
        interfaces=[Interface(1), Interface(101, tsresol=9), Interface(101, tsresol=0x80 | 20, tsoffset=100)],
        blocks=[
            ("raw", (4, b"\x00\x00\x00\x00")),  # Name Resolution Block: skipped
            ("epb", (0, 1_700_000_000_250_000, udp_frame(inv), None)),
            ("epb", (1, 1_700_000_001_500_000_123, raw_ip_frame(ok), 999)),
            ("raw", (0x00000BAD, b"custom")),
            ("epb", (2, 3 << 20 | 5, raw_ip_frame(bye), None)),
            ("spb", (udp_frame(bye), None)),  # interface 0, the previous timestamp
            ("raw", (5, b"\x00" * 12)),  # Interface Statistics Block: skipped
        ],
    )
    big = Section(
        big_endian=True,
        interfaces=[Interface(228, tsresol=3), Interface(1)],
        blocks=[
            ("epb", (1, 1_700_000_005_000_000, udp_frame(RTP, 40000, 40002), None)),
            ("pb", (0, 1_700_000_006_000, raw_ip_frame(inv))),
            ("epb", (0, 1_700_000_007_000, b"", None)),
        ],
    )
    raw = pcapng_bytes([little, big])
    frames = list(iter_frames(write(tmp_path, raw, "t.pcapng")))
    blocks = pcapng_packet_blocks(raw)
    assert [(f.offset, f.length) for f in frames] == [(o, n) for o, n, _ in blocks]
    assert [f.number for f in frames] == list(range(1, 8))
    assert [f.interface for f in frames] == [0, 1, 2, 0, 1, 0, 0]
    assert [f.linktype for f in frames] == [1, 101, 101, 1, 1, 228, 228]
    for f, (_, _, order) in zip(frames, blocks, strict=True):
        btype, blen = struct.unpack_from(order + "II", raw, f.offset)
        assert blen == f.length == struct.unpack_from(order + "I", raw, f.offset + blen - 4)[0]
        start = f.offset + (12 if btype == 3 else 28)
        assert raw[start : start + len(f.data)] == f.data
    assert frames[1].orig_len == 999
    assert (frames[1].ticks, frames[1].units) == (1_700_000_001_500_000_123, 10**9)
    assert (frames[2].ticks, frames[2].units) == ((3 << 20 | 5) + (100 << 20), 1 << 20)
    assert (frames[3].ticks, frames[3].units) == (frames[2].ticks, frames[2].units)  # SPB inherits
    assert frames[3].timestamp == frames[2].timestamp == pytest.approx(103.0, abs=1e-5)
    assert (frames[5].ticks, frames[5].units) == (1_700_000_006_000, 1000)
    packets, _ = read_all(tmp_path / "t.pcapng")
    by_number = {f.number: f for f in frames}
    assert [p.frame for p in packets] == [1, 2, 3, 4, 6]
    assert all(p.timestamp == by_number[p.frame].timestamp for p in packets)


def test_pcapng_frames_of_an_undefined_interface_are_skipped(tmp_path: Path) -> None:
    sec = Section(
        interfaces=[Interface(1)],
        blocks=[
            ("epb", (3, 0, udp_frame(sip_request()), None)),
            ("epb", (0, 0, udp_frame(sip_request()), None)),
        ],
    )
    with CaptureReader(write(tmp_path, pcapng_bytes([sec]), "t.pcapng")) as reader:
        frames = list(reader.frames())
    assert [f.number for f in frames] == [2]
    assert reader.stats.frames == 2
    assert "undefined interface 3" in reader.warnings[0].message


# --- compression, chunks, selection ------------------------------------------------------------


def test_gzip_offsets_are_in_the_decompressed_file(tmp_path: Path) -> None:
    raw = pcap_bytes(records([udp_frame(sip_request(cseq=i)) for i in range(300)]))
    path = write(tmp_path, gzip.compress(raw), "t.pcap.gz")
    frames = list(iter_frames(path))
    assert len(frames) == 300
    for f in frames:
        assert struct.unpack_from("<II", raw, f.offset + 8) == (len(f.data), len(f.data))
        assert raw[f.offset + 16 : f.offset + f.length] == f.data
    assert frames[-1].offset + frames[-1].length == len(raw)


def test_gzip_pcapng_offsets(tmp_path: Path) -> None:
    sections = [
        Section(interfaces=[Interface(1)], blocks=[("epb", (0, i, f, None)) for i, f in enumerate(FRAMES)]),
        Section(big_endian=True, interfaces=[Interface(1)], blocks=[("spb", (f, None)) for f in FRAMES]),
    ]
    raw = pcapng_bytes(sections)
    frames = list(iter_frames(write(tmp_path, gzip.compress(raw), "t.pcapng.gz")))
    assert [(f.offset, f.length) for f in frames] == [(o, n) for o, n, _ in pcapng_packet_blocks(raw)]


@pytest.mark.parametrize("chunk", [1, 7, 97, 4096])
def test_small_chunks_give_the_same_frames(chunk: int) -> None:
    pcap = pcap_bytes(records(FRAMES * 30))
    pcapng = pcapng_bytes(
        [
            Section(
                interfaces=[Interface(1)],
                blocks=[("epb", (0, i, f, None)) for i, f in enumerate(FRAMES * 30)],
            )
        ]
    )
    for raw in (pcap, pcapng):
        assert walk_bytes(raw, chunk)[0] == walk_bytes(raw)[0]


def test_select_copies_only_the_chosen_frames(tmp_path: Path) -> None:
    path = write(tmp_path, pcap_bytes(records(FRAMES * 5)), "t.pcap")
    everything = list(iter_frames(path))
    chosen = list(iter_frames(path, {2, 7, 19}))
    assert chosen == [f for f in everything if f.number in {2, 7, 19}]
    assert list(read_raw_frames(path, {7})) == [
        RawFrame(7, 1, everything[6].ticks, everything[6].units, everything[6].data, everything[6].orig_len)
    ]


# --- damage, once, errors ----------------------------------------------------------------------


def test_truncated_file_ends_the_frames_with_a_warning(tmp_path: Path) -> None:
    raw = pcap_bytes(records(FRAMES[:3]))
    third = len(raw) - len(FRAMES[2]) - 16
    with CaptureReader(write(tmp_path, raw[:-20], "t.pcap")) as reader:
        frames = list(reader.frames())
    assert [f.number for f in frames] == [1, 2]
    assert reader.stats.truncated and reader.stats.frames == 2
    assert reader.warnings == [
        CaptureWarning(
            file=str(tmp_path / "t.pcap"),
            message=f"the file ends inside record 3 ({len(FRAMES[2]) - 20} of {len(FRAMES[2])} octets)",
            frame=3,
            offset=third,
        )
    ]
    assert reader.position == reader.size


def test_walker_walks_once_and_a_reader_is_read_once(tmp_path: Path) -> None:
    raw = pcap_bytes(records(FRAMES))
    walker = RecordWalker(BytesSource(raw), name="mem")
    assert len(list(walker)) == 4
    with pytest.raises(UsageError):
        walker.frames()
    with CaptureReader(write(tmp_path, raw, "t.pcap")) as reader:
        list(reader)
        with pytest.raises(UsageError):
            reader.frames()


def test_walk_yields_only_what_the_sink_keeps() -> None:
    raw = pcap_bytes(records(FRAMES))
    walker = RecordWalker(BytesSource(raw), name="mem")
    seen: list[int] = []

    def sink(
        number: int, ts: float, linktype: int, buf: bytes, orig: int, start: int, end: int
    ) -> bytes | None:
        seen.append(number)
        return buf[start:end] if number % 2 else None

    out = list(walker.walk(sink))
    assert seen == [1, 2, 3, 4]  # every frame reaches the sink; frames 1 and 3 are kept
    third = 24 + 32 + len(FRAMES[0]) + len(FRAMES[1])
    assert out == [
        (FRAMES[0], 24, 24 + 16 + len(FRAMES[0]), 0, 0, 0),  # ticks only with exact=True
        (FRAMES[2], third, third + 16 + len(FRAMES[2]), 0, 0, 0),
    ]


def test_walker_header_errors() -> None:
    with pytest.raises(CaptureError, match="not a pcap or pcapng file: magic number 68656c6c"):
        RecordWalker(BytesSource(b"hello"), name="mem")
    with pytest.raises(CaptureError, match="pcap header cut short"):
        RecordWalker(BytesSource(b"\xd4\xc3\xb2\xa1\x02\x00"), name="mem")


# --- real captures ---------------------------------------------------------------------------------


@pytest.mark.skipif(not (SAMPLES / "aaa.pcap").is_file(), reason="../shared/captures not present")
@pytest.mark.parametrize(
    "name", ["aaa.pcap", "sip_ipv4_tcp.pcap", "voip1b.pcapng", "uac-uas-scenario-sipp.pcapng"]
)
def test_sample_offsets(name: str) -> None:
    raw = (SAMPLES / name).read_bytes()
    with CaptureReader(SAMPLES / name) as reader:
        frames = list(reader.frames())
    packets, decoded = read_all(SAMPLES / name)
    assert len(frames) == decoded.stats.frames == reader.stats.frames
    if name.endswith(".pcapng"):
        assert [(f.offset, f.length) for f in frames] == [(o, n) for o, n, _ in pcapng_packet_blocks(raw)]
    else:
        order = "<" if raw[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        assert [a.offset + a.length for a in frames[:-1]] == [b.offset for b in frames[1:]]
        for f in frames:
            assert struct.unpack_from(order + "I", raw, f.offset + 8)[0] == len(f.data)
            assert raw[f.offset + 16 : f.offset + f.length] == f.data
    by_number = {f.number: f for f in frames}
    assert all(p.timestamp == by_number[p.frame].timestamp for p in packets)
