"""The wire samples (samples/make-wire-samples.sh): real traces where the packets are odd.

Each fact is read from ``samples/wire-facts.json``, which the script computed from tshark's
view of the captures: Via-less and mismatched 487s, a real retransmission seen by two probes
whose clocks differ by 0.35 s, and every packet captured twice on one interface.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sipflow.checks.rules import run_rules
from sipflow.cli import main
from sipflow.model.analysis import Analysis
from sipflow.model.call import CallState
from sipflow.model.message import MatchedBy
from sipflow.pipeline import analyze
from tests.conftest import SAMPLES

FACTS = SAMPLES / "wire-facts.json"
pytestmark = pytest.mark.skipif(not FACTS.is_file(), reason="wire samples not generated")


def facts(name: str) -> dict[str, Any]:
    captures: dict[str, dict[str, Any]] = json.loads(FACTS.read_text())["captures"]
    return captures[name]


def by_frame(analysis: Analysis) -> dict[int, Any]:
    return {m.frame: m for m in analysis.messages}


@pytest.mark.parametrize("name", ["two-probes.pcapng", "doubled-one-interface.pcap"])
def test_each_message_once_and_each_retransmission_exactly_once(name: str) -> None:
    truth = facts(name)
    analysis = analyze([SAMPLES / name])
    messages = by_frame(analysis)
    assert analysis.summary.sip_messages == truth["unique_messages"]
    assert sorted(m.frame for m in analysis.messages if m.retransmission) == truth["retransmission_frames"]
    assert analysis.summary.retransmissions == truth["retransmissions"]
    copies = sorted((m.frame, frame) for m in analysis.messages for _, frame in m.copies)
    assert copies == sorted(tuple(pair) for pair in truth["copy_pairs"])
    assert all(file == str(SAMPLES / name) for m in analysis.messages for file, _ in m.copies)
    assert analysis.summary.duplicates == len(truth["copy_pairs"])
    # A copy is never a message of its own, so never a retransmission either.
    assert not {copy for _, copy in truth["copy_pairs"]} & set(messages)
    (call,) = analysis.calls
    assert call.state is CallState.COMPLETED and call.retransmissions == truth["retransmissions"]


def test_two_probes_are_two_capture_points_with_their_skew() -> None:
    truth = facts("two-probes.pcapng")
    path = str(SAMPLES / "two-probes.pcapng")
    analysis = analyze([path])
    points = analysis.summary.capture_points
    assert [(p.name, p.interface) for p in points] == [(f"{path}#0", 0), (f"{path}#1", 1)]
    assert points[1].skew == pytest.approx(truth["skew_seconds"], abs=0.005)
    assert analysis.summary.skew == {f"{path}#1": points[1].skew}
    assert analysis.summary.doubled == 0
    # The copies come from probe B (interface 1), 0.35 s later on its clock; taken out here.
    assert all(m.timestamp <= n.timestamp for m, n in itertools.pairwise(analysis.messages))


def test_two_probes_with_the_skew_given() -> None:
    path = str(SAMPLES / "two-probes.pcapng")
    estimated = analyze([path])
    given = analyze([path], skew={"two-probes.pcapng#1": 0.35})
    assert given.summary.skew == {f"{path}#1": 0.35}
    assert given.summary.sip_messages == estimated.summary.sip_messages
    assert given.summary.retransmissions == estimated.summary.retransmissions == 1
    # Without the skew taken out the copies are 0.35 s late: each looks like a resend.
    unskewed = analyze([path], skew={"two-probes.pcapng#1": 0.0})
    assert unskewed.summary.sip_messages == 23 and unskewed.summary.retransmissions > 1


def test_doubled_capture_is_one_point_with_doubled_datagrams() -> None:
    analysis = analyze([SAMPLES / "doubled-one-interface.pcap"])
    assert len(analysis.summary.capture_points) == 1
    assert analysis.summary.doubled == analysis.summary.duplicates == 7
    assert analysis.summary.skew == {}


def test_two_probes_json_summary() -> None:
    path = str(SAMPLES / "two-probes.pcapng")
    result = CliRunner().invoke(main, ["calls", path, "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["summary"]
    assert summary["sip_messages"] == 15 and summary["retransmissions"] == 1
    assert summary["duplicates"] == 8 and summary["doubled"] == 0
    assert [p["interface"] for p in summary["capture_points"]] == [0, 1]
    assert summary["skew"][f"{path}#1"] == pytest.approx(0.35, abs=0.005)
    table = CliRunner().invoke(main, ["calls", path])
    assert "8 copies merged (8 from 2 capture points)" in table.output
    assert "1 retransmission" in table.output


def _transactions(analysis: Analysis) -> list[tuple[str, list[int]]]:
    return [(tx.method, [m.frame for m in tx.messages]) for tx in analysis.transactions]


def test_via_less_487_through_a_proxy_is_a_cancelled_call() -> None:
    name = "faulty-via-487-proxy.pcap"
    truth = facts(name)
    analysis = analyze([SAMPLES / name])
    (call,) = analysis.calls
    assert call.state is CallState.CANCELLED and call.final_status == 487
    assert _transactions(analysis) == [
        ("INVITE", [1, 2, 6, 13, 14]),  # alice's hop: the Via-less 487 and her ACK
        ("INVITE", [3, 4, 5, 11, 12]),  # bob's hop: matched by the proxy's branch
        ("CANCEL", [7, 9]),
        ("CANCEL", [8, 10]),
    ]
    cseq = sorted(m.frame for m in analysis.messages if m.matched_by is MatchedBy.CSEQ)
    via_less = [d["frame"] for d in truth["defects"] if d["kind"] == "via-less"]
    assert cseq == via_less == [13]
    findings = run_rules(analysis)
    assert sorted((f.rule, tuple(fr for _, fr in f.frames)) for f in findings) == [
        ("missing-header", (13,)),
        ("via-mismatch", (11, 3)),
    ]


def test_487_with_the_cancels_via_over_one_hop() -> None:
    name = "faulty-via-487-direct.pcap"
    analysis = analyze([SAMPLES / name])
    (call,) = analysis.calls
    assert call.state is CallState.CANCELLED and call.final_status == 487
    assert _transactions(analysis) == [("INVITE", [1, 2, 3, 6, 7]), ("CANCEL", [4, 5])]
    assert [m.frame for m in analysis.messages if m.matched_by is MatchedBy.CSEQ] == [6]
    (finding,) = run_rules(analysis)
    assert finding.rule == "via-mismatch" and [fr for _, fr in finding.frames] == [6, 1]


def test_ladder_and_flow_mark_the_fallback(tmp_path: Path) -> None:
    path = str(SAMPLES / "faulty-via-487-proxy.pcap")
    ladder = CliRunner().invoke(main, ["ladder", path, "--plain"])
    assert "487 Request Terminated (matched by CSeq)" in ladder.output
    out = tmp_path / "call.json"
    result = CliRunner().invoke(main, ["export", path, "--call", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    (call,) = json.loads(out.read_text())["calls"]
    marks = {item["frame"]: item["matched_by"] for item in call["flow"]}
    assert marks[13] == "cseq" and {v for k, v in marks.items() if k != 13} == {"via"}
    assert call["legs"][0]["transactions"][0]["matched_by_cseq"] == [13]
    svg = tmp_path / "call.svg"
    assert CliRunner().invoke(main, ["export", path, "--call", "1", "-o", str(svg)]).exit_code == 0
    assert "(matched by CSeq)" in svg.read_text()


def test_an_interface_described_after_the_first_packet_is_a_capture_point(tmp_path: Path) -> None:
    import struct

    from tests.capture_util import Interface, Section, pcapng_bytes, sip_request
    from tests.test_capture_reader import udp_frame

    frame = udp_frame(sip_request())
    idb = struct.pack("<HHI", 1, 0, 0)  # Ethernet, no options
    ts = 1_700_000_000 * 1_000_000
    section = Section(
        interfaces=[Interface(linktype=1)],
        blocks=[("epb", (0, ts, frame, None)), ("raw", (1, idb)), ("epb", (1, ts + 200, frame, None))],
    )
    path = tmp_path / "late.pcapng"
    path.write_bytes(pcapng_bytes([section]))
    analysis = analyze([path])
    assert [(p.name, p.interface) for p in analysis.summary.capture_points] == [
        (str(path), 0),
        (f"{path}#1", 1),
    ]
    assert analysis.summary.sip_messages == 1 and analysis.summary.duplicates == 1
    assert analysis.messages[0].copies == ((str(path), 2),)
