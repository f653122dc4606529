"""Expectations files: validation with line numbers, flow patterns, and results on the samples."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from sipflow.checks.expect import (
    ExpectationError,
    ExpectationResult,
    FlowPattern,
    FlowToken,
    call_flow,
    evaluate,
    load_expectations,
    parse_expectations,
)
from sipflow.checks.finding import Severity
from sipflow.model.analysis import Analysis
from sipflow.pipeline import analyze
from tests.conftest import SAMPLES

PROXY_CALL_OK = """\
# samples/proxy-call.pcap: alice calls bob through the proxy, bob answers, alice hangs up.
calls:
  - name: alice calls bob and hangs up
    match: {from: alice, to: bob}
    outcome: completed
    flow: [INVITE, 100?, 180*, 200, ACK, BYE, 200]
    max_pdd_ms: 2000
    max_setup_ms: 5000
  - name: by header
    match:
      header: {User-Agent: "alice-phone (SIPp)"}
    status: 200
    flow: INVITE 1xx* 2xx ACK BYE 2xx
count: {calls: 1, completed: 1}
"""


@cache
def sample(name: str) -> Analysis:
    return analyze([SAMPLES / name])


def run(text: str, name: str = "proxy-call.pcap") -> list[ExpectationResult]:
    return evaluate(parse_expectations(text, file="calls.yaml"), sample(name))


def one_call(body: str, name: str = "proxy-call.pcap") -> ExpectationResult:
    (result,) = run("calls:\n  - name: it\n" + body, name)
    return result


# ------------------------------------------------------------------------------ results


def test_passing_file_for_the_proxy_call(tmp_path: Path) -> None:
    path = tmp_path / "calls.yaml"
    path.write_text(PROXY_CALL_OK)
    expectations = load_expectations(path)
    assert expectations.file == str(path)
    assert [e.line for e in expectations.calls] == [3, 9]
    results = evaluate(expectations, sample("proxy-call.pcap"))
    assert [(r.name, r.passed, r.call_index) for r in results] == [
        ("alice calls bob and hangs up", True, 1),
        ("by header", True, 1),
        ("count", True, None),
    ]
    first = results[0]
    assert first.expected == (
        "outcome completed; flow INVITE 100? 180* 200 ACK BYE 200; PDD <= 2000 ms; setup <= 5000 ms"
    )
    assert first.actual == (
        "call 1; outcome completed 200 OK; flow INVITE 100 180 200 ACK BYE 200; PDD 53 ms; setup 456 ms"
    )
    assert all(r.findings == () for r in results)


def test_wrong_outcome_says_what_the_trace_shows() -> None:
    result = one_call("    match: {to: bob}\n    outcome: [rejected, failed]\n")
    assert not result.passed and result.call_index == 1
    assert result.expected == "outcome rejected or failed"
    assert result.actual == "call 1; outcome completed 200 OK"
    (finding,) = result.findings
    assert finding.rule == "expect:it" and finding.severity is Severity.ERROR
    assert finding.frames == ((str(SAMPLES / "proxy-call.pcap"), 8),)  # the 200 alice received
    assert finding.message == (
        "call 1 (Call-ID sipflow-proxy-call-1@127.0.0.10): expected outcome rejected or failed; "
        "got completed 200 OK at frame 8"
    )


def test_rejected_call_outcome_and_status() -> None:
    result = one_call(
        "    outcome: rejected\n    status: 486\n    flow: [INVITE, 100, 486, ACK]\n", "busy-486.pcap"
    )
    assert result.passed, result.actual
    result = one_call("    status: 404\n", "busy-486.pcap")
    assert not result.passed
    assert result.findings[0].message.endswith("expected status 404; got 486 Busy Here at frame 7")


def test_wrong_flow_points_at_the_first_message_that_differs() -> None:
    result = one_call("    flow: [INVITE, 180, 200, ACK, BYE, 200]\n")
    assert not result.passed
    (finding,) = result.findings
    assert finding.message.endswith(
        "expected flow INVITE 180 200 ACK BYE 200; got flow INVITE 100 180 200 ACK BYE 200: "
        "message 2 (100 at frame 2) where 180 was expected"
    )
    assert [frame for _, frame in finding.frames] == [2]


def test_flow_that_ends_too_early() -> None:
    result = one_call("    flow: [INVITE, 1xx*, 200, ACK, BYE, 200, BYE+]\n")
    (finding,) = result.findings
    assert "the flow ends where BYE was expected" in finding.message
    assert [frame for _, frame in finding.frames] == [14]


def test_pdd_too_slow_and_setup_never_reached() -> None:
    result = one_call("    max_pdd_ms: 10\n")
    (finding,) = result.findings
    assert finding.message.endswith("expected PDD <= 10 ms; got PDD 53 ms")
    assert [frame for _, frame in finding.frames] == [1, 6]  # alice's INVITE, the 180 she got
    result = one_call("    max_setup_ms: 100000\n", "busy-486.pcap")
    assert result.findings[0].message.endswith("expected setup <= 100000 ms; got the call was never answered")


def test_count_totals() -> None:
    (result,) = run("count: {calls: 2, completed: 1, rejected: 1}\n")
    assert not result.passed and result.name == "count"
    assert result.expected == "2 calls, 1 completed call, 1 rejected call"
    assert result.actual == "1 call, 1 completed call, 0 rejected calls"
    assert [f.rule for f in result.findings] == ["expect:count", "expect:count"]
    (result,) = run("count: {calls: 3, completed: 3}\n", "three-calls.pcap")
    assert result.passed


def test_several_matching_calls_fail_and_say_which() -> None:
    result = one_call("    match: {from: alice}\n    outcome: completed\n", "three-calls.pcap")
    assert not result.passed and result.call_index is None
    assert result.expected == "exactly one call matching from 'alice'; outcome completed"
    assert result.actual.startswith(
        "3 calls match: call 1 sip:alice@127.0.0.10 -> sip:bob@127.0.0.20 completed; "
    )
    (finding,) = result.findings
    assert finding.call_index is None and finding.message.startswith("the trace: expected exactly one call")


def test_count_per_expectation_checks_every_matching_call() -> None:
    body = "    match: {from: alice}\n    count: 3\n    flow: [INVITE, 100?, 180*, 200, ACK, BYE, 200]\n"
    assert one_call(body, "three-calls.pcap").passed
    result = one_call(
        "    match: {from: alice}\n    count: 3\n    flow: [INVITE, 200, ACK, BYE, 200]\n", "three-calls.pcap"
    )
    assert not result.passed
    assert [f.call_index for f in result.findings] == [1, 2, 3]


def test_no_matching_call_lists_the_calls_there_are() -> None:
    result = one_call("    match: {to: carol}\n")
    assert result.actual == (
        "no call matches (the trace has: call 1 sip:alice@127.0.0.10 -> sip:bob@127.0.0.20 completed)"
    )
    assert one_call("    match: {to: carol}\n    count: 0\n").passed


def test_match_by_call_id_and_header_value() -> None:
    assert one_call("    match: {call-id: sipflow-proxy-call-1@127.0.0.10}\n").passed
    result = one_call("    match:\n      header: {User-Agent: bob-phone}\n")
    assert not result.passed and result.actual.startswith("no call matches")


def test_caller_flows_of_the_samples() -> None:
    flows = {
        "cancel.pcap": "[INVITE, 1xx+, CANCEL, 200, 487, ACK]",
        "auth-407.pcap": "[INVITE, 407, ACK, INVITE, 100?, 18x*, 2xx, ACK, BYE, 200]",
        "reinvite-hold.pcap": "[INVITE, 100?, 180*, 200, ACK, INVITE, 100?, 200, ACK, BYE, 200]",
        "tcp-call.pcap": "[INVITE, 100, 180, 200, ACK, BYE, 200]",
        "no-answer-timeout.pcap": "[INVITE, 100, 180, 408, ACK]",
    }
    for name, flow in flows.items():
        result = one_call(f"    flow: {flow}\n", name)
        assert result.passed, (name, result.actual)


def test_b2bua_flow_is_the_callers_leg_only() -> None:
    call = sample("b2bua-3pcc.pcap").calls[0]
    assert len(call.legs) == 2
    assert [m.label.split()[0] for m in call_flow(call)] == [
        "INVITE",
        "100",
        "180",
        "200",
        "ACK",
        "BYE",
        "200",
    ]
    assert all(m.sip.call_id == call.id for m in call_flow(call))


# ---------------------------------------------------------------------------- flow patterns


@pytest.mark.parametrize(
    ("pattern", "flow", "ok"),
    [
        ("INVITE 100? 180* 200 ACK", "INVITE 200 ACK", True),
        ("INVITE 100? 180* 200 ACK", "INVITE 100 180 180 200 ACK", True),
        ("INVITE 100? 180* 200 ACK", "INVITE 100 100 200 ACK", False),
        ("INVITE 18x+ 2xx", "INVITE 200", False),
        ("INVITE 18x+ 2xx", "INVITE 183 180 202", True),
        ("INVITE 1xx* 4xx ACK", "INVITE 100 486 ACK", True),
        ("INVITE 1xx* 4xx ACK", "INVITE 100 503 ACK", False),
        ("BYE* INVITE", "INVITE", True),
        ("INVITE* INVITE", "INVITE INVITE", True),
        ("INVITE", "INVITE ACK", False),
        ("INVITE? ACK?", "", True),
    ],
)
def test_flow_pattern(pattern: str, flow: str, ok: bool) -> None:
    compiled = FlowPattern(tokens=tuple(FlowToken.parse(t) for t in pattern.split()))
    assert compiled.match(flow.split()).ok is ok
    assert str(compiled) == pattern


def test_flow_mismatch_position_and_what_was_expected() -> None:
    pattern = FlowPattern(tokens=tuple(FlowToken.parse(t) for t in ["INVITE", "100?", "180*", "200", "ACK"]))
    result = pattern.match(["INVITE", "180", "486"])
    assert (result.ok, result.position, result.expected) == (False, 2, ("180", "200"))
    result = pattern.match(["INVITE", "200"])
    assert (result.ok, result.position, result.expected) == (False, 2, ("ACK",))


# ---------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("calls:\n  - name: x\n    flow: [INVITE, 200\n", 4, "not valid YAML"),
        ("calls:\n  - name: x\n    outcom: completed\n", 3, "unknown key 'outcom' in call expectation 1"),
        ("calls:\n  - name: x\n    flow: [INVITE, 100?, 18y, 200]\n", 3, "bad flow token '18y'"),
        (
            "calls:\n  - name: x\n    flow:\n      - INVITE\n      - invite\n",
            5,
            "methods are upper case: INVITE",
        ),
        ("calls:\n  - name: x\n    flow: [INVITE, 700]\n", 3, "bad flow token '700'"),
        ("calls:\n  - name: x\n    flow: INVITE 200 FOO\n", 3, "unknown method 'FOO'"),
        ("calls:\n  - name: x\n    outcome: answered\n", 3, "unknown outcome 'answered' (call states: setup"),
        ("calls:\n  - name: x\n    outcome: [completed, hungup]\n", 3, "unknown outcome 'hungup'"),
        ("calls:\n  - name: x\n    match: {from: a, form: b}\n", 3, "unknown key 'form' in match"),
        ("calls:\n  - name: x\n    match: {header: X-Id}\n", 3, "match.header must be a mapping"),
        ("calls:\n  - name: x\n    name: y\n", 3, "key 'name' repeated"),
        ("calls:\n  - name: x\n    max_pdd_ms: soon\n", 3, "max_pdd_ms must be a number >= 0"),
        ("calls:\n  - name: x\n    status: 99\n", 3, "status must be a whole number from 100 to 699"),
        ("calls:\n  - name: x\n    count: -1\n", 3, "count must be a whole number >= 0"),
        ("calls:\n  - name: x\n  - name: x\n", 3, "name 'x' already used by call expectation 1"),
        ("calls: {name: x}\n", 1, "calls must be a list"),
        ("count: {calls: 1, answered: 1}\n", 1, "unknown key 'answered' in count"),
        ("version: 1\ncalls: []\n", 1, "unknown key 'version'"),
        ("calls: []\n", 1, "nothing to check"),
        ("- a\n- b\n", 1, "the expectations file must be a mapping"),
        ("", 1, "the file is empty"),
    ],
)
def test_bad_expectations_name_the_line(text: str, line: int, says: str) -> None:
    with pytest.raises(ExpectationError) as info:
        parse_expectations(text, file="calls.yaml")
    assert info.value.line == line, str(info.value)
    assert info.value.file == "calls.yaml"
    assert says in info.value.reason
    assert str(info.value).startswith(f"calls.yaml:{line}: ")


def test_unreadable_or_binary_file(tmp_path: Path) -> None:
    with pytest.raises(ExpectationError, match="cannot read") as info:
        load_expectations(tmp_path / "missing.yaml")
    assert info.value.file == str(tmp_path / "missing.yaml")
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"calls:\n  - name: \xff\n")
    with pytest.raises(ExpectationError, match="not UTF-8") as info:
        load_expectations(path)
    assert info.value.line == 2


def test_flow_tokens_with_question_marks_need_no_quotes() -> None:
    (entry,) = parse_expectations("calls:\n  - flow: [INVITE, 100?, 180*, 18x+, 200]\n").calls
    assert entry.name == "calls[1]"
    assert entry.flow is not None and str(entry.flow) == "INVITE 100? 180* 18x+ 200"


def test_the_readme_flow_holds_with_and_without_a_407_challenge() -> None:
    """Issue 17: README's example flow failed on every call challenged with 407."""
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (flow,) = re.findall(r"^\s+(flow: \[INVITE.*\])$", readme, re.M)
    text = "calls:\n  - match: {from: alice}\n    " + flow + "\n"
    for name in ("auth-407.pcap", "proxy-call.pcap", "basic-call.pcap"):
        path = SAMPLES / name
        if not path.is_file():
            pytest.skip(f"{path} missing")
        (result,) = evaluate(parse_expectations(text), analyze([path]))
        assert result.passed, (name, result.actual)


@pytest.mark.parametrize("fmt", ["text", "junit", "github"])
def test_every_report_says_where_a_flow_diverged(fmt: str) -> None:
    """Issue 17: only the JSON said which message broke the flow."""
    import tempfile

    from click.testing import CliRunner

    from sipflow.cli import main

    text = "calls:\n  - match: {from: alice}\n    flow: [INVITE, 100?, 180*, 200, ACK, BYE, 200]\n"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    args = ["check", str(SAMPLES / "auth-407.pcap"), "--expect", f.name, "--format", fmt]
    result = CliRunner().invoke(main, args)
    Path(f.name).unlink()
    assert result.exit_code == 1
    assert "message 2 (407 at frame 2) where 100 or 180 or 200 was expected" in result.stdout
