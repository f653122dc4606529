"""The ``sip.malformed`` rules of ``sipflow check``: one finding per parser defect, per code.

A message's defects become findings naming the frame and quoting the offending text; each code
is a rule (warning by default) that can be disabled or graded alone or with its family; the
kinds ``missing-header`` and ``content-length-mismatch`` report stay theirs; payloads that
could not be parsed are findings of no call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sipflow.capture.types import SipPayload, Transport
from sipflow.checks.config import CheckConfig, load_config
from sipflow.checks.defects import COVERED, FAMILY
from sipflow.checks.finding import Severity
from sipflow.checks.registry import Scope
from sipflow.checks.rules import RULES, rule, run_rules
from sipflow.errors import UsageError
from sipflow.sip.defects import KINDS
from sipflow.sip.parse import parse_message
from tests.sipmsg import ALICE, BOB, Feeder, request, response
from tests.test_checks_rules import T0, analysis_of, drop_header, frames, only
from tests.test_sip_rfc4475 import CODES, RFC4475

DATE = "sip.malformed.date"


def packet(frame: int, data: bytes, *, truncated: bool) -> SipPayload:
    return SipPayload(
        frame=frame,
        frames=(frame,),
        timestamp=T0,
        src=ALICE,
        dst=BOB,
        transport=Transport.UDP,
        payload=data,
        file="test.pcap",
        truncated=truncated,
    )


def bad_date(feed: Feeder, t: float = 0.0, value: str = "Fri, 01 Jan 2010 16:00:00 EST") -> bytes:
    ping = request("OPTIONS", extra=f"Date: {value}\r\n")
    feed(t, ALICE, BOB, ping)
    feed(t + 0.1, BOB, ALICE, response(ping, 200, "OK", to_tag="b"))
    return ping


def test_each_code_is_a_rule_of_the_family() -> None:
    family = [r for r in RULES if r.family == FAMILY]
    assert [r.id for r in family] == [c for c in KINDS if c not in COVERED]
    assert family[-1].id == "sip.malformed.message" and family[-1].scope is Scope.ANALYSIS
    for r in family:
        assert r.severity is Severity.WARNING and not r.thresholds, r.id
        assert r.explanation.startswith(KINDS[r.id].summary[:-1]), r.id
    assert set(COVERED.values()) <= {r.id for r in RULES if r.family is None}


def test_a_bad_date_is_a_finding_with_its_frame_and_text() -> None:
    feed = Feeder()
    bad_date(feed)
    finding = only(run_rules(analysis_of(feed)), DATE)
    assert finding.severity is Severity.WARNING and frames(finding) == [1]
    assert finding.call_index == 1 and finding.cause is None
    assert finding.message == (
        "options 1 (Call-ID call-1@10.0.0.1): OPTIONS (CSeq 1) at frame 1 from 10.0.0.1:5060: "
        "Date is not an RFC 1123 date in GMT. (in 'Date: Fri, 01 Jan 2010 16:00:00 EST')"
    )
    assert finding.explanation == rule(DATE).explanation


def test_packet_text_is_quoted_escaped() -> None:
    feed = Feeder()
    bad_date(feed, value="\x1b[31mred\x1b[0m \u202e")
    finding = only(run_rules(analysis_of(feed)), DATE)
    assert "\x1b" not in finding.message and "\u202e" not in finding.message
    assert r"'Date: \x1b[31mred\x1b[0m \u202e'" in finding.message


def test_one_finding_per_defect_and_per_start_line() -> None:
    feed = Feeder()
    ping = request("OPTIONS").replace(
        b"OPTIONS sip:bob@example.com SIP/2.0", b"OPTIONS  sip:bob@example.com SIP/2.0"
    )
    ping = ping.replace(b"Contact: <sip:alice@10.0.0.1>", b"Contact: <sip:alice@10.0.0.1>;;a;;b")
    feed(0.0, ALICE, BOB, ping)
    found = run_rules(analysis_of(feed, end=0.1))
    assert [f.rule for f in found] == [
        "sip.malformed.request-line.sp",
        "sip.malformed.param.empty",
        "sip.malformed.param.empty",
    ]
    assert "(in 'OPTIONS  sip:bob@example.com SIP/2.0')" in found[0].message
    assert "(in 'Contact: <sip:alice@10.0.0.1>;;a;;b')" in found[1].message


def test_retransmissions_and_cut_messages_are_left_out() -> None:
    feed = Feeder()
    ping = bad_date(feed)
    feed(0.5, ALICE, BOB, ping)  # the same request again
    assert [f.rule for f in run_rules(analysis_of(feed))] == [DATE]
    feed = Feeder()
    data = request("OPTIONS", extra="Date: yesterday\r\n")
    feed.tracker.feed(packet(1, data, truncated=True), parse_message(data))
    assert DATE not in {f.rule for f in run_rules(analysis_of(feed))}


def test_kinds_of_other_rules_are_not_reported_twice() -> None:
    feed = Feeder()
    ping = drop_header(request("OPTIONS"), "Max-Forwards")
    feed(0.0, ALICE, BOB, ping)
    feed(0.1, BOB, ALICE, response(ping, 200, "OK", to_tag="b"))
    assert [f.rule for f in run_rules(analysis_of(feed))] == ["missing-header"]
    feed = Feeder()
    ping = request("OPTIONS").replace(b"Content-Length: 0", b"Content-Length: 40")
    feed(0.0, ALICE, BOB, ping)
    feed(0.1, BOB, ALICE, response(ping, 200, "OK", to_tag="b"))
    assert [f.rule for f in run_rules(analysis_of(feed))] == ["content-length-mismatch"]


def test_disable_and_grade_a_code_or_the_family() -> None:
    feed = Feeder()
    bad_date(feed)
    analysis = analysis_of(feed)
    assert run_rules(analysis, CheckConfig(disabled=frozenset({DATE}))) == []
    assert run_rules(analysis, CheckConfig(disabled=frozenset({FAMILY}))) == []
    assert CheckConfig(disabled=frozenset({FAMILY})).disabled == {r.id for r in RULES if r.family == FAMILY}
    (finding,) = run_rules(analysis, CheckConfig(severity={FAMILY: Severity.ERROR}))
    assert finding.severity is Severity.ERROR
    config = CheckConfig(severity={FAMILY: Severity.ERROR, DATE: Severity.INFO})
    assert (
        config.severity[DATE] is Severity.INFO and config.severity["sip.malformed.version"] is Severity.ERROR
    )
    (finding,) = run_rules(analysis, config)
    assert finding.severity is Severity.INFO


@pytest.mark.parametrize(
    "table",
    ['[check.rules."sip.malformed.date"]', "[check.rules.sip.malformed.date]"],
    ids=["quoted", "dotted"],
)
def test_codes_in_sipflow_toml(tmp_path: Path, table: str) -> None:
    (tmp_path / "sipflow.toml").write_text(
        f'[check]\ndisable = ["sip.malformed.version"]\n\n{table}\nseverity = "error"\n\n'
        '[check.rules.sip.malformed]\nseverity = "info"\n'
    )
    config = load_config(search_from=tmp_path)
    assert config.disabled == {"sip.malformed.version"}
    assert config.severity[DATE] is Severity.ERROR
    assert config.severity["sip.malformed.cseq"] is Severity.INFO


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[check]\ndisable = ["sip.malformed.nope"]\n', "unknown rule 'sip.malformed.nope'"),
        ('[check.rules."sip.malformed.date"]\nmax = 1\n', "rule sip.malformed.date has no threshold 'max'"),
        (
            "[check.rules.sip.malformed]\nmax = 1\n",
            "sip.malformed is a family of rules, which has no thresholds",
        ),
    ],
)
def test_bad_codes_in_sipflow_toml(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "sipflow.toml").write_text(text)
    with pytest.raises(UsageError) as info:
        load_config(search_from=tmp_path)
    assert says in str(info.value)
    assert "sip.malformed (its sip.malformed.* rules)" in str(info.value) or "threshold" in says


def test_a_payload_that_cannot_be_parsed_is_a_finding_of_no_call() -> None:
    feed = Feeder()
    bad_date(feed, t=0.2)
    for frame, truncated in ((7, False), (9, True)):
        cut = packet(frame, b"INVITE sip:x SIP/2.0\r\nVia", truncated=truncated)
        feed.tracker.feed_malformed(cut, "no end of the header section")
    found = run_rules(analysis_of(feed))
    assert [(f.rule, f.call_index, frames(f)) for f in found] == [
        (DATE, 1, [1]),
        ("sip.malformed.message", None, [7]),
        ("sip.malformed.message", None, [9]),
    ]
    assert (
        found[1].message == "frame 7 from 10.0.0.1:5060 to 10.0.0.3:5060 (UDP): no end of the header section"
    )
    assert found[2].message.endswith("(the capture cut it short)") and found[1].call_id is None
    assert run_rules(analysis_of(feed), CheckConfig(disabled=frozenset({"sip.malformed.message"})))[1:] == []


@pytest.mark.skipif(not RFC4475.is_dir(), reason="shared/rfc4475 is not there")
@pytest.mark.parametrize("name", sorted(CODES))
def test_rfc4475_messages_give_a_finding_per_defect(name: str) -> None:
    feed = Feeder()
    message = feed(0.0, ALICE, BOB, (RFC4475 / f"{name}.dat").read_bytes())
    found = [f for f in run_rules(analysis_of(feed)) if f.rule.startswith(FAMILY)]
    expected = [x.code for x in message.sip.defects if x.code not in COVERED]
    assert sorted(f.rule for f in found) == sorted(expected)
    assert {f.rule for f in found} == CODES[name] - set(COVERED)
    assert all(frames(f) == [1] for f in found)


def test_readme_lists_every_code_and_its_config_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for code in KINDS:
        assert f"| `{code}` |" in readme, code
    example = readme.split("# sipflow.toml (or [tool.sipflow] in pyproject.toml)\n", 1)[1].split("```", 1)[0]
    (tmp_path / "sipflow.toml").write_text(example)
    config = load_config(search_from=tmp_path)
    assert config.severity[DATE] is Severity.INFO and config.severity["sip.malformed.cseq"] is Severity.ERROR
    assert "sip.malformed.ipv6.brackets" in config.disabled
