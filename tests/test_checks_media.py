"""The media rules of ``check``: ``one-way-audio`` and ``no-media``, on a public capture with
two-way audio (rtp_rtcp_sip_ipv4_udp.pcap, call 1) and on copies of it without one direction,
or without the call's RTP (the other RTP of the capture kept)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import UDP
from scapy.utils import rdpcap, wrpcap

import sipflow
from sipflow.checks.rules import run_rules
from tests.conftest import SAMPLES, SHARED_CAPTURES
from tests.sipmsg import Feeder

SOURCE = SHARED_CAPTURES / "rtp_rtcp_sip_ipv4_udp.pcap"
pytestmark = pytest.mark.skipif(not SOURCE.is_file(), reason="needs ../shared")

CALLEE = ("200.57.7.204", 8000)
CALLER = ("200.57.7.196", 40376)


def without(tmp_path: Path, name: str, *drop: tuple[str, int]) -> Path:
    """The capture without the UDP datagrams sent from any of ``drop``."""
    packets = [
        p for p in rdpcap(str(SOURCE)) if not (p.haslayer(UDP) and (p["IP"].src, p[UDP].sport) in drop)
    ]
    out = tmp_path / name
    wrpcap(str(out), packets)
    return out


def media_findings(path: Path) -> list[tuple[str, int | None, str]]:
    analysis = sipflow.analyze(path, media=True)
    return [
        (f.rule, f.call_index, f.message)
        for f in run_rules(analysis)
        if f.rule in ("one-way-audio", "no-media")
    ]


def test_two_way_audio_raises_nothing() -> None:
    assert media_findings(SOURCE) == []


def test_one_direction_missing_is_one_way_audio(tmp_path: Path) -> None:
    (found,) = media_findings(without(tmp_path, "one-way.pcap", CALLER))
    rule, call, message = found
    assert (rule, call) == ("one-way-audio", 1)
    assert "200.57.7.204:8000 -> 200.57.7.196:40376 (548 packets)" in message
    assert "none to 200.57.7.204:8000" in message


def test_no_rtp_of_the_call_is_no_media(tmp_path: Path) -> None:
    (found,) = media_findings(without(tmp_path, "no-media.pcap", CALLER, CALLEE))
    assert found[:2] == ("no-media", 1)
    assert "no RTP to any address its SDP described" in found[2]


def test_a_capture_without_rtp_says_nothing_of_media(tmp_path: Path) -> None:
    # Every datagram between unprivileged ports gone: a SIP-only capture (a port filter).
    packets = [
        p
        for p in rdpcap(str(SOURCE))
        if not (
            p.haslayer(UDP)
            and p[UDP].sport >= 1024
            and p[UDP].dport >= 1024
            and 5060 not in (p[UDP].sport, p[UDP].dport)
        )
    ]
    path = tmp_path / "sip-only.pcap"
    wrpcap(str(path), packets)
    assert sipflow.analyze(path, media=True).media == ()
    assert media_findings(path) == []


@pytest.mark.parametrize("name", ["basic-call.pcap", "proxy-call.pcap", "b2bua-3pcc.pcap"])
def test_sip_only_samples_pass(name: str) -> None:
    assert media_findings(SAMPLES / name) == []


def test_check_measures_the_media(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sipflow.cli import main

    result = CliRunner().invoke(main, ["check", str(without(tmp_path, "one-way.pcap", CALLER))])
    assert result.exit_code == 1
    assert "[one-way-audio] call 1" in result.output


def test_disabling_every_media_rule_skips_the_measurement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    import sipflow.cli
    from sipflow.cli import main

    seen: list[bool] = []
    real = sipflow.cli.analyze

    def spy(paths: object, options: sipflow.AnalysisOptions, **kwargs: object) -> object:
        seen.append(options.media)
        return real(paths, options, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sipflow.cli, "analyze", spy)
    from sipflow.checks.media import MEDIA_RULES

    config = tmp_path / "sipflow.toml"
    config.write_text(f"[check]\ndisable = {sorted(MEDIA_RULES)!r}\n".replace("'", '"'))
    one_way = without(tmp_path, "one-way.pcap", CALLER)
    assert (
        "one-way-audio"
        not in CliRunner().invoke(main, ["check", str(one_way), "--config", str(config)]).output
    )
    config.write_text(f"[check]\ndisable = {sorted(MEDIA_RULES - {'one-way-audio'})!r}\n".replace("'", '"'))
    assert (
        "[one-way-audio]" in CliRunner().invoke(main, ["check", str(one_way), "--config", str(config)]).output
    )
    assert seen == [False, True]


def _stream(src: tuple[str, int], dst: tuple[str, int], first: float) -> object:
    from sipflow.capture.types import Endpoint
    from sipflow.media.collector import RtpStream
    from sipflow.media.rtp import RtpHeader, StreamMeter

    meter = StreamMeter()
    for i in range(50):
        meter.packet(RtpHeader(False, 0, i, i * 160, 9), i * 20.0)
    return RtpStream(
        src=Endpoint(*src), dst=Endpoint(*dst), ssrc=9, first_frame=10, last_frame=60, first_time=first,
        last_time=first + 1.0, figures=meter.figures(), codecs=("PCMU",),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("offer_direction", "answer_direction", "expected"),
    [("sendrecv", "sendrecv", ["one-way-audio"]), ("sendonly", "recvonly", []), ("inactive", "inactive", [])],
)
def test_one_way_by_design_is_not_one_way_audio(
    offer_direction: str, answer_direction: str, expected: list[str]
) -> None:
    """A call on hold (a=sendonly / a=recvonly, RFC 3264 §8.4) sends one way by design."""
    import dataclasses

    from tests.sipmsg import ALICE, BOB, SDP
    from tests.test_checks_rules import analysis_of, answer, request

    feed = Feeder()
    offer = SDP + f"a={offer_direction}\r\n"
    reply = SDP.replace("10.0.0.1", "10.0.0.3") + f"a={answer_direction}\r\n"
    inv = request("INVITE", body=offer)
    feed(0.0, ALICE, BOB, inv)
    feed(0.5, BOB, ALICE, answer(inv, 200, "OK", to_tag="b1", body=reply))
    feed(0.51, ALICE, BOB, request("ACK", branch="z9hG4bK-2", to_tag="b1"))
    analysis = analysis_of(feed, end=1_700_000_010.0)
    port = int(SDP.split("m=audio ")[1].split()[0])
    stream = _stream(("10.0.0.1", 30000), ("10.0.0.3", port), 1_700_000_000.6)  # the caller's audio only
    analysis = dataclasses.replace(analysis, media=(stream,), media_measured=True)
    assert [f.rule for f in run_rules(analysis) if f.rule in ("one-way-audio", "no-media")] == expected
