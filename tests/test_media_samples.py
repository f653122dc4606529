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


def _analysis(name: str) -> sipflow.Analysis:
    path: Path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} missing (samples/make-media-samples.sh makes it)")
    return sipflow.analyze(path, media=True)


def _findings(name: str) -> list[tuple[str, int | None]]:
    from sipflow.checks.rules import run_rules

    return [(f.rule, f.call_index) for f in run_rules(_analysis(name))]


def test_dtmf_in_the_audio_stream_and_as_info() -> None:
    # join-rtp.py put the three RFC 4733 events in alice's audio stream: one SSRC, no gaps.
    analysis = _analysis("media-dtmf.pcap")
    (call,) = analysis.calls
    by_call = streams_by_call(analysis.calls, analysis.media)
    (to_alice, to_bob) = sorted(by_call[call.index], key=lambda s: str(s.src) != BOB)
    assert str(to_bob.src) == ALICE and to_bob.codecs == ("PCMA", "telephone-event")
    assert (to_bob.figures.packets, to_bob.figures.lost) == (266, 0)
    assert (to_alice.figures.packets, to_alice.codecs, to_alice.dtmf) == (236, ("PCMA",), ())
    from sipflow.model.media import call_dtmf

    digits = call_dtmf(call, by_call[call.index])
    assert [(d.digit, d.source) for d in digits] == [
        ("1", "rfc4733"),
        ("5", "rfc4733"),
        ("#", "rfc4733"),
        ("7", "info"),
    ]
    # Each dtmf_2833 file holds an event of 2240 timestamp units at 8 kHz; the INFO says 160.
    assert [d.duration_ms for d in digits] == [280.0, 280.0, 280.0, 160.0]
    assert digits == sorted(digits, key=lambda d: d.frame)
    assert [f for f in _findings("media-dtmf.pcap") if f[0].startswith(("rtp-", "media-"))] == []


def test_hold_and_resume_is_not_a_media_fault() -> None:
    # Bob stops sending for ~3 s while held (a=sendonly offered, a=recvonly answered) and
    # goes on in the same stream after the resume: a gap in time, none in the sequence.
    analysis = _analysis("media-hold-resume.pcap")
    (call,) = analysis.calls
    found = {str(s.src): s for s in streams_by_call(analysis.calls, analysis.media)[call.index]}
    assert found[BOB].figures.lost == 0 and found[BOB].figures.max_delta_ms > 2900
    assert found[ALICE].figures.lost == 0 and found[ALICE].figures.max_delta_ms < 100
    assert _findings("media-hold-resume.pcap") == []


def test_media_from_another_port_than_the_sdp() -> None:
    analysis = _analysis("media-other-port.pcap")
    (call,) = analysis.calls
    found = streams_by_call(analysis.calls, analysis.media)[call.index]
    matches = {
        str(s.src): sdp.sdp_matches for s, sdp in zip(found, stream_sdp(call, found), strict=True) if sdp
    }
    assert matches == {"127.0.0.30:7000": False, ALICE: True}
    assert _findings("media-other-port.pcap") == [("media-address-mismatch", call.index)]


def test_loss_and_jitter_measured() -> None:
    analysis = _analysis("media-loss-jitter.pcap")
    (call,) = analysis.calls
    found = {str(s.src): s for s in streams_by_call(analysis.calls, analysis.media)[call.index]}
    impaired, clean = found[ALICE].figures, found[BOB].figures
    # impair-rtp.py (seeded) dropped 7 of g711a.pcap's 236 packets and delayed others.
    assert (impaired.packets, impaired.lost, impaired.expected) == (229, 7, 236)
    assert impaired.max_jitter_ms > 5 * clean.max_jitter_ms
    assert (clean.packets, clean.lost) == (236, 0)
    assert _findings("media-loss-jitter.pcap") == [("rtp-loss", call.index)]


def test_media_directly_between_the_phones_through_kamailio() -> None:
    # Kamailio relays the SIP only (one Call-ID: one leg, each message seen twice): the RTP
    # goes between alice and bob, and belongs to that call.
    analysis = _analysis("kamailio-direct-media.pcap")
    (call,) = analysis.calls
    assert len(call.legs) == 1 and len(call.legs[0].messages) == 14
    found = streams_by_call(analysis.calls, analysis.media)
    assert list(found) == [call.index]
    got = sorted((str(s.src), str(s.dst), s.figures.packets) for s in found[call.index])
    assert got == [(ALICE, BOB, 236), (BOB, ALICE, 236)]
    assert all(sdp is not None and sdp.sdp_matches for sdp in stream_sdp(call, found[call.index]))
