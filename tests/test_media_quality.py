"""The simplified G.107 E-model of ``sipflow.media.quality``: the figures G.107 and G.113 give."""

from __future__ import annotations

import pytest

from sipflow.media.quality import mos_from_r, primary_codec, quality, r_factor
from sipflow.media.rtp import RtpHeader, StreamMeter


def test_mos_from_r_follows_annex_b() -> None:
    assert mos_from_r(93.2) == pytest.approx(4.41, abs=0.005)  # G.107's default rating
    assert mos_from_r(0) == 1.0 and mos_from_r(-5) == 1.0
    assert mos_from_r(100) == 4.5
    assert mos_from_r(50) == pytest.approx(2.575, abs=0.001)  # 1 + 1.75 + 50 * -10 * 50 * 7e-6
    ratings = [mos_from_r(r) for r in range(0, 101, 5)]
    assert ratings == sorted(ratings)


def test_codec_impairments() -> None:
    assert r_factor("PCMA", 0, 40) == pytest.approx(93.2)
    assert r_factor("pcmu", 0, 40) == pytest.approx(93.2)  # names compared without case
    assert r_factor("G729", 0, 40) == pytest.approx(82.2)
    # Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl + Bpl): G.711 at 1 % random loss
    assert r_factor("PCMA", 1, 40) == pytest.approx(93.2 - 95 / 26.1, abs=1e-6)
    assert r_factor("opus", 0, 40) is None
    losses = [r_factor("PCMU", p, 40) or 0 for p in (0, 1, 2, 5, 10, 20)]
    assert losses == sorted(losses, reverse=True)


def test_delay_impairment_starts_at_100_ms() -> None:
    assert r_factor("PCMA", 0, 100) == pytest.approx(93.2)
    # G.107 §7.3 Idd at Ta = 200 ms (X = 1): 25 * (2^(1/6) - 3 * (1 + 1/729)^(1/6) + 2) = 3.04
    assert 93.2 - (r_factor("PCMA", 0, 200) or 0) == pytest.approx(3.04, abs=0.01)


def test_primary_codec_skips_comfort_noise_and_events() -> None:
    assert primary_codec((13, 8, 101), ("CN", "PCMA", "telephone-event")) == (8, "PCMA")
    assert primary_codec((101,), ("telephone-event",)) == (101, "telephone-event")
    assert primary_codec((), ()) is None


def test_quality_of_a_measured_stream() -> None:
    meter = StreamMeter()
    for i in range(500):
        if i % 50 == 7:
            continue  # 2 % lost
        meter.packet(RtpHeader(False, 8, i, i * 160, 1), i * 20.0)
    estimate = quality(meter.figures(), ("PCMA",))
    assert estimate is not None
    assert estimate.codec == "PCMA"
    assert estimate.r_factor == pytest.approx(round(93.2 - 95 * 2 / 27.1, 1), abs=0.11)
    assert 3.9 < estimate.mos < 4.3
    assert quality(meter.figures(), ("L16",)) is None
