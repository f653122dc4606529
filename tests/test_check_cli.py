"""``sipflow check``: exit codes, report formats (text, JSON, JUnit, GitHub), faulty samples."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner

from sipflow.checks.rules import RULES
from sipflow.cli import main
from tests.conftest import SAMPLES
from tests.sipmsg import request, response

PROXY_CALL = str(SAMPLES / "proxy-call.pcap")
GOOD = """\
calls:
  - name: alice calls bob and hangs up
    match: {from: alice, to: bob}
    outcome: completed
    flow: [INVITE, 100?, 180*, 200, ACK, BYE, 200]
    max_pdd_ms: 2000
    max_setup_ms: 5000
count: {calls: 1}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _expect(tmp_path: Path, text: str) -> str:
    path = tmp_path / "calls.yaml"
    path.write_text(text)
    return str(path)


def test_clean_sample_with_expectations_passes(tmp_path: Path) -> None:
    code, out, err = run("check", PROXY_CALL, "--expect", _expect(tmp_path, GOOD))
    assert code == 0, out + err
    assert "PASS expectation 'alice calls bob and hangs up'" in out
    assert "PASSED" in out.splitlines()[-1]


def test_failed_expectation_exits_1_and_shows_the_ladder(tmp_path: Path) -> None:
    bad = GOOD.replace("outcome: completed", "outcome: rejected")
    code, out, _ = run("check", PROXY_CALL, "--expect", _expect(tmp_path, bad))
    assert code == 1
    assert "FAIL expectation" in out and "expected:" in out and "actual:" in out
    assert "INVITE (SDP offer)" in out  # the call's --plain ladder
    assert "FAILED" in out.splitlines()[-1]


def test_bad_expectations_file_exits_2_with_the_line(tmp_path: Path) -> None:
    path = _expect(tmp_path, GOOD.replace("    max_pdd_ms: 2000\n", "    max_pdd_ms: 2000\n    bogus: 1\n"))
    code, _, err = run("check", PROXY_CALL, "--expect", path)
    assert code == 2 and path in err and "7" in err and "bogus" in err


def test_bad_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "sipflow.toml"
    config.write_text("[check]\ndisable = 3\n")
    code, _, err = run("check", PROXY_CALL, "--config", str(config))
    assert code == 2 and str(config) in err


def test_missing_capture_exits_2(tmp_path: Path) -> None:
    code, _, err = run("check", str(tmp_path / "nope.pcap"))
    assert code == 2 and "nope.pcap" in err


def test_json_report(tmp_path: Path) -> None:
    code, out, _ = run("check", PROXY_CALL, "--expect", _expect(tmp_path, GOOD), "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["passed"] is True and doc["findings"] == []
    names = [e["name"] for e in doc["expectations"]]
    assert "alice calls bob and hangs up" in names
    assert all(e["passed"] for e in doc["expectations"])


def test_junit_report_layout(tmp_path: Path) -> None:
    out = tmp_path / "report.xml"
    faulty = SAMPLES / "faulty-bye-481.pcap"
    files = [PROXY_CALL] + ([str(faulty)] if faulty.exists() else [])
    code, _, _ = run("check", *files, "--expect", _expect(tmp_path, GOOD.replace("calls: 1", "calls: 9")),
                     "--format", "junit", "-o", str(out))  # fmt: skip
    assert code == 1
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == files
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        assert int(suite.get("failures", "-1")) == len(suite.findall("testcase/failure"))
        assert {c.get("name") for c in cases} >= {rule.id for rule in RULES}
        # One identifier after the package: no folder, no extension to split at.
        stem = Path(suite.get("name", "")).stem.replace("-", "_")
        assert {c.get("classname") for c in cases} <= {f"sipflow.rules.{stem}", "sipflow.expectations"}
    assert root.findall(".//testcase/failure")  # the count expectation fails


def test_github_annotations_escape_packet_text(tmp_path: Path) -> None:
    faulty = SAMPLES / "faulty-bye-481.pcap"
    if not faulty.exists():
        pytest.skip("faulty samples not generated")
    code, out, _ = run("check", str(faulty), "--format", "github")
    assert code == 1
    lines = out.splitlines()
    assert lines and all(line.startswith(("::error ", "::warning ")) for line in lines)
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert any("481-in-dialog" in line for line in lines)


FAULTY = sorted(SAMPLES.glob("faulty-*.pcap"))


@pytest.mark.parametrize("path", FAULTY, ids=lambda p: p.stem)
def test_faulty_sample_is_flagged_by_exactly_its_rules(path: Path) -> None:
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text())["rules"]
    code, out, _ = run("check", str(path), "--format", "json")
    doc = json.loads(out)
    assert code == 1
    assert sorted({f["rule"] for f in doc["findings"]}) == sorted(expected)


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(SAMPLES.glob("*.pcap")) if not p.name.startswith("faulty-")],
    ids=lambda p: p.stem,
)
def test_clean_samples_pass(path: Path) -> None:
    code, out, _ = run("check", str(path), "--format", "json")
    findings = [f for f in json.loads(out)["findings"] if f["severity"] == "error"]
    assert code == 0 and findings == []


def _bad_date_capture(tmp_path: Path) -> str:
    """One OPTIONS with a Date in EST (RFC 4475 §3.1.2.12) and its 200, over UDP."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    ping = request("OPTIONS", extra="Date: Fri, 01 Jan 2010 16:00:00 EST\r\n")
    pong = response(ping, 200, "OK")
    link = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")  # no ARP for the addresses
    frames = [
        link / IP(src="10.0.0.1", dst="10.0.0.3") / UDP(sport=5060, dport=5060) / ping,
        link / IP(src="10.0.0.3", dst="10.0.0.1") / UDP(sport=5060, dport=5060) / pong,
    ]
    path = tmp_path / "bad-date.pcap"
    wrpcap(str(path), frames)
    return str(path)


def test_parser_defects_warn_and_are_configured_per_code(tmp_path: Path) -> None:
    capture = _bad_date_capture(tmp_path)
    code, out, _ = run("check", capture, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and [(f["rule"], f["severity"], f["frames"]) for f in doc["findings"]] == [
        ("sip.malformed.date", "warning", [[capture, 1]])
    ]
    assert "'Date: Fri, 01 Jan 2010 16:00:00 EST'" in doc["findings"][0]["message"]
    assert run("check", capture, "--strict")[0] == 1
    config = tmp_path / "sipflow.toml"
    config.write_text('[check]\ndisable = ["sip.malformed.date"]\n')
    code, out, _ = run("check", capture, "--config", str(config), "--format", "json")
    assert code == 0 and json.loads(out)["findings"] == []
    config.write_text('[check.rules."sip.malformed"]\nseverity = "error"\n')
    code, out, _ = run("check", capture, "--config", str(config), "--format", "junit")
    assert code == 1
    (case,) = [c for c in ET.fromstring(out).iter("testcase") if c.get("name") == "sip.malformed.date"]
    assert case.find("failure") is not None


def test_the_verdict_line_counts_in_words() -> None:
    result = CliRunner().invoke(main, ["check", str(SAMPLES / "faulty-bye-481.pcap")])
    last = result.output.rstrip().splitlines()[-1]
    assert last == f"FAILED: 1 error, 0 warnings, 0 of 0 expectations failed ({len(RULES)} rules over 1 file)"
