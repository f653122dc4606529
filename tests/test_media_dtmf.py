"""DTMF digits: RFC 4733 telephone events per RTP stream, and SIP INFO bodies.

The tracker alone on literal payloads (repeated end packets, digits in a row, lost first and end
packets, long events in segments, short payloads), the INFO bodies on literals, then real
captures checked against tshark: Debian's sip-tester ``dtmf_2833_*.pcap`` (one digit each, no
SDP), the telephone events of the shared captures, and the INFO digits of ``DTMFsipinfo.pcap``.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

import sipflow
from sipflow.capture.detect import RTP, classify_udp
from sipflow.capture.reader import CaptureReader
from sipflow.media.collector import StreamCollector
from sipflow.media.dtmf import EVENT_NAMES, DtmfDigit, EventTracker, dtmf_from_info, rtp_payload
from tests.conftest import SHARED_CAPTURES, run_tshark, shared_captures

T0 = 1_700_000_000.0


def event(code: int, duration: int, *, end: bool = False, volume: int = 10) -> bytes:
    """An RFC 4733 §2.3 payload: event, E|R|volume, duration."""
    return struct.pack("!BBH", code, (0x80 if end else 0) | volume, duration)


def feed(tracker: EventTracker, packets: list[tuple[int, bytes]], *, rate: int = 8000) -> list[DtmfDigit]:
    """Feed (RTP timestamp, payload) packets, 20 ms apart, frames from 1."""
    for i, (ts, payload) in enumerate(packets):
        tracker.packet(i + 1, T0 + 0.02 * i, payload, 0, len(payload), ts, rate)
    return tracker.digits()


def one_digit(code: int, ts: int, steps: int = 7, *, ends: int = 3) -> list[tuple[int, bytes]]:
    """A digit as senders send it: duration 0, 160, ... then the end packet ``ends`` times."""
    packets = [(ts, event(code, 160 * i)) for i in range(steps)]
    return [*packets, *[(ts, event(code, 160 * steps, end=True))] * ends]


# --- the tracker -----------------------------------------------------------------------------------


def test_event_names_are_rfc4733_table_7() -> None:
    assert [EVENT_NAMES[c] for c in range(17)] == [*"0123456789*#ABCD", "flash"]


def test_one_digit_with_three_end_packets() -> None:
    (digit,) = feed(EventTracker(), one_digit(5, 1000))
    assert digit == DtmfDigit(digit="5", frame=1, time=T0, duration_ms=140.0, source="rfc4733")


def test_two_digits_in_a_row() -> None:
    digits = feed(EventTracker(), one_digit(1, 1000) + one_digit(11, 5000, steps=3))
    assert [(d.digit, d.frame, d.duration_ms) for d in digits] == [("1", 1, 140.0), ("#", 11, 60.0)]


def test_the_same_digit_twice_is_two_digits() -> None:
    digits = feed(EventTracker(), one_digit(7, 1000) + one_digit(7, 3000))
    assert [(d.digit, d.frame) for d in digits] == [("7", 1), ("7", 11)]


def test_lost_first_packet_still_gives_the_digit() -> None:
    packets = one_digit(9, 1000)[2:] + one_digit(2, 4000)[1:]
    digits = feed(EventTracker(), packets)
    assert [(d.digit, d.frame, d.duration_ms) for d in digits] == [("9", 1, 140.0), ("2", 9, 140.0)]


def test_lost_end_packets_give_the_last_duration_seen() -> None:
    packets = one_digit(3, 1000)[:5] + one_digit(4, 3000)[:4]  # no end packet at all
    digits = feed(EventTracker(), packets)
    assert [(d.digit, d.duration_ms) for d in digits] == [("3", 80.0), ("4", 60.0)]


def test_a_long_event_in_segments_is_one_digit() -> None:
    # RFC 4733 §2.5.1.3: the duration field stops at 0xFFFF, the next segment has the timestamp
    # of the previous one plus 0xFFFF, no end bit between them.
    ts = 0xFFFFF000  # the second segment's timestamp wraps around 2**32
    packets = [(ts, event(0, 0xFF00)), (ts, event(0, 0xFFFF))]
    second = (ts + 0xFFFF) & 0xFFFFFFFF
    packets += [(second, event(0, 800)), *[(second, event(0, 1600, end=True))] * 2]
    (digit,) = feed(EventTracker(), packets)
    assert digit.digit == "0" and digit.frame == 1
    assert digit.duration_ms == pytest.approx((0xFFFF + 1600) / 8)


def test_a_late_packet_of_the_previous_event_is_no_new_digit() -> None:
    packets = one_digit(1, 1000)[:-1] + one_digit(2, 3000)[:3]
    packets.insert(len(packets) - 1, (1000, event(1, 1120, end=True)))
    digits = feed(EventTracker(), packets)
    assert [d.digit for d in digits] == ["1", "2"]


def test_short_payloads_and_unknown_events_are_ignored() -> None:
    tracker = EventTracker()
    tracker.packet(1, T0, b"\x05\x8a\x01", 0, 3, 1000, 8000)
    tracker.packet(2, T0, event(17, 160), 0, 4, 2000, 8000)
    tracker.packet(3, T0, event(200, 160), 0, 4, 3000, 8000)
    assert tracker.digits() == []
    assert feed(EventTracker(), []) == []


def test_unknown_clock_rate_gives_no_duration() -> None:
    (digit,) = feed(EventTracker(), one_digit(16, 1000), rate=0)
    assert digit.digit == "flash" and digit.duration_ms is None


def test_payload_offsets_in_the_middle_of_a_buffer() -> None:
    tracker = EventTracker()
    data = b"junk" + event(12, 320, end=True) + b"tail"
    tracker.packet(4, T0, data, 4, 8, 99, 16000)
    assert tracker.digits() == [DtmfDigit(digit="A", frame=4, time=T0, duration_ms=20.0, source="rfc4733")]


# --- the RTP payload span --------------------------------------------------------------------------


def rtp(
    payload: bytes,
    *,
    pt: int = 101,
    ts: int = 1000,
    seq: int = 1,
    marker: bool = False,
    csrcs: int = 0,
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    """An RTP packet (RFC 3550 §5.1) with CSRCs, a header extension and padding as asked."""
    b0 = 0x80 | csrcs | (0x10 if extension is not None else 0) | (0x20 if padding else 0)
    head = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, 0x1234) + b"\0\0\0\1" * csrcs
    if extension is not None:
        head += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    pad = b"\0" * (padding - 1) + bytes([padding]) if padding else b""
    return head + payload + pad


def test_rtp_payload_span() -> None:
    body = event(5, 160)
    assert rtp_payload(rtp(body), 0, 16) == (12, 16)
    packet = rtp(body, csrcs=2, extension=b"\1\2\3\4\5\6\7\x08", padding=4)
    start, end = rtp_payload(packet, 0, len(packet)) or (0, 0)
    assert packet[start:end] == body
    framed = b"xx" + packet
    assert rtp_payload(framed, 2, len(framed)) == (start + 2, end + 2)
    assert rtp_payload(packet, 0, 12 + 8 + 2) is None  # cut inside the extension
    assert rtp_payload(b"\x90" + bytes(11), 0, 12) is None  # X set, no extension header


def test_the_collector_sends_event_packets_to_the_stream_tracker() -> None:
    collector = StreamCollector(events=frozenset({101}), clock_rates={101: 8000})
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    packets = [rtp(b"\xd5" * 160, pt=0, seq=1, ts=0)]
    packets += [
        rtp(p, seq=2 + i, ts=160, marker=i == 0, csrcs=1, extension=b"\0" * 4, padding=2 * (i % 2))
        for i, (_, p) in enumerate(one_digit(8, 160, steps=3))
    ]
    packets.append(rtp(b"\xd5" * 160, pt=0, seq=8, ts=1280))
    for i, p in enumerate(packets):
        assert classify_udp(p, 0, len(p), 40000, 40002) is RTP
        collector.datagram(RTP, i + 1, T0 + i * 0.02, src, 40000, dst, 40002, p, 0, len(p))
    (stream,) = collector.streams()
    assert stream.figures.packets == 8
    assert stream.dtmf == (DtmfDigit(digit="8", frame=2, time=T0 + 0.02, duration_ms=60.0, source="rfc4733"),)


def test_streams_without_events_have_no_digits() -> None:
    collector = StreamCollector()  # payload type 101 not declared a telephone event
    p = rtp(event(5, 160))
    collector.datagram(RTP, 1, T0, b"\1\1\1\1", 40000, b"\2\2\2\2", 40002, p, 0, len(p))
    (stream,) = collector.streams()
    assert stream.dtmf == ()


# --- SIP INFO bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", ("5", 160.0)),
        ("application/dtmf-relay", b"Signal= 1\r\nDuration= 180\r\n", ("1", 180.0)),
        ("Application/DTMF-Relay; charset=us-ascii", b"signal = *\nDURATION = 250\n", ("*", 250.0)),
        ("application/dtmf-relay", b"Signal=#", ("#", None)),
        ("application/dtmf-relay", b"Signal=10\r\nDuration=100", ("*", 100.0)),
        ("application/dtmf-relay", b"Signal=11\r\nDuration=100", ("#", 100.0)),
        ("application/dtmf-relay", b"Signal=d\r\nDuration=100\r\n\r\n", ("D", 100.0)),
        ("application/dtmf-relay", b"\r\n  Signal\t=\t7  \r\n", ("7", None)),
        ("application/dtmf", b"5", ("5", None)),
        ("APPLICATION/DTMF", b" b\r\n", ("B", None)),
        ("application/dtmf-relay", b"Duration=160\r\n", None),
        ("application/dtmf-relay", b"Signal=55\r\nDuration=160", None),
        ("application/dtmf-relay", b"Signal=5\r\nDuration=soon", None),
        ("application/dtmf-relay", b"hello world", None),
        ("application/dtmf-relay", b"Signal=\xff", None),
        ("application/dtmf-relay", b"", None),
        ("application/dtmf", b"12", None),
        ("application/dtmf", b"x", None),
        ("application/sdp", b"Signal=5\r\n", None),
        ("text/plain", b"5", None),
        ("", b"5", None),
    ],
)
def test_dtmf_from_info(content_type: str, body: bytes, expected: tuple[str, float | None] | None) -> None:
    assert dtmf_from_info(content_type, body) == expected


# --- real captures ---------------------------------------------------------------------------------

SIP_TESTER = Path("/usr/share/sip-tester")
SIP_TESTER_DTMF = sorted(SIP_TESTER.glob("dtmf_2833_*.pcap"))
_NAMED = {"star": "*", "pound": "#"}


def _rtp_port(tshark: str, path: Path) -> int:
    out = run_tshark(tshark, ["-r", str(path), "-T", "fields", "-e", "udp.dstport", "-c", "1"])
    return int(out.split()[0])


def tshark_events(tshark: str, path: Path, decode_as: list[str]) -> list[tuple[int, int, str, float]]:
    """tshark's telephone events: (SSRC, first frame, digit, last duration / 8 ms) per event
    (one RTP timestamp of one SSRC), in order of the first frame."""
    fields = ("frame.number", "rtp.ssrc", "rtp.timestamp", "rtpevent.event_id", "rtpevent.duration")
    args = ["-r", str(path), *decode_as, "-Y", "rtpevent", "-T", "fields", "-E", "separator=/t"]
    out = run_tshark(tshark, [*args, *(arg for f in fields for arg in ("-e", f))])
    events: dict[tuple[int, int], list[int]] = {}
    for line in out.splitlines():
        frame, ssrc, ts, code, duration = line.split("\t")
        key = (int(ssrc, 16), int(ts))
        if key not in events:
            events[key] = [int(frame), int(code), int(duration)]
        else:
            events[key][2] = max(events[key][2], int(duration))
    return sorted((ssrc, f, EVENT_NAMES[c], d / 8) for (ssrc, _), (f, c, d) in events.items())


@pytest.mark.parametrize("path", SIP_TESTER_DTMF, ids=lambda p: p.name)
def test_sip_tester_dtmf_captures(tshark: str, path: Path) -> None:
    # No SDP in these captures: payload type 101 (tshark: rtp.p_type) is declared by hand.
    name = path.stem.removeprefix("dtmf_2833_")
    port = _rtp_port(tshark, path)
    expected = tshark_events(tshark, path, ["-d", f"udp.port=={port},rtp"])
    collector = StreamCollector(events=frozenset({101}), clock_rates={101: 8000})
    with CaptureReader(path, sink=collector) as reader:
        list(reader)
    (stream,) = collector.streams()
    (digit,) = stream.dtmf
    assert digit.digit == _NAMED.get(name, name)
    assert [(stream.ssrc, digit.frame, digit.digit, digit.duration_ms)] == expected
    assert digit.source == "rfc4733" and digit.time == stream.first_time


def test_sip_tester_captures_are_there() -> None:
    if not SIP_TESTER.is_dir():
        pytest.skip("sip-tester (Debian package sip-tester) not installed")
    assert len(SIP_TESTER_DTMF) >= 10


@pytest.mark.parametrize("jobs", [1, 2])
def test_shared_captures_telephone_events_as_tshark_decodes_them(tshark: str, jobs: int) -> None:
    """Streams whose SDP binds telephone-event (analyze(media=True), with worker processes too)
    give tshark's events: same digits, first frames and final durations."""
    checked = 0
    for path in shared_captures():
        if path.suffix not in (".pcap", ".pcapng"):
            continue
        expected = tshark_events(tshark, path, ["-o", "rtp.heuristic_rtp:TRUE"])
        got = sorted(
            (s.ssrc, d.frame, d.digit, d.duration_ms)
            for s in sipflow.analyze(path, media=True, jobs=jobs).media
            for d in s.dtmf
        )
        assert got == expected, path.name
        checked += len(expected)
    if not checked:
        pytest.skip("no telephone events in the shared captures")


def test_info_digits_of_dtmfsipinfo_as_tshark_shows_them(tshark: str) -> None:
    path = SHARED_CAPTURES / "DTMFsipinfo.pcap"
    if not path.is_file():
        pytest.skip("needs ../shared/captures/DTMFsipinfo.pcap")
    text = run_tshark(tshark, ["-r", str(path), "-Y", "sip.Method == INFO", "-V"])
    # "Message Body" lines as tshark shows them: "Signal= 1\r\n", "Duration= 180\r\n".
    signals = re.findall(r"^\s+Signal=\s*(\S+?)\\r\\n$", text, re.MULTILINE)
    durations = [float(d) for d in re.findall(r"^\s+Duration=\s*(\d+)\\r\\n$", text, re.MULTILINE)]
    expected = list(zip(signals, durations, strict=True))
    analysis = sipflow.analyze(path)
    got = []
    seen = set()
    for call in analysis.calls:
        for leg in call.legs:
            for message in leg.messages:
                sip = message.sip
                if not sip.is_request or getattr(sip, "method", None) != "INFO" or message.frame in seen:
                    continue
                seen.add(message.frame)
                found = dtmf_from_info(sip.content_type or "", bytes(sip.body))
                assert found is not None, message.frame
                got.append((message.frame, found))
    got.sort()
    assert [found for _, found in got] == expected
    assert len(expected) == 4


def _calls_json(path: Path) -> list[dict[str, object]]:
    import json

    from click.testing import CliRunner

    from sipflow.cli import main

    result = CliRunner().invoke(main, ["calls", str(path), "--media", "--format", "json"])
    assert result.exit_code == 0, result.output
    calls: list[dict[str, object]] = json.loads(result.output)["calls"]
    return calls


def test_calls_json_gives_each_call_its_info_digits() -> None:
    path = SHARED_CAPTURES / "DTMFsipinfo.pcap"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    (call,) = _calls_json(path)
    assert call["dtmf"] == [
        {"digit": d, "frame": f, "time": pytest.approx(t, abs=1e-3), "duration_ms": 180.0, "source": "info"}
        for d, f, t in [("1", 17, 1303892076.870), ("3", 19, 1303892080.600), ("4", 29, 1303892146.276),
                        ("2", 31, 1303892148.232)]
    ]  # fmt: skip


def test_calls_json_gives_each_call_its_rtp_digits() -> None:
    path = SHARED_CAPTURES / "Forensic_challenge_4.pcap"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    by_index = {c["index"]: c for c in _calls_json(path)}
    digits = by_index[4]["dtmf"]
    assert isinstance(digits, list)
    # tshark -z rtpevent: the 15 digits of call 4's stream to 172.25.105.40:18150
    assert "".join(d["digit"] for d in digits) == "2255#4125#4321#"
    assert {d["source"] for d in digits} == {"rfc4733"}
    assert all(not c["dtmf"] for i, c in by_index.items() if i != 4)
    media = by_index[4]["media"]
    assert isinstance(media, list) and sum(len(s["dtmf"]) for s in media) == 15
