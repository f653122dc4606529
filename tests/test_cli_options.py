"""The command line's shared options and its one error translation: every command takes
--skew and the other input options into one frozen ``InputOptions`` (the arguments of
``analyze``); --explain does something wherever it is offered; each error class gives its one
line and exit code."""

from __future__ import annotations

import dataclasses
import inspect
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sipflow import AnalysisOptions
from sipflow.cli import EXIT_CODES, InputOptions, main
from sipflow.correlate import CorrelationOptions, HeaderRule
from sipflow.errors import CaptureError, ParseError, SipflowError, UsageError
from sipflow.pipeline import analyze
from sipflow.render.options import LayoutOptions, OutputOptions, Selection
from tests.conftest import SAMPLES

PROXY_CALL = str(SAMPLES / "proxy-call.pcap")
TWO_PROBES = str(SAMPLES / "two-probes.pcapng")
WRONG_SKEW = "two-probes.pcapng#1=0.5"
"""Interface 1 of two-probes.pcapng runs 0.35 s ahead: with 0.5 its copies are not merged."""
XCID = str(SAMPLES / "topoh-xcid.pcap")
FAILS_CALL_2 = """\
calls:
  - name: call 2 completes
    match: {header: {Call-ID: "sipflow-topoh-xcid-2@127.0.0.10"}}
    outcome: completed
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "250"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _export(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "calls.json"
    code, _, err = run("export", TWO_PROBES, "--call", "1", "-o", str(out), *args)
    return code, json.loads(out.read_text()) if out.exists() else {}, err


# --- --skew on every command ------------------------------------------------------------------------


def test_calls_skew() -> None:
    _, out, _ = run("calls", TWO_PROBES)
    assert "8 copies merged" in out
    code, out, _ = run("calls", TWO_PROBES, "--skew", WRONG_SKEW)
    assert code == 0 and "copies merged" not in out and f"clock skew {TWO_PROBES}#1 +0.5 s" in out


def test_ladder_skew() -> None:
    _, out, _ = run("ladder", TWO_PROBES, "--plain")
    code, skewed, _ = run("ladder", TWO_PROBES, "--plain", "--skew", WRONG_SKEW)
    assert code == 0 and skewed.count("retrans") > out.count("retrans")


def test_export_skew(tmp_path: Path) -> None:
    code, doc, err = _export(tmp_path)
    assert code == 0, err
    assert doc["summary"]["duplicates"] == 8
    code, doc, err = _export(tmp_path, "--skew", WRONG_SKEW)
    assert code == 0, err
    assert doc["summary"]["skew"] == {f"{TWO_PROBES}#1": 0.5}
    assert doc["summary"]["duplicates"] == 0


def test_stats_skew() -> None:
    _, out, _ = run("stats", TWO_PROBES, "--format", "json")
    assert json.loads(out)["messages"] == 15
    code, out, _ = run("stats", TWO_PROBES, "--format", "json", "--skew", WRONG_SKEW)
    assert code == 0 and json.loads(out)["messages"] == 23


def test_check_skew() -> None:
    code, out, _ = run("check", TWO_PROBES, "--format", "json")
    assert code == 0 and json.loads(out)["findings"] == []
    code, out, _ = run("check", TWO_PROBES, "--format", "json", "--skew", WRONG_SKEW)
    assert code == 0  # a warning
    assert [f["rule"] for f in json.loads(out)["findings"]] == ["retransmissions"]


def _args(command: str, tmp_path: Path) -> list[str]:
    return ["-o", str(tmp_path / "x.json")] if command == "export" else []


@pytest.mark.parametrize("command", ["calls", "ladder", "export", "stats", "check"])
@pytest.mark.parametrize("value", ["b.pcap", "=0.3", "b.pcap=soon", "b.pcap=inf"])
def test_bad_skew_is_one_line_on_every_command(command: str, value: str, tmp_path: Path) -> None:
    code, out, err = run(command, PROXY_CALL, "--skew", value, *_args(command, tmp_path))
    assert (code, out) == (2, "")
    assert err == f"sipflow: error: --skew {value!r}: expected FILE=SECONDS, e.g. b.pcap=+0.35\n"


@pytest.mark.parametrize("command", ["calls", "ladder", "export", "stats", "check"])
def test_skew_for_an_unknown_file_on_every_command(command: str, tmp_path: Path) -> None:
    code, out, err = run(command, PROXY_CALL, "--skew", "other.pcap=1", *_args(command, tmp_path))
    assert (code, out) == (2, "")
    assert err == "sipflow: error: skew given for other.pcap, which is not one of the files\n"


# --- --explain where it is offered --------------------------------------------------------------------


def test_calls_explain() -> None:
    _, out, _ = run("calls", XCID)
    code, explained, _ = run("calls", XCID, "--explain")
    assert code == 0 and "Call 2:" not in out
    assert "Call 2:" in explained and "A-B: X-CID, confidence 0.99" in explained


def test_ladder_explain() -> None:
    _, out, _ = run("ladder", XCID, "--call", "2", "--plain")
    code, explained, _ = run("ladder", XCID, "--call", "2", "--plain", "--explain")
    assert code == 0 and "confidence" not in out
    assert "A-B: X-CID, confidence 0.99" in explained and "- X-CID of" in explained


def test_check_explain_shows_the_evidence_in_the_failed_calls_ladder(tmp_path: Path) -> None:
    expect = tmp_path / "calls.yaml"
    expect.write_text(FAILS_CALL_2)
    code, out, _ = run("check", XCID, "--expect", str(expect))
    assert code == 1 and "FAIL expectation 'call 2 completes'" in out and "confidence" not in out
    code, explained, _ = run("check", XCID, "--expect", str(expect), "--explain")
    assert code == 1
    assert "A-B: X-CID, confidence 0.99" in explained and "- X-CID of" in explained
    report = tmp_path / "report.txt"
    code, _, _ = run("check", XCID, "--expect", str(expect), "--explain", "-o", str(report))
    assert code == 1 and report.read_text() == explained


@pytest.mark.parametrize("command", ["export", "stats"])
def test_explain_is_not_offered_where_it_means_nothing(command: str, tmp_path: Path) -> None:
    """export's JSON always holds the evidence, its diagrams name the links; stats counts."""
    assert "--explain" not in run(command, "--help")[1]
    code, _, err = run(command, PROXY_CALL, "--explain", *_args(command, tmp_path))
    assert code == 2 and "No such option '--explain'" in err


# --- one error translation ----------------------------------------------------------------------------


class OddError(UsageError):
    """A subclass the table does not name: it takes its nearest ancestor's code."""


ERRORS = [
    CaptureError("not a pcap or pcapng file", file="x.pcap", offset=0),
    ParseError("bad start line"),
    UsageError("skew for x: nan is not a number of seconds"),
    SipflowError("something went wrong\x1b[31m"),
    OddError("odd"),
]


@pytest.mark.parametrize("command", ["calls", "ladder", "export", "stats", "check"])
@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_each_error_class_gives_one_line_and_its_exit_code(
    command: str, error: SipflowError, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise error

    monkeypatch.setattr("sipflow.cli.analyze", fail)
    code, out, err = run(command, PROXY_CALL, *_args(command, tmp_path))
    expected = {
        CaptureError: "sipflow: error: x.pcap, byte offset 0: not a pcap or pcapng file\n",
        ParseError: "sipflow: error: bad start line\n",
        UsageError: "sipflow: error: skew for x: nan is not a number of seconds\n",
        SipflowError: "sipflow: error: something went wrong\ufffd[31m\n",  # cleaned
        OddError: "sipflow: error: odd\n",
    }[type(error)]
    assert (code, out, err) == (2, "", expected)


def test_every_error_class_has_an_exit_code() -> None:
    assert set(EXIT_CODES) == {CaptureError, ParseError, UsageError, SipflowError}
    assert set(EXIT_CODES.values()) == {2}  # README, Exit codes


def test_a_report_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "report.xml"
    code, _, err = run("check", PROXY_CALL, "--format", "junit", "-o", str(out))
    assert code == 2 and err == f"sipflow: error: {out}: No such file or directory\n"


# --- the options objects ------------------------------------------------------------------------------


def test_input_options_are_the_arguments_of_analyze() -> None:
    kwargs = InputOptions(files=("a.pcap",)).analyze_kwargs()
    parameters = inspect.signature(analyze).parameters
    assert set(kwargs) == {"paths", "skew", "max_call_ids", "jobs", "correlation"}
    assert all(parameters[name].kind is not inspect.Parameter.VAR_KEYWORD for name in kwargs)
    analysis = analyze(**InputOptions(files=(PROXY_CALL,), jobs=1).analyze_kwargs())
    assert analysis.summary.calls == 1


def test_a_command_builds_input_options_from_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def record(paths: Any, options: Any, **kwargs: Any) -> Any:
        seen.append({"paths": paths, "options": options, **kwargs})
        raise UsageError("stop")

    monkeypatch.setattr("sipflow.cli.analyze", record)
    args = ["--skew", "b.pcap=+0.35", "--max-call-ids", "5", "-j", "2", "--correlate-window", "3"]
    run("stats", PROXY_CALL, "b.pcap", *args, "--no-correlate", "--correlate-header", "X-Leg")
    (call,) = seen
    assert set(call) == {"paths", "options", "progress"}
    headers = (*CorrelationOptions().headers, HeaderRule("X-Leg"))
    correlation = CorrelationOptions(enabled=False, headers=headers, window=3.0)
    assert call["paths"] == (PROXY_CALL, "b.pcap")
    assert call["options"] == AnalysisOptions(
        skew={"b.pcap": 0.35}, max_call_ids=5, jobs=2, correlation=correlation
    )


@pytest.mark.parametrize(
    "options",
    [
        InputOptions(files=("a.pcap",), skew=(("a.pcap", 0.1),)),
        Selection(all_kinds=True, state=("completed",)),
        LayoutOptions(aliases=(("10.0.0.1", "proxy"),)),
        OutputOptions(explain=True),
    ],
    ids=lambda o: type(o).__name__,
)
def test_options_are_frozen_and_can_travel(options: object) -> None:
    field = dataclasses.fields(options)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(options, field, None)
    assert pickle.loads(pickle.dumps(options)) == options
    assert not hasattr(options, "__dict__")  # slotted


def test_input_options_give_the_librarys_options() -> None:
    inputs = InputOptions(files=(PROXY_CALL,), skew=((PROXY_CALL, 0.5),), max_call_ids=7, jobs=2)
    options = inputs.analysis_options()
    assert (options.skew, options.max_call_ids, options.jobs) == ({PROXY_CALL: 0.5}, 7, 2)
    assert options.correlation == inputs.correlation
    kwargs = inputs.analyze_kwargs()
    assert {k: kwargs[k] for k in ("skew", "max_call_ids", "jobs", "correlation")} == {
        "skew": options.skew, "max_call_ids": options.max_call_ids, "jobs": options.jobs,
        "correlation": options.correlation,
    }  # fmt: skip
