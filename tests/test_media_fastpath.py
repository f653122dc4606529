"""The compiled RTP meter (``_fastpath.Meter``, fed by the record walk) against its Python
reference (``sipflow.media.rtp.StreamMeter``).

The C twin repeats the reference's float arithmetic step by step, so the figures must be
equal, not close: on random streams fed to both meters directly (loss, duplicates, reordering,
wrap-around, markers, comfort noise, telephone events, dynamic types with and without a clock
rate), and on every capture with RTP read both ways, with pcap and pcapng timestamps in every
resolution.
"""

from __future__ import annotations

import dataclasses
import os
import random
import struct
from pathlib import Path

import pytest

import sipflow
from sipflow.capture import decode
from sipflow.capture.reader import CaptureReader
from sipflow.media import collector as collector_module
from sipflow.media.collector import StreamCollector
from sipflow.media.payload_types import COMFORT_NOISE
from sipflow.media.rtp import RtpHeader, StreamMeter, clock_rate
from tests.capture_util import Interface, Section, pcap_bytes, pcapng_bytes, records, udp_frame
from tests.conftest import sample_captures, shared_captures

pytestmark = pytest.mark.skipif(
    not decode.COMPILED and not os.environ.get("SIPFLOW_REQUIRE_COMPILED"),
    reason="the compiled fast path was not built (no C compiler at install)",
)

CAPTURES = [p for p in sample_captures() + shared_captures() if p.suffix in (".pcap", ".pcapng", ".gz")]


def compiled_meter(rates: dict[int, int], events: frozenset[int]) -> object:
    fast = decode.FASTPATH
    assert fast is not None
    return fast.Meter(
        [clock_rate(pt, rates, events) for pt in range(128)],
        bytes(pt in events for pt in range(128)),
        bytes(pt in COMFORT_NOISE for pt in range(128)),
    )


def random_stream(rng: random.Random, n: int) -> list[tuple[RtpHeader, float]]:
    """A stream with everything that moves the figures: loss, duplicates, late packets,
    sequence and timestamp wrap-around, talkspurts, comfort noise, events, type changes."""
    seq = rng.randrange(65536)
    ts = rng.randrange(1 << 32)
    arrival = rng.uniform(0, 1000)
    out = []
    pts = [0, 8, 13, 101, 111, 96, 18]
    pt = rng.choice(pts[:2])
    for _ in range(n):
        r = rng.random()
        if r < 0.05:
            seq += rng.randrange(2, 40)  # a burst lost
        elif r < 0.08:
            seq -= rng.randrange(0, 5)  # twice, or late
        elif r < 0.09:
            seq += rng.randrange(30000, 65000)  # a jump
        else:
            seq += 1
        if rng.random() < 0.03:
            pt = rng.choice(pts)
        step = 160 if rng.random() > 0.02 else -rng.randrange(1, 1 << 31)
        ts = (ts + step) & 0xFFFFFFFF
        arrival += 20.0 + rng.gauss(0, 3) if rng.random() > 0.01 else rng.uniform(200, 2000)
        out.append((RtpHeader(rng.random() < 0.02, pt, seq & 0xFFFF, ts, 7), arrival))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_random_streams_measure_the_same(seed: int) -> None:
    rng = random.Random(seed)
    rates = {111: 48000, 96: 16000} if seed % 2 else {}
    events = frozenset({101}) if seed % 3 else frozenset()
    python = StreamMeter(clock_rates=rates, events=events)
    c = compiled_meter(rates, events)
    for header, arrival in random_stream(rng, rng.choice([1, 2, 3, 50, 2000])):
        python.packet(header, arrival)
        c.packet(header, arrival)  # type: ignore[attr-defined]
    assert c.figures() == dataclasses.asdict(python.figures())  # type: ignore[attr-defined]


def test_the_compiled_meter_rejects_what_is_not_a_header() -> None:
    c = compiled_meter({}, frozenset())
    with pytest.raises(ValueError):
        c.packet(RtpHeader(False, 128, 1, 1, 1), 0.0)  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        c.packet(RtpHeader(False, 0, 65536, 1, 1), 0.0)  # type: ignore[attr-defined]
    fast = decode.FASTPATH
    assert fast is not None
    with pytest.raises(ValueError):
        fast.Meter([0] * 127, bytes(128), bytes(128))
    with pytest.raises(ValueError):
        fast.StreamTable().add(b"short", c)


def streams_both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[object], list[object]]:
    """The streams of ``path`` measured in C and in Python (a collector as the reader's sink)."""
    results = []
    for compiled in (True, False):
        collector = StreamCollector(compiled=compiled)
        with CaptureReader(path, sink=collector) as reader:
            list(reader)
        results.append(collector.streams())
    return results[0], results[1]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_capture_measures_the_same(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = streams_both(path, monkeypatch)
    assert fast == slow


def test_captures_with_rtp_are_among_them() -> None:
    assert sum(1 for p in CAPTURES if "rtp" in p.name.lower() or "media" in p.name.lower()) >= 2


def test_analysis_with_sdp_measures_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # Through the whole analysis: SDP binds dynamic payload types and events per receiver.
    with_media = [p for p in sample_captures() if p.suffix == ".pcap"]
    for path in with_media:
        fast = sipflow.analyze(path, media=True).media
        monkeypatch.setattr(collector_module, "FASTPATH", None)
        slow = sipflow.analyze(path, media=True).media
        monkeypatch.undo()
        assert fast == slow, path.name


def rtp_frames(n: int, *, ssrc: int = 0x1234ABCD, pt: int = 8, sport: int = 40000) -> list[bytes]:
    return [
        udp_frame(struct.pack("!BBHII", 0x80, pt, i & 0xFFFF, i * 160, ssrc) + b"\xd5" * 160, sport, 40002)
        for i in range(n)
    ]


def interleaved(n: int) -> list[bytes]:
    """Two streams, an RFC 4733 event burst and an RTCP report among them."""
    a, b = rtp_frames(n), rtp_frames(n, ssrc=0x55, sport=40010)
    event = rtp_frames(1, pt=101)[0][:42] + struct.pack("!BBHII", 0x80, 101, 500, 800, 0x1234ABCD) + bytes(4)
    rtcp = udp_frame(struct.pack("!BBHI", 0x80, 200, 6, 0x1234ABCD) + bytes(20), 40001, 40003)
    frames = [f for pair in zip(a, b, strict=True) for f in pair]
    frames[n // 2 : n // 2] = [event, rtcp]
    frames.insert(n // 3, frames[n // 3])  # one duplicate
    return frames


@pytest.mark.parametrize("resolution", ["us", "ns"])
def test_pcap_timestamps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resolution: str) -> None:
    frames = interleaved(400)
    recs = records(frames, step_us=10_003)
    if resolution == "ns":
        recs = [dataclasses.replace(r, frac=r.frac * 1000 + 417) for r in recs]
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_bytes(recs, nanosecond=resolution == "ns"))
    fast, slow = streams_both(path, monkeypatch)
    assert fast == slow and len(fast) == 2


@pytest.mark.parametrize(
    ("tsresol", "per_second", "tsoffset"),
    [(None, 10**6, None), (9, 10**9, None), (9, 10**9, -3600), (0x80 | 20, 2**20, 7), (3, 10**3, None)],
)
def test_pcapng_timestamps(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tsresol: int | None,
    per_second: int,
    tsoffset: int | None,
) -> None:
    frames = interleaved(400)
    start = 1_700_000_000 * per_second + per_second // 7
    step = per_second // 50 + 3
    blocks: list[tuple[str, tuple[object, ...]]] = [
        ("epb", (i % 2, start + step * i, f, None)) for i, f in enumerate(frames)
    ]
    ifaces = [Interface(1, tsresol=tsresol, tsoffset=tsoffset), Interface(1, tsresol=9)]
    path = tmp_path / "t.pcapng"
    path.write_bytes(pcapng_bytes([Section(interfaces=ifaces, blocks=blocks)]))
    fast, slow = streams_both(path, monkeypatch)
    assert fast == slow and len(fast) >= 2


def test_the_walk_measures_in_c(tmp_path: Path) -> None:
    # Not a Python call per packet: the collector sees a stream's first packet only.
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_bytes(records(rtp_frames(3000), step_us=20_000)))
    calls = 0
    collector = StreamCollector(compiled=True)
    original = collector.datagram

    def counting(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        original(*args, **kwargs)  # type: ignore[arg-type]

    collector.datagram = counting  # type: ignore[method-assign]
    with CaptureReader(path, sink=collector) as reader:
        list(reader)
    (stream,) = collector.streams()
    assert stream.figures.packets == 3000 and stream.last_frame == 3000
    assert calls == 1
