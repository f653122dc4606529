"""The media rules that read each stream against the call's SDP: ``media-address-mismatch``,
``rtp-loss``, ``rtp-jitter``, ``codec-not-negotiated`` and ``media-after-bye``, on copies of a
public capture with two-way G.711 audio (rtp_rtcp_sip_ipv4_udp.pcap, call 1) changed one way
each, and on literal messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Packet, Raw
from scapy.utils import rdpcap, wrpcap

import sipflow
from sipflow.checks.config import load_config
from sipflow.checks.media import MEDIA_RULES
from sipflow.checks.rules import run_rules
from sipflow.model.media import calls_of_streams, sdp_of_streams, stream_sdp, streams_by_call
from tests.conftest import SHARED_CAPTURES
from tests.sipmsg import ALICE, BOB, SDP, Feeder

SOURCE = SHARED_CAPTURES / "rtp_rtcp_sip_ipv4_udp.pcap"
pytestmark = pytest.mark.skipif(not SOURCE.is_file(), reason="needs ../shared")

CALLEE = ("200.57.7.204", 8000)  # its 200 OK's SDP: audio 200.57.7.204:8000
CALLER = ("200.57.7.196", 40376)  # the INVITE's SDP: audio 200.57.7.196:40376


def rewritten(tmp_path: Path, name: str, change: Callable[[Packet, int], Packet | None]) -> Path:
    """The capture with every UDP datagram from CALLER or CALLEE passed through ``change``
    (with its index among them); None drops it."""
    out: list[Packet] = []
    n = 0
    for p in rdpcap(str(SOURCE)):
        if p.haslayer(UDP) and (p[IP].src, p[UDP].sport) in (CALLER, CALLEE):
            changed = change(p, n)
            n += 1
            if changed is None:
                continue
            del changed[IP].chksum, changed[UDP].chksum
            p = changed
        out.append(p)
    path = tmp_path / name
    wrpcap(str(path), out)
    return path


def findings(path: Path, toml: str | None = None, tmp_path: Path | None = None) -> list[tuple[str, str]]:
    config = None
    if toml is not None:
        assert tmp_path is not None
        (tmp_path / "sipflow.toml").write_text(toml)
        config = load_config(tmp_path / "sipflow.toml")
    analysis = sipflow.analyze(path, media=True)
    return [(f.rule, f.message) for f in run_rules(analysis, config) if f.rule in MEDIA_RULES]


def test_the_original_raises_no_media_rule() -> None:
    assert findings(SOURCE) == []


def test_each_stream_knows_its_sdp() -> None:
    analysis = sipflow.analyze(SOURCE, media=True)
    call = next(c for c in analysis.calls if c.index == 1)
    streams = streams_by_call(analysis.calls, analysis.media)[1]
    described = stream_sdp(call, streams)
    by_src = {(s.src.host, s.src.port): d for s, d in zip(streams, described, strict=True)}
    to_caller, to_callee = by_src[CALLEE], by_src[CALLER]
    assert to_caller is not None and to_callee is not None
    # The callee's stream goes where the INVITE's offer said; its sender described itself in the 200.
    assert (to_caller.receiver.connection, to_caller.receiver.port) == CALLER
    assert to_caller.sender is not None and to_caller.sender.port == CALLEE[1]
    assert to_caller.receiver_message.frame == 1 and to_caller.sender_message is not None
    assert to_caller.negotiated == {8, 18, 4, 0}  # PCMA, G729, G723, PCMU of the offer
    assert to_caller.sdp_matches is True and to_callee.sdp_matches is True
    # The same through the analysis-wide helper, for streams of any call.
    owners = calls_of_streams(analysis.calls, analysis.media)
    assert [d.sdp_matches if d else None for d in sdp_of_streams(analysis.media, owners)].count(True) >= 2


def test_rtp_from_another_port_is_a_mismatch(tmp_path: Path) -> None:
    def move(p: Packet, _n: int) -> Packet:
        if (p[IP].src, p[UDP].sport) == CALLER:
            p[UDP].sport = 40380
        return p

    (found,) = findings(rewritten(tmp_path, "moved.pcap", move))
    assert found[0] == "media-address-mismatch"
    assert "RTP 200.57.7.196:40380 -> 200.57.7.204:8000" in found[1]
    assert "said 200.57.7.196:40376" in found[1]
    document = sipflow.analyze(tmp_path / "moved.pcap", media=True)
    call = next(c for c in document.calls if c.index == 1)
    streams = streams_by_call(document.calls, document.media)[1]
    matches = {
        str(s.src): d.sdp_matches for s, d in zip(streams, stream_sdp(call, streams), strict=True) if d
    }
    assert matches == {"200.57.7.196:40380": False, "200.57.7.204:8000": True}


def test_loss_over_the_threshold(tmp_path: Path) -> None:
    # Every 10th RTP packet of the callee gone (RTCP, on the odd port, is not RTP: kept).
    def drop(p: Packet, n: int) -> Packet | None:
        return None if (p[IP].src, p[UDP].sport) == CALLEE and n % 10 == 0 else p

    path = rewritten(tmp_path, "lossy.pcap", drop)
    found = findings(path)
    assert [rule for rule, _ in found] == ["rtp-loss"]
    assert "RTP 200.57.7.204:8000 -> 200.57.7.196:40376" in found[0][1]
    assert "%, over 1 %)" in found[0][1]
    assert findings(path, "[check.rules.rtp-loss]\nmax_loss_pct = 20\n", tmp_path) == []


def test_jitter_over_the_threshold(tmp_path: Path) -> None:
    # The callee's stream reaches 7.4 ms of jitter (tshark: 7.41), the caller's stays under 5.
    found = findings(SOURCE, "[check.rules.rtp-jitter]\nmax_jitter_ms = 5\n", tmp_path)
    assert [rule for rule, _ in found] == ["rtp-jitter"] * len(found) and found
    assert any("RTP 200.57.7.204:8000 -> 200.57.7.196:40376" in m and "reached 7.4 ms" in m for _, m in found)


def test_a_payload_type_the_receiver_did_not_list(tmp_path: Path) -> None:
    # The callee sends GSM (3): the caller's offer listed 8, 18, 4 and 0 only.
    def recode(p: Packet, _n: int) -> Packet:
        if (p[IP].src, p[UDP].sport) == CALLEE:
            data = bytearray(bytes(p[UDP].payload))
            data[1] = (data[1] & 0x80) | 3
            p[UDP].remove_payload()
            p[UDP].add_payload(Raw(bytes(data)))
            del p[IP].len, p[UDP].len
        return p

    found = findings(rewritten(tmp_path, "gsm.pcap", recode))
    assert [rule for rule, _ in found] == ["codec-not-negotiated"]
    assert "carries payload type 3 (GSM)" in found[0][1]
    assert "did not list (0, 4, 8, 18)" in found[0][1]


def _stream(first: float, last: float) -> object:
    from sipflow.capture.types import Endpoint
    from sipflow.media.collector import RtpStream
    from sipflow.media.rtp import RtpHeader, StreamMeter

    meter = StreamMeter()
    n = int((last - first) / 0.02) + 1
    for i in range(n):
        meter.packet(RtpHeader(False, 0, i, i * 160, 9), i * 20.0)
    return RtpStream(
        src=Endpoint("10.0.0.1", 4000), dst=Endpoint("10.0.0.3", 4000), ssrc=9, first_frame=10,
        last_frame=10 + n, first_time=first, last_time=last, figures=meter.figures(), codecs=("PCMU",),
    )  # fmt: skip


@pytest.mark.parametrize(("after", "expected"), [(0.5, []), (3.0, ["media-after-bye"])])
def test_media_after_bye(after: float, expected: list[str]) -> None:
    from tests.test_checks_rules import T0, analysis_of, answer, request

    feed = Feeder()
    inv = request("INVITE", body=SDP)
    feed(0.0, ALICE, BOB, inv)
    feed(0.5, BOB, ALICE, answer(inv, 200, "OK", to_tag="b1", body=SDP.replace("10.0.0.1", "10.0.0.3")))
    feed(0.51, ALICE, BOB, request("ACK", branch="z9hG4bK-2", to_tag="b1"))
    bye = request("BYE", branch="z9hG4bK-3", cseq=2, to_tag="b1")
    feed(5.0, ALICE, BOB, bye)
    analysis = analysis_of(feed, end=10.0)
    # Each side's audio: from 0.6 s to ``after`` seconds past the BYE.
    there = _stream(T0 + 0.6, T0 + 5.0 + after)
    back = dataclasses.replace(there, src=there.dst, dst=there.src, ssrc=10, last_time=T0 + 5.0)  # type: ignore[type-var]
    analysis = dataclasses.replace(analysis, media=(there, back), media_measured=True)
    found = [f for f in run_rules(analysis) if f.rule in MEDIA_RULES]
    assert [f.rule for f in found] == expected
    if expected:
        assert f"went on {after:.1f} s after the BYE (BYE (CSeq 2) at frame 4)" in found[0].message
