"""RTP streams measured as ``tshark -q -z rtp,streams`` measures them (RFC 3550).

Live cross-check: every stream tshark lists in the bundled and shared captures (with its RTP
heuristic on, so that it decodes every RTP packet as sipflow's decoder finds them) has sipflow's
packets and lost packets exactly, and min/mean/max delta and jitter to tshark's three decimals.
Then the meter alone, on literal sequences: loss, duplicates, wrap-around, reordering, marker
bits, comfort noise, unknown clock rates.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

import sipflow
from sipflow.capture.reader import CaptureReader
from sipflow.media.collector import StreamCollector
from sipflow.media.rtp import RtpHeader, StreamMeter, parse_header
from tests.conftest import run_tshark, sample_captures, shared_captures

_ROW = re.compile(
    r"\s*[\d.]+\s+[\d.]+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+(0x[0-9A-Fa-f]+)\s+.+?"
    r"\s+(\d+)\s+(-?\d+) \([-\d.]+%\)"
    r"\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)"
)


def tshark_streams(tshark: str, path: Path) -> dict[tuple[str, int, str, int, int], tuple[float, ...]]:
    out = run_tshark(tshark, ["-r", str(path), "-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams"])
    rows = {}
    for line in out.splitlines():
        if m := _ROW.match(line):
            g = m.groups()
            rows[(g[0], int(g[1]), g[2], int(g[3]), int(g[4], 16))] = tuple(float(x) for x in g[5:])
    return rows


def ours(path: Path, jobs: int = 1) -> dict[tuple[str, int, str, int, int], tuple[float, ...]]:
    """sipflow's streams: RTP measured as read, dynamic payload types bound by the SDP of each
    stream's receiver (``analyze(media=True)``)."""
    out = {}
    for s in sipflow.analyze(path, media=True, jobs=jobs).media:
        f = s.figures
        # As tshark prints them: -1 for a minimum never set, 0 for a mean or maximum.
        out[(s.src.host, s.src.port, s.dst.host, s.dst.port, s.ssrc)] = (
            f.packets, f.lost,
            -1.0 if f.min_delta_ms is None else f.min_delta_ms, f.mean_delta_ms or 0.0,
            f.max_delta_ms or 0.0,
            -1.0 if f.min_jitter_ms is None else f.min_jitter_ms, f.mean_jitter_ms or 0.0,
            f.max_jitter_ms or 0.0,
        )  # fmt: skip
    return out


CAPTURES = [p for p in sample_captures() + shared_captures() if p.suffix in (".pcap", ".pcapng")]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_stream_as_tshark_measures_it(tshark: str, path: Path) -> None:
    expected = tshark_streams(tshark, path)
    got = ours(path)
    for key, theirs in expected.items():
        assert key in got, f"{path.name}: tshark's stream {key} not found"
        mine = got[key]
        assert mine[:2] == theirs[:2], f"{path.name} {key}: packets, lost"
        for name, a, b in zip(
            ("min delta", "mean delta", "max delta", "min jitter", "mean jitter", "max jitter"),
            mine[2:], theirs[2:], strict=True,
        ):  # fmt: skip
            assert abs(a - b) <= 0.0015, f"{path.name} {key}: {name} {a:.4f}, tshark {b:.3f}"


def test_the_cross_check_has_streams_to_check(tshark: str) -> None:
    total = sum(len(tshark_streams(tshark, p)) for p in CAPTURES)
    if not shared_captures():
        pytest.skip("the shared captures (../shared) hold the RTP")
    assert total >= 15


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in CAPTURES
        if p.name in ("Forensic_challenge_4.pcap", "register-invite-reinvite-bye.pcap", "voip1b.pcapng")
    ],
    ids=lambda p: p.name,
)
def test_a_worker_process_measures_the_same(path: Path) -> None:
    assert ours(path, jobs=2) == ours(path, jobs=1)


def test_streams_found_beyond_what_sdp_set_up(tshark: str) -> None:
    """voip1b.pcapng: tshark decodes one packet of 181:4006 as RTP (the rest follow an ICMP port
    unreachable); sipflow measures the stream by its packets, as tshark's heuristic does."""
    path = next((p for p in shared_captures() if p.name == "voip1b.pcapng"), None)
    if path is None:
        pytest.skip("needs ../shared")
    got = ours(path)
    stream = got[("172.16.98.181", 4006, "172.16.98.182", 7078, 0x3ADF0949)]
    assert stream[:2] == (32, 0)


# --- the meter alone ------------------------------------------------------------------------------


def packets(
    seqs: list[int], *, step: float = 20.0, pt: int = 0, jitter: dict[int, float] | None = None
) -> StreamMeter:
    """A PCMU-like stream: sequence numbers as given, 160 timestamp units and ``step`` ms apart,
    packet i arriving ``jitter[i]`` ms late."""
    meter = StreamMeter()
    for i, seq in enumerate(seqs):
        late = (jitter or {}).get(i, 0.0)
        meter.packet(RtpHeader(False, pt, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, 1), i * step + late)
    return meter


def test_a_perfect_stream() -> None:
    f = packets(list(range(100, 150))).figures()
    assert (f.packets, f.expected, f.lost, f.sequence_errors) == (50, 50, 0, 0)
    assert (f.min_delta_ms, f.max_delta_ms) == (20.0, 20.0)
    assert f.mean_delta_ms == pytest.approx(20.0)
    assert (f.min_jitter_ms, f.max_jitter_ms, f.clock_rate) == (0.0, 0.0, 8000)


def test_loss_duplicates_and_reordering() -> None:
    lost = packets([1, 2, 3, 6, 7]).figures()
    assert (lost.expected, lost.lost, lost.sequence_errors) == (7, 2, 1)
    twice = packets([1, 2, 2, 3, 4]).figures()
    assert (twice.expected, twice.lost, twice.sequence_errors) == (4, -1, 1)  # negative, as tshark
    swapped = packets([1, 2, 4, 3, 5]).figures()
    assert (swapped.expected, swapped.lost) == (5, 0)


def test_sequence_wrap_around() -> None:
    # Numbers given unwrapped (the timestamps follow them); the header carries them mod 2^16.
    f = packets(list(range(65530, 65546))).figures()
    assert (f.packets, f.expected, f.lost, f.sequence_errors) == (16, 16, 0, 0)
    f = packets([*range(65530, 65536), *range(65538, 65546)]).figures()  # 0 and 1 lost at the wrap
    assert (f.expected, f.lost) == (16, 2)


def test_jitter_follows_rfc_3550() -> None:
    # One packet 8 ms late: |D| = 8 then 8 again (the next one is on time again), J += (|D|-J)/16.
    f = packets(list(range(10)), jitter={5: 8.0}).figures()
    j1 = 8.0 / 16
    j2 = j1 + (8.0 - j1) / 16
    assert f.max_jitter_ms == pytest.approx(j2)
    assert f.max_delta_ms == pytest.approx(28.0) and f.min_delta_ms == pytest.approx(12.0)


def test_marker_comfort_noise_and_unknown_clock_rates() -> None:
    meter = StreamMeter()
    meter.packet(RtpHeader(False, 0, 1, 160, 1), 0.0)
    meter.packet(RtpHeader(True, 0, 2, 320, 1), 500.0)  # a talkspurt starts: not a regular delta
    meter.packet(RtpHeader(False, 0, 3, 480, 1), 520.0)
    assert meter.figures().max_delta_ms == pytest.approx(20.0)
    cn = StreamMeter()
    for i, pt in enumerate([0, 13, 0, 0]):
        cn.packet(RtpHeader(False, pt, i, i * 160, 1), [0.0, 20.0, 300.0, 320.0][i])
    assert cn.figures().max_delta_ms == pytest.approx(20.0)  # the gap after comfort noise is not
    dynamic = StreamMeter()
    for i in range(5):
        dynamic.packet(RtpHeader(False, 111, i, i * 960, 1), i * 20.0)
    f = dynamic.figures()
    assert f.max_jitter_ms is None and f.clock_rate is None and f.max_delta_ms == pytest.approx(20.0)
    opus = StreamMeter(clock_rates={111: 48000})
    for i in range(5):
        opus.packet(RtpHeader(False, 111, i, i * 960, 1), i * 20.0)
    assert opus.figures().max_jitter_ms == pytest.approx(0.0) and opus.figures().clock_rate == 48000


def test_parse_header() -> None:
    packet = struct.pack("!BBHII", 0x80, 0x88, 7, 1234, 0xDEADBEEF) + b"\0" * 160
    assert parse_header(packet) == RtpHeader(True, 8, 7, 1234, 0xDEADBEEF)
    assert parse_header(packet[:11]) is None
    assert parse_header(b"\x40" + packet[1:]) is None  # version 1
    assert parse_header(b"\x82" + packet[1:12] + b"\0" * 4) is None  # two CSRCs announced, one there


def test_memory_grows_with_streams_not_packets(tmp_path: Path) -> None:
    from tests.capture_util import pcap_bytes, records, udp_frame

    rtp = [struct.pack("!BBHII", 0x80, 8, i, i * 160, 42) + b"\xd5" * 160 for i in range(3000)]
    path = tmp_path / "one-stream.pcap"
    path.write_bytes(pcap_bytes(records([udp_frame(p, 40000, 40002) for p in rtp], step_us=20_000)))
    collector = StreamCollector()
    with CaptureReader(path, sink=collector) as reader:
        list(reader)
    (stream,) = collector.streams()
    assert stream.figures.packets == 3000 and stream.figures.lost == 0
    assert (stream.first_frame, stream.last_frame) == (1, 3000)
    # Capture times are float seconds since the epoch (a quarter of a microsecond apart at
    # today's dates): jitter within a microsecond of none.
    assert stream.figures.max_jitter_ms == pytest.approx(0.0, abs=1e-3)


# --- sipflow media ---------------------------------------------------------------------------------


def test_media_command_lists_the_streams_with_their_calls() -> None:
    from click.testing import CliRunner

    from sipflow.cli import main

    path = next((p for p in shared_captures() if p.name == "register-invite-reinvite-bye.pcap"), None)
    if path is None:
        pytest.skip("needs ../shared")
    result = CliRunner().invoke(main, ["media", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    streams = json.loads(result.stdout)["streams"]
    assert [(s["src"], s["dst"], s["codecs"], s["packets"], s["lost"]) for s in streams] == [
        ("127.0.0.1:5084", "127.0.0.1:5094", ["PCMU"], 77, 0),
        ("127.0.0.1:5094", "127.0.0.1:5084", ["PCMU"], 77, 0),
        ("127.0.0.1:5084", "127.0.0.1:5094", ["opus"], 32, 0),  # after the re-INVITE: opus/48000
        ("127.0.0.1:5094", "127.0.0.1:5084", ["opus"], 32, 0),
    ]
    calls = sipflow.analyze(path).calls
    (invite_call,) = [c for c in calls if c.kind.value == "call"]
    assert {s["call"] for s in streams} == {invite_call.index}
    assert all(s["clock_rate"] in (8000, 48000) for s in streams)
    table = CliRunner().invoke(main, ["media", str(path)]).output.splitlines()
    assert table[0].split()[:4] == ["#", "Src", "Dst", "SSRC"] and len(table) == 5


def test_media_command_without_rtp(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sipflow.cli import main
    from tests.conftest import SAMPLES

    result = CliRunner().invoke(main, ["media", str(SAMPLES / "basic-call.pcap")])
    assert result.exit_code == 0 and result.stdout == ""
    assert "no RTP streams" in result.stderr


def test_codec_names_from_packets_are_cleaned() -> None:
    from sipflow.capture.types import Endpoint
    from sipflow.media.collector import RtpStream
    from sipflow.render.media import media_lines

    meter = StreamMeter()
    meter.packet(RtpHeader(False, 96, 1, 0, 7), 0.0)
    stream = RtpStream(
        src=Endpoint("192.0.2.1", 4000), dst=Endpoint("192.0.2.2", 4002), ssrc=7, first_frame=1,
        last_frame=1, first_time=0.0, last_time=0.0, figures=meter.figures(), codecs=("\x1b[31mevil\x07",),
    )  # fmt: skip
    text = "\n".join(media_lines([stream], [None]))
    assert "\x1b" not in text and "\x07" not in text and "evil" in text


def test_calls_media_puts_each_stream_in_its_call() -> None:
    import json

    from click.testing import CliRunner

    from sipflow.cli import main

    path = next((p for p in shared_captures() if p.name == "rtp_rtcp_sip_ipv4_udp.pcap"), None)
    if path is None:
        pytest.skip("needs ../shared")
    runner = CliRunner()
    with_media = json.loads(runner.invoke(main, ["calls", str(path), "--media", "--format", "json"]).stdout)
    streams = json.loads(runner.invoke(main, ["media", str(path), "--format", "json"]).stdout)["streams"]
    linked = [s for c in with_media["calls"] for s in c["media"]]
    assert sorted(linked + with_media["unlinked_media"], key=lambda s: s["first_time"]) == streams
    assert {s["call"] for c in with_media["calls"] for s in c["media"]} <= {
        c["index"] for c in with_media["calls"]
    }
    assert all(s["call"] == c["index"] for c in with_media["calls"] for s in c["media"])
    assert [s["call"] for s in with_media["unlinked_media"]] == [None] * len(with_media["unlinked_media"])
    # Without --media the document is as before: no media keys at all.
    plain = json.loads(runner.invoke(main, ["calls", str(path), "--format", "json"]).stdout)
    assert "unlinked_media" not in plain and all("media" not in c for c in plain["calls"])
    table = runner.invoke(main, ["calls", str(path), "--media"]).stdout.splitlines()
    assert table[0].split()[-6:] == ["RTP", "Codec", "Loss", "Jitter", "MOS", "Call-ID"]
    row = table[1].split()
    assert "PCMA" in row and "0.0%" in row


def _streams_read(path: Path, lazily: bool) -> list[object]:
    """The file's streams, each SDP told to the collector as read (``describe``) or offered to
    be read when a stream to it starts (``offer``, what ``analyze`` does)."""
    from sipflow.readahead import ParseFailure, parse_or_failure
    from sipflow.sip.sdp import find_sdp

    collector = StreamCollector()
    with CaptureReader(str(path), sink=collector) as reader:
        for packet in reader:
            parsed = parse_or_failure(packet)
            if isinstance(parsed, ParseFailure) or not parsed.body:
                continue
            if lazily:
                collector.offer(parsed)
            elif (description := find_sdp(parsed)) is not None:
                collector.describe(description)
    return list(collector.streams())


@pytest.mark.parametrize("pending_max", [1 << 16, 1])
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_sdp_read_when_a_stream_starts_binds_as_sdp_read_at_once(
    path: Path, pending_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pending_max 1: every offer beyond the first reads them all at once (the bound on memory).
    monkeypatch.setattr("sipflow.media.collector._PENDING_MAX", pending_max)
    assert _streams_read(path, lazily=True) == _streams_read(path, lazily=False)
