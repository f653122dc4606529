"""The media samples (samples/make-media-samples.sh: SIPp playing G.711 RTP on loopback): each
call has the streams its SIPp roles sent, linked to it by its SDP. Their figures against
tshark's are checked for every sample by tests/test_media_rtp.py; the faulty ones' rules by
tests/test_checks_rules.py and tests/test_check_cli.py."""

from __future__ import annotations

from pathlib import Path

import pytest

import sipflow
from sipflow.model.media import stream_sdp, streams_by_call
from tests.conftest import SAMPLES

ALICE = "127.0.0.10:6000"
BOB = "127.0.0.30:6000"


def streams(name: str) -> dict[int, list[tuple[str, str, int, int]]]:
    path: Path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} missing (samples/make-media-samples.sh makes it)")
    analysis = sipflow.analyze(path, media=True)
    calls = {c.index: c for c in analysis.calls}
    out: dict[int, list[tuple[str, str, int, int]]] = {index: [] for index in calls}
    for index, found in streams_by_call(analysis.calls, analysis.media).items():
        assert index in calls, f"stream not linked to a call: {found}"
        for s, sdp in zip(found, stream_sdp(calls[index], found), strict=True):
            assert sdp is not None and sdp.sdp_matches is True  # SIPp sends from its SDP's port
            assert s.codecs == ("PCMA",) and s.dtmf == ()
            out[index].append((str(s.src), str(s.dst), s.figures.packets, s.figures.lost))
    return out


def test_two_way() -> None:
    # g711a.pcap holds 236 packets; loopback loses none.
    assert streams("media-two-way.pcap") == {1: [(BOB, ALICE, 236, 0), (ALICE, BOB, 236, 0)]}


def test_one_way() -> None:
    assert streams("faulty-one-way-audio.pcap") == {1: [(ALICE, BOB, 236, 0)]}


def test_no_media_beside_a_call_with_audio() -> None:
    assert streams("faulty-no-media.pcap") == {1: [(BOB, ALICE, 236, 0), (ALICE, BOB, 236, 0)], 2: []}


def test_mos_of_clean_g711() -> None:
    from sipflow.media.quality import quality

    path = SAMPLES / "media-two-way.pcap"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    for s in sipflow.analyze(path, media=True).media:
        estimate = quality(s.figures, s.codecs)
        assert estimate is not None and estimate.mos == pytest.approx(4.41, abs=0.01)


@pytest.mark.parametrize(
    ("name", "yaml", "passed", "actual"),
    [
        ("media-two-way.pcap", "media: two-way\n    max_loss_pct: 1", True, "media two-way; loss 0.0 %"),
        ("faulty-one-way-audio.pcap", "media: two-way", False, "media one-way"),
        ("faulty-one-way-audio.pcap", "media: one-way", True, "media one-way"),
        ("media-two-way.pcap", "max_loss_pct: 0", True, "loss 0.0 %"),
    ],
)
def test_expectations_about_media(name: str, yaml: str, passed: bool, actual: str) -> None:
    from sipflow.checks.expect import evaluate, parse_expectations

    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} missing")
    expectations = parse_expectations(f"calls:\n  - match: {{from: alice}}\n    {yaml}\n")
    assert expectations.needs_media
    (result,) = evaluate(expectations, sipflow.analyze(path, media=True))
    assert result.passed is passed
    assert actual in result.actual


def test_no_media_expected_of_the_silent_call() -> None:
    from sipflow.checks.expect import evaluate, parse_expectations

    path = SAMPLES / "faulty-no-media.pcap"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    text = "calls:\n  - match: {call-id: sipflow-faulty-no-media-alice-2-1@127.0.0.10}\n    media: none\n"
    analysis = sipflow.analyze(path, media=True)
    (result,) = evaluate(parse_expectations(text), analysis)
    assert result.passed and "media none" in result.actual
    (result,) = evaluate(parse_expectations(text + "    max_loss_pct: 5\n"), analysis)
    assert not result.passed
    assert [f.message for f in result.findings if "no RTP of the call measured" in f.message]


def test_a_bad_media_value_names_its_line() -> None:
    from sipflow.checks.expect import parse_expectations
    from sipflow.checks.expectations import ExpectationError

    with pytest.raises(ExpectationError, match="media must be one of two-way, one-way, none") as caught:
        parse_expectations("calls:\n  - match: {from: a}\n    media: both\n", file="x.yaml")
    assert caught.value.line == 3
