"""``sipflow stats --media``: the media totals of the media samples, against the streams that
``sipflow media`` lists (whose figures tests/test_media_rtp.py checks against tshark's)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

import sipflow
from sipflow.capture.types import Endpoint
from sipflow.cli import main
from sipflow.media.collector import RtpStream
from sipflow.media.rtp import StreamFigures
from sipflow.media_stats import SATISFACTION, Spread, media_stats
from tests.conftest import SAMPLES

NAMES = (
    "media-two-way.pcap",
    "faulty-one-way-audio.pcap",
    "faulty-no-media.pcap",
    "media-loss-jitter.pcap",
    "media-dtmf.pcap",
)


def _paths() -> list[Path]:
    paths = [SAMPLES / name for name in NAMES]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"{missing[0]} missing (samples/make-media-samples.sh makes it)")
    return paths


def test_totals_add_up_the_streams_sipflow_media_lists() -> None:
    paths = [str(p) for p in _paths()]
    runner = CliRunner()
    listed = json.loads(runner.invoke(main, ["media", *paths, "--format", "json"]).stdout)["streams"]
    result = runner.invoke(main, ["stats", *paths, "--media", "--format", "json"])
    assert result.exit_code == 0, result.output
    media = json.loads(result.stdout)["media"]
    assert media["streams"] == len(listed) == 9
    assert media["packets"] == sum(s["packets"] for s in listed)
    assert media["expected"] == sum(s["expected"] for s in listed)
    assert media["lost"] == sum(s["lost"] for s in listed) == 7  # media-loss-jitter's alice
    assert media["lost_pct"] == pytest.approx(100 * 7 / media["expected"], abs=1e-3)
    assert media["streams_with_loss"] == 1 and media["unlinked"] == 0
    # Two-way: media-two-way, faulty-no-media's first call, loss-jitter, dtmf; one-way: bob
    # silent; none: faulty-no-media's second call.
    assert media["calls"] == {"two-way": 4, "one-way": 1, "none": 1}
    assert media["max_jitter"]["max_ms"] == pytest.approx(max(s["max_jitter_ms"] for s in listed), abs=1e-3)
    assert media["mos"]["min"] == min(s["mos"] for s in listed)
    assert media["mos"]["count"] + media["unrated"] == 9
    assert sum(media["satisfaction"].values()) == media["mos"]["count"]
    assert list(media["satisfaction"]) == [name for _, name in SATISFACTION]
    # The telephone events ride in alice's PCMA stream: its voice codec is PCMA.
    assert media["codecs"] == {"PCMA": 9}


def test_table_and_no_media_without_the_option() -> None:
    paths = [str(p) for p in _paths()]
    runner = CliRunner()
    plain = json.loads(runner.invoke(main, ["stats", *paths, "--format", "json"]).stdout)
    assert "media" not in plain
    text = runner.invoke(main, ["stats", *paths, "--media"]).stdout
    assert "RTP streams: 9 (9 linked to calls, 0 unlinked); " in text
    assert "Answered calls: 4 with two-way RTP, 1 one-way, 1 with none" in text
    row = next(line for line in text.splitlines() if line.startswith("Loss (%)"))
    assert row.split()[2:] == ["9", "0.00", "0.00", "2.97", "2.97", "2.97", "0.33"]


def _lossy(lost: int, codec: str = "PCMU", pt: int = 0) -> RtpStream:
    figures = StreamFigures(
        packets=100 - lost,
        expected=100,
        lost=lost,
        sequence_errors=0,
        min_delta_ms=20.0,
        mean_delta_ms=20.0,
        max_delta_ms=40.0,
        min_jitter_ms=0.0,
        mean_jitter_ms=1.0,
        max_jitter_ms=2.0,
        clock_rate=8000,
        payload_types=(pt,),
    )
    return RtpStream(
        src=Endpoint("192.0.2.1", 4000),
        dst=Endpoint("192.0.2.2", 4000),
        ssrc=7,
        first_frame=1,
        last_frame=100,
        first_time=0.0,
        last_time=2.0,
        figures=figures,
        codecs=(codec,),
    )


def test_unlinked_streams_bands_and_unrated_codecs() -> None:
    (path, *_) = _paths()
    analysis = sipflow.analyze(path, media=True)
    # 40 % loss: G.711's R falls below 50 (not recommended); a codec the E-model does not rate
    # has no MOS. Neither is described by an SDP of the capture: unlinked.
    extra = (_lossy(40), _lossy(0, "X-VENDOR", 96))
    totals = media_stats(replace(analysis, media=analysis.media + extra))
    assert (totals.streams, totals.linked) == (4, 2)
    assert totals.satisfaction["not_recommended"] == 1 and totals.unrated == 1
    assert totals.satisfaction["very_satisfied"] == 2
    assert totals.codecs == {"PCMA": 2, "PCMU": 1, "X-VENDOR": 1}
    assert totals.calls == {"two-way": 1, "one-way": 0, "none": 0}
    assert totals.loss_pct.max == 40.0 and totals.streams_with_loss == 1


def test_spread_is_nearest_rank() -> None:
    assert Spread.of([]) == Spread(count=0)
    spread = Spread.of([float(v) for v in range(1, 101)])
    assert (spread.min, spread.p50, spread.p90, spread.p99, spread.max) == (1.0, 50.0, 90.0, 99.0, 100.0)
    assert spread.mean == 50.5


def test_no_rtp_in_the_capture() -> None:
    path = SAMPLES / "busy-486.pcap"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    totals = media_stats(sipflow.analyze(path, media=True))
    assert (totals.streams, totals.packets, totals.lost_pct, totals.mos.count) == (0, 0, None, 0)
    assert totals.calls == {"two-way": 0, "one-way": 0, "none": 0}  # the call was not answered
