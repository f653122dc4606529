"""RTCP sender and receiver reports (RFC 3550 §6.4): every report block of the captures with RTCP
as tshark decodes it (live), then the tracker's figures on crafted reports: loss, jitter in
milliseconds, the round trip from LSR and DLSR, damaged compounds."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from sipflow.capture.detect import RTCP
from sipflow.capture.reader import CaptureReader
from sipflow.capture.sink import CollectingSink
from sipflow.media.collector import StreamCollector
from sipflow.media.rtcp import RR, SR, ReportBlock, RtcpTracker, parse_compound
from tests.conftest import SAMPLES, SHARED_CAPTURES, run_tshark

WITH_RTCP = [
    SHARED_CAPTURES / name
    for name in ("rtp_rtcp_sip_ipv4_udp.pcap", "Forensic_challenge_4.pcap", "voip-extension.pcap")
    if (SHARED_CAPTURES / name).is_file()
]


def tshark_blocks(tshark: str, path: Path) -> dict[int, list[tuple[int, ...]]]:
    fields = ["rtcp.ssrc.fraction", "rtcp.ssrc.cum_nr", "rtcp.ssrc.jitter", "rtcp.ssrc.lsr", "rtcp.ssrc.dlsr"]
    args = ["-r", str(path), "-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtcp.pt == 200 or rtcp.pt == 201"]
    args += ["-T", "fields", "-E", "separator=;", "-e", "frame.number"]
    for f in fields:
        args += ["-e", f]
    out: dict[int, list[tuple[int, ...]]] = {}
    for line in run_tshark(tshark, args).splitlines():
        number, *columns = line.split(";")
        values = [[int(v) for v in c.split(",")] if c else [] for c in columns]
        out[int(number)] = [tuple(row) for row in zip(*values, strict=True)]
    return out


@pytest.mark.parametrize("path", WITH_RTCP, ids=lambda p: p.name)
def test_every_report_block_as_tshark_decodes_it(tshark: str, path: Path) -> None:
    sink = CollectingSink()
    with CaptureReader(path, sink=sink) as reader:
        list(reader)
    ours: dict[int, list[tuple[int, ...]]] = {}
    for kind, frame, _ts, _src, _sport, _dst, _dport, payload in sink.datagrams:
        if kind is not RTCP:
            continue
        reports = parse_compound(payload)
        assert reports is not None, frame
        blocks = [
            (b.fraction_lost, b.cumulative_lost, b.jitter, b.lsr, b.dlsr) for r in reports for b in r.blocks
        ]
        if any(r.kind in (SR, RR) for r in reports):
            ours[frame] = blocks
    theirs = tshark_blocks(tshark, path)
    assert theirs, "the capture has reports"
    # tshark decodes RTCP where SDP or its heuristics place it; sipflow by content: a superset.
    assert set(theirs) <= set(ours)
    assert {frame: ours[frame] for frame in theirs} == theirs


def test_the_shared_capture_reports_on_its_streams() -> None:
    path = SHARED_CAPTURES / "rtp_rtcp_sip_ipv4_udp.pcap"
    if not path.is_file():
        pytest.skip("shared captures not beside the checkout")
    collector = StreamCollector()
    with CaptureReader(path, sink=collector) as reader:
        list(reader)
    reported = [s for s in collector.streams() if s.rtcp is not None]
    assert reported and all(s.rtcp is not None and s.rtcp.reports > 0 for s in reported)
    assert collector.rtcp.malformed == 0


def test_the_media_table_shows_what_the_reports_said() -> None:
    from click.testing import CliRunner

    from sipflow.cli import main

    path = SHARED_CAPTURES / "rtp_rtcp_sip_ipv4_udp.pcap"
    if not path.is_file():
        pytest.skip("shared captures not beside the checkout")
    runner = CliRunner()
    lines = runner.invoke(main, ["media", str(path)]).stdout.splitlines()
    assert lines[0].split()[-6:] == ["J", "ms", "RTT", "ms", "Frames", "Call"]
    assert "RTCP  Rep. lost  Rep. J ms  RTT ms" in lines[0]
    streams = json.loads(runner.invoke(main, ["media", str(path), "--format", "json"]).stdout)["streams"]
    for line, stream in zip(lines[1:], streams, strict=True):
        rtcp = stream["rtcp"]
        if rtcp is None:
            assert f"{stream['max_jitter_ms']:.3f}  " in line  # the RTCP cells are blank
            continue
        cells = line.split()
        lost = f"{rtcp['cumulative_lost']} ({rtcp['fraction_lost_pct']:.1f}%)"
        assert f"  {rtcp['reports']}  " in line and lost in line
        rtt = rtcp["mean_round_trip_ms"]
        assert cells[-3] == ("-" if rtt is None else f"{rtt:.3f}")
    # A capture without RTCP keeps tshark's columns.
    plain = SAMPLES / "media-two-way.pcap"
    if plain.is_file():
        (head, *_) = runner.invoke(main, ["media", str(plain)]).stdout.splitlines()
        assert "RTCP" not in head and head.split()[-5:] == ["Max", "J", "ms", "Frames", "Call"]


def sr(ssrc: int, ntp_seconds: int, ntp_fraction: int, blocks: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    body = struct.pack("!IIIIII", ssrc, ntp_seconds, ntp_fraction, 1234, 50, 8000) + b"".join(blocks)
    return struct.pack("!BBH", 0x80 | len(blocks), SR, len(body) // 4) + body


def rr(ssrc: int, blocks: list[bytes]) -> bytes:
    body = struct.pack("!I", ssrc) + b"".join(blocks)
    return struct.pack("!BBH", 0x80 | len(blocks), RR, len(body) // 4) + body


def block(source: int, fraction: int, cumulative: int, jitter: int, lsr: int = 0, dlsr: int = 0) -> bytes:
    return struct.pack("!IIIIII", source, fraction << 24 | cumulative & 0xFFFFFF, 7, jitter, lsr, dlsr)


def sdes(ssrc: int) -> bytes:
    item = b"\x01\x05alice\x00\x00\x00"  # CNAME, then the end of the list, padded to 32 bits
    return struct.pack("!BBHI", 0x81, 202, (4 + len(item)) // 4, ssrc) + item


def test_parse_a_compound_packet() -> None:
    data = rr(0xA, [block(0xB, 64, -3, 80, 0x12345678, 65536)]) + sdes(0xA)
    (report,) = parse_compound(data) or []
    assert report.kind == RR and report.ssrc == 0xA and report.ntp_middle is None
    assert report.blocks == (ReportBlock(0xB, 64, -3, 7, 80, 0x12345678, 65536),)
    (sender,) = parse_compound(sr(0xB, 0x00011234, 0x56780000)) or []
    assert sender.ntp_middle == 0x12345678 and sender.blocks == ()
    assert parse_compound(b"\x40" + data[1:]) is None  # version 1
    truncated = data + rr(0xC, [block(0xB, 0, 0, 0)])[:-4]
    assert len(parse_compound(truncated) or []) == 1  # what came before the damage is kept


def test_round_trip_loss_and_jitter() -> None:
    tracker = RtcpTracker()
    # B sends an SR at t=10.0; A's RR at t=10.5 names it, having held it 0.25 s: 250 ms of path.
    sent = sr(0xB, 0x00011234, 0x56780000)
    tracker.packet("192.0.2.2", 10.0, sent, 0, len(sent))
    report = rr(0xA, [block(0xB, 26, 5, 160, 0x12345678, 16384)])
    tracker.packet("192.0.2.1", 10.5, report, 0, len(report))
    f = tracker.figures("192.0.2.1", 0xB, 8000)
    assert f is not None and f.reports == 1 and f.cumulative_lost == 5
    assert f.max_round_trip_ms == pytest.approx(250.0) and f.mean_round_trip_ms == pytest.approx(250.0)
    assert f.last_fraction_lost_pct == pytest.approx(100 * 26 / 256)
    assert f.max_jitter_ms == pytest.approx(20.0)  # 160 units of an 8 kHz clock
    assert tracker.figures("192.0.2.1", 0xB, None).max_jitter_ms is None  # type: ignore[union-attr]
    assert tracker.figures("192.0.2.9", 0xB, 8000) is None
    # An LSR that names no SR of the capture: no round trip.
    other = RtcpTracker()
    other.packet("192.0.2.1", 10.5, report, 0, len(report))
    assert other.figures("192.0.2.1", 0xB, 8000).max_round_trip_ms is None  # type: ignore[union-attr]
    other.packet("192.0.2.1", 11.0, b"\x00\x00", 0, 2)
    assert other.malformed == 1
