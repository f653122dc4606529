"""The file readers: pcap and pcapng variants, compression, damage and error paths."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import CookedLinux

from sipflow.capture import reader as reader_module
from sipflow.capture.reader import CaptureReader, read_packets
from sipflow.capture.types import Transport
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
    write_and_read,
)

FRAMES = [
    udp_frame(sip_request()),
    udp_frame(RTP, 40000, 40002),
    udp_frame(sip_response()),
]


# --- pcap ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, big_endian: bool, nanosecond: bool) -> None:
    frac = 123_456_789 if nanosecond else 123_456
    recs = [Record(f, 1_700_000_000 + i, frac) for i, f in enumerate(FRAMES)]
    packets, r = write_and_read(tmp_path, pcap_bytes(recs, big_endian=big_endian, nanosecond=nanosecond))
    assert r.format == "pcap"
    assert r.linktype == 1
    assert [p.frame for p in packets] == [1, 3]
    assert [p.frames for p in packets] == [(1,), (3,)]
    assert packets[0].payload == sip_request()
    assert packets[1].payload == sip_response()
    assert packets[0].timestamp == pytest.approx(
        1_700_000_000.123456789 if nanosecond else 1_700_000_000.123456, abs=1e-6
    )
    assert packets[1].timestamp - packets[0].timestamp == pytest.approx(2.0, abs=1e-6)
    assert packets[0].src.host == "192.0.2.1" and packets[0].dst.port == 5060
    assert packets[0].transport is Transport.UDP
    assert all(p.file == str(tmp_path / "t.pcap") for p in packets)
    assert r.stats.frames == 3
    assert r.stats.sip_packets == 2
    assert r.stats.non_sip == {"RTP": 1}
    assert not r.stats.truncated and r.warnings == []


def test_modified_pcap_format(tmp_path: Path) -> None:
    # Kuznetzov's patched libpcap: magic a1b2cd34, 8 extra octets per record header.
    out = [struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(FRAMES):
        out.append(
            struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + struct.pack("<IHBB", 2, 0x0800, 0, 0)
        )
        out.append(f)
    packets, r = write_and_read(tmp_path, b"".join(out))
    assert [p.frame for p in packets] == [1, 3]
    assert r.warnings == []


def test_name_overrides_the_path_in_packets_and_warnings(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    data = pcap_bytes(records(FRAMES))
    path.write_bytes(data[:-10])
    packets, r = read_all(path, name="label")
    assert {p.file for p in packets} == {"label"}
    assert r.warnings[0].file == "label"


def test_header_only_pcap_is_an_empty_capture(tmp_path: Path) -> None:
    packets, r = write_and_read(tmp_path, pcap_bytes([]))
    assert packets == [] and r.stats.frames == 0 and not r.stats.truncated


def test_size_and_position(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_bytes(records(FRAMES * 50)))
    with CaptureReader(path) as r:
        assert r.size == path.stat().st_size
        seen = []
        for _ in r:
            seen.append(r.position)
        assert seen == sorted(seen)
        assert all(0 < p <= r.size for p in seen)
    assert r.position == r.size


_NEEDS_SHARED = pytest.mark.skipif(
    not (SAMPLES / "aaa.pcap").is_file(), reason="../shared/captures not present"
)


@_NEEDS_SHARED
def test_small_read_chunks_give_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records straddling chunk boundaries (and records larger than a chunk) are reassembled."""
    for name in ("aaa.pcap", "voip1b.pcapng", "sip-long-request-response-paths.pcap", "sip_ipv4_tcp.pcap"):
        expected, r1 = read_all(SAMPLES / name)
        monkeypatch.setattr(reader_module, "CHUNK", 97)
        got, r2 = read_all(SAMPLES / name)
        monkeypatch.undo()
        assert got == expected, name
        assert r1.stats == r2.stats


def test_iterating_twice_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_bytes(records(FRAMES)))
    with CaptureReader(path) as r:
        list(r)
        with pytest.raises(UsageError):
            iter(r)


def test_read_packets_convenience(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_bytes(records(FRAMES)))
    assert [p.frame for p in read_packets(path)] == [1, 3]
    with pytest.raises(CaptureError):
        read_packets(tmp_path / "missing.pcap")  # raised at once, not at the first next()


def test_close_ends_iteration_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_bytes(records(FRAMES * 3)))
    r = CaptureReader(path)
    it = iter(r)
    next(it)
    r.close()
    list(it)  # no exception
    r.close()  # idempotent


# --- pcapng -------------------------------------------------------------------------------------


def sll_frame(payload: bytes) -> bytes:
    return bytes(
        CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6)
        / IP(src="198.51.100.7", dst="198.51.100.8")
        / UDP(sport=5062, dport=5060)
        / payload
    )


def test_pcapng_interfaces_resolutions_sections_and_blocks(tmp_path: Path) -> None:
    inv, ok, bye = sip_request(), sip_response(), sip_request("BYE", cseq=2)
    little = Section(
        big_endian=False,
        interfaces=[
            Interface(1),  # default resolution: microseconds
            Interface(113, tsresol=9),  # nanoseconds, Linux cooked
            Interface(101, tsresol=0x80 | 20, tsoffset=100),  # 2^-20 s, with an offset
        ],
        blocks=[
            ("raw", (4, b"\x00\x00\x00\x00")),  # Name Resolution Block: skipped
            ("epb", (0, 1_700_000_000_250_000, udp_frame(inv), None)),
            ("epb", (1, 1_700_000_001_500_000_000, sll_frame(ok), None)),
            ("raw", (0x00000BAD, b"custom")),  # custom block: skipped
            ("epb", (2, 3 << 20, raw_ip_frame(bye), None)),
            ("spb", (udp_frame(bye), None)),  # Simple Packet Block: interface 0, previous timestamp
            ("raw", (5, b"\x00" * 12)),  # Interface Statistics Block: skipped
        ],
    )
    big = Section(
        big_endian=True,
        interfaces=[Interface(228, tsresol=3)],  # milliseconds, raw IPv4
        blocks=[
            ("epb", (0, 1_700_000_005_000, raw_ip_frame(ok), None)),
            ("pb", (0, 1_700_000_006_000, raw_ip_frame(inv))),
        ],
    )
    packets, r = write_and_read(tmp_path, pcapng_bytes([little, big]), "t.pcapng")
    assert r.format == "pcapng" and r.linktype is None
    # Frame 3's time (103 s after 1970, by its offset) is decades from its neighbours': said.
    assert [(w.frame, w.message.split(" after ")[0]) for w in r.warnings] == [
        (3, "the capture time jumps 53.9 years back"),
        (5, "the capture time jumps 53.9 years forward"),
    ]
    assert [p.frame for p in packets] == [1, 2, 3, 4, 5, 6]
    assert [p.payload for p in packets] == [inv, ok, bye, bye, ok, inv]
    ts = [p.timestamp for p in packets]
    assert ts[0] == pytest.approx(1_700_000_000.25)
    assert ts[1] == pytest.approx(1_700_000_001.5)
    assert ts[2] == pytest.approx(103.0)
    assert ts[3] == ts[2]  # SPB inherits the previous timestamp
    assert ts[4] == pytest.approx(1_700_000_005.0)
    assert ts[5] == pytest.approx(1_700_000_006.0)
    assert packets[1].src.host == "198.51.100.7" and packets[1].src.port == 5062
    assert r.stats.frames == 6


def test_pcapng_packet_for_undefined_interface_is_counted(tmp_path: Path) -> None:
    sec = Section(
        interfaces=[Interface(1)],
        blocks=[
            ("epb", (3, 0, udp_frame(sip_request()), None)),
            ("epb", (0, 0, udp_frame(sip_request()), None)),
        ],
    )
    packets, r = write_and_read(tmp_path, pcapng_bytes([sec]), "t.pcapng")
    assert [p.frame for p in packets] == [2]
    assert r.stats.frames == 2
    assert r.stats.unsupported == {"packet block without interface": 1}
    assert "undefined interface 3" in r.warnings[0].message and r.warnings[0].frame == 1


def test_pcapng_snaplen_applies_to_simple_packet_blocks(tmp_path: Path) -> None:
    frame = udp_frame(sip_request())
    sec = Section(interfaces=[Interface(1, snaplen=80)], blocks=[("spb", (frame, None))])
    packets, _ = write_and_read(tmp_path, pcapng_bytes([sec]), "t.pcapng")
    assert len(packets) == 1 and packets[0].truncated
    assert packets[0].payload == sip_request()[: 80 - 42]


# --- compression ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compress", "kind"), [(gzip.compress, "gzip"), (bz2.compress, "bzip2"), (lzma.compress, "xz")]
)
def test_compressed_files_are_detected_by_content(tmp_path: Path, compress: object, kind: str) -> None:
    assert callable(compress)
    data = compress(pcap_bytes(records(FRAMES)))
    packets, r = write_and_read(tmp_path, data, "no-extension")
    assert r.compression == kind
    assert [p.frame for p in packets] == [1, 3]
    assert r.size == len(data) and r.position == r.size


@_NEEDS_SHARED
def test_gzip_pcapng(tmp_path: Path) -> None:
    data = gzip.compress((SAMPLES / "voip1b.pcapng").read_bytes())
    packets, _ = write_and_read(tmp_path, data, "voip1b.pcapng.gz")
    expected, _ = read_all(SAMPLES / "voip1b.pcapng")
    assert [(p.frame, p.payload) for p in packets] == [(p.frame, p.payload) for p in expected]


def test_truncated_gzip_stream_keeps_what_was_read(tmp_path: Path) -> None:
    plain = pcap_bytes(records([udp_frame(sip_request(cseq=i)) for i in range(600)]))
    data = gzip.compress(plain)
    packets, r = write_and_read(tmp_path, data[: len(data) * 3 // 4], "cut.pcap.gz")
    assert 50 < len(packets) < 600
    assert [p.frame for p in packets] == list(range(1, len(packets) + 1))
    assert r.stats.truncated
    assert "gzip error" in r.warnings[-1].message


# --- damage inside a readable file ----------------------------------------------------------------


def test_truncated_last_record(tmp_path: Path) -> None:
    data = pcap_bytes(records(FRAMES))
    third = len(data) - len(FRAMES[2]) - 16
    packets, r = write_and_read(tmp_path, data[:-20])
    assert [p.frame for p in packets] == [1]  # frame 2 is RTP, frame 3 is cut
    assert r.stats.truncated
    assert r.stats.frames == 2
    (w,) = r.warnings
    assert w.frame == 3 and w.offset == third
    assert str(w).startswith(f"{tmp_path / 't.pcap'}, frame 3, byte offset {third}: ")


def test_truncated_record_header(tmp_path: Path) -> None:
    data = pcap_bytes(records(FRAMES[:2]))
    packets, r = write_and_read(tmp_path, data + b"\x01\x02\x03")
    assert [p.frame for p in packets] == [1]
    assert r.stats.truncated and r.warnings[0].frame == 3 and r.warnings[0].offset == len(data)


def test_corrupt_record_length_stops_reading(tmp_path: Path) -> None:
    data = bytearray(pcap_bytes(records(FRAMES)))
    second = 24 + 16 + len(FRAMES[0])
    struct.pack_into("<I", data, second + 8, 0x7FFFFFF0)  # incl_len of record 2
    packets, r = write_and_read(tmp_path, bytes(data))
    assert [p.frame for p in packets] == [1]
    assert r.stats.truncated
    (w,) = r.warnings
    assert w.frame == 2 and w.offset == second and "corrupt record header" in w.message


def test_pcapng_truncated_block(tmp_path: Path) -> None:
    sec = Section(interfaces=[Interface(1)], blocks=[("epb", (0, i, f, None)) for i, f in enumerate(FRAMES)])
    data = pcapng_bytes([sec])
    packets, r = write_and_read(tmp_path, data[:-8], "t.pcapng")
    assert [p.frame for p in packets] == [1]
    assert r.stats.truncated and r.warnings[0].frame == 3


def test_pcapng_corrupt_block_length(tmp_path: Path) -> None:
    sec = Section(interfaces=[Interface(1)], blocks=[("epb", (0, i, f, None)) for i, f in enumerate(FRAMES)])
    data = bytearray(pcapng_bytes([sec]))
    third = len(data) - (32 + len(FRAMES[2]) + (-len(FRAMES[2]) % 4))
    struct.pack_into("<I", data, third + 4, 13)  # not a multiple of 4
    packets, r = write_and_read(tmp_path, bytes(data), "t.pcapng")
    assert [p.frame for p in packets] == [1]
    assert r.stats.truncated
    assert r.warnings[0].offset == third and r.warnings[0].frame == 3
    struct.pack_into("<I", data, third + 4, 64)  # trailing copy differs
    packets, r = write_and_read(tmp_path, bytes(data), "t.pcapng")
    assert [p.frame for p in packets] == [1] and "trailing length" in r.warnings[0].message


# --- errors: not a readable capture -------------------------------------------------------------


def error_for(path: Path) -> CaptureError:
    with pytest.raises(CaptureError) as info:
        CaptureReader(path)
    err = info.value
    assert "\n" not in str(err)
    assert err.file == str(path)
    return err


def test_missing_file(tmp_path: Path) -> None:
    err = error_for(tmp_path / "nope.pcap")
    assert "no such file" in str(err) and str(tmp_path / "nope.pcap") in str(err)


def test_directory(tmp_path: Path) -> None:
    assert "directory" in error_for(tmp_path).reason


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.pcap"
    path.write_bytes(pcap_bytes(records(FRAMES)))
    path.chmod(0)
    assert "permission" in error_for(path).reason


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    err = error_for(path)
    assert err.reason == "empty file" and err.offset == 0
    assert str(err) == f"{path}, byte offset 0: empty file"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"GIF89a\x01\x00\x01\x00", "not a pcap or pcapng file"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "pcap header cut short"),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 3, 0, 0, 0, 65535, 1), "unsupported pcap version 3.0"),
        (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\xde\xad\xbe\xef" + b"\x00" * 16, "byte-order magic"),
        (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00", "Section Header Block cut short"),
        (b"\x1f\x8b\x08\x00garbage-garbage", "not a valid gzip file"),
        (gzip.compress(b""), "empty gzip-compressed file"),
        (gzip.compress(b"hello world, not a capture"), "after gzip decompression"),
        (b"\x28\xb5\x2f\xfd\x00\x00", "zstd-compressed"),
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    err = error_for(path)
    assert words in err.reason
    assert err.offset is not None


def test_error_reports_magic_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "text.pcap"
    path.write_bytes(b"hello")
    assert str(error_for(path)) == f"{path}, byte offset 0: not a pcap or pcapng file: magic number 68656c6c"
