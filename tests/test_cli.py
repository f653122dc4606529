"""The command line: exit codes, one-line errors, output formats, hostile packet text."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipflow.cli import main
from tests.conftest import SAMPLES

PROXY_CALL = str(SAMPLES / "proxy-call.pcap")


def run(*args: str, color: bool = False) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), color=color, env={"COLUMNS": "250"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# --- bad input: exit 2 and one line naming the file --------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pcap"
    code, out, err = run("calls", str(missing))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(missing) in err and err.startswith("sipflow: error: ")


def test_directory(tmp_path: Path) -> None:
    code, _, err = run("calls", str(tmp_path))
    assert code == 2 and str(tmp_path) in err and err.count("\n") == 1


def test_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("INVITE sip:bob@example.com SIP/2.0\r\n\r\n")
    code, _, err = run("ladder", str(path))
    assert code == 2 and str(path) in err and "byte offset 0" in err and err.count("\n") == 1


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    code, _, err = run("calls", str(path))
    assert code == 2 and str(path) in err and err.count("\n") == 1


def test_truncated_capture_warns_and_keeps_what_it_read(tmp_path: Path) -> None:
    data = (SAMPLES / "basic-call.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:-20])  # cut inside the last record (the 200 OK to BYE)
    code, out, err = run("calls", str(path), "--format", "json")
    assert code == 3  # partial (README, Exit codes)
    assert "warning" in err and str(path) in err and "byte offset" in err
    doc = json.loads(out)
    assert doc["summary"]["partial"] is True
    assert doc["summary"]["sip_messages"] == 6
    assert doc["calls"][0]["state"] == "completed"  # the BYE itself was read


def test_gzip_capture_reads_like_the_original(tmp_path: Path) -> None:
    path = tmp_path / "proxy-call.pcap.gz"
    path.write_bytes(gzip.compress((SAMPLES / "proxy-call.pcap").read_bytes()))
    _, plain, _ = run("calls", PROXY_CALL, "--format", "csv")
    code, zipped, _ = run("calls", str(path), "--format", "csv")
    assert code == 0 and zipped == plain


def test_bad_alias_is_a_usage_error() -> None:
    code, _, err = run("ladder", PROXY_CALL, "--alias", "no-equals-sign")
    assert code == 2 and "--alias" in err


def test_no_matching_call_exits_1() -> None:
    code, _, err = run("ladder", PROXY_CALL, "--call-id", "does-not-exist")
    assert code == 1 and "no call matches" in err


# --- formats and filters -----------------------------------------------------------------------------


def test_table_lists_the_call() -> None:
    code, out, _ = run("calls", PROXY_CALL)
    assert code == 0
    assert re.search(
        r"^\s*1\s+\d\d:\d\d:\d\d\.\d{3}\s+alice@127\.0\.0\.10\s+bob@127\.0\.0\.20\s+"
        r"127\.0\.0\.10:5060\s+127\.0\.0\.20:5060\s+UDP\s+completed\s+200",
        out,
        re.M,
    )
    assert "sipflow-proxy-call-1@127.0.0.10" in out
    assert "14 SIP messages" in out


def test_json_schema_1() -> None:
    _, out, _ = run("calls", PROXY_CALL, "--format", "json")
    doc = json.loads(out)
    assert doc["schema"] == 1 and doc["files"] == [PROXY_CALL]
    assert set(doc["summary"]) >= {"packets", "sip_messages", "malformed", "non_sip_packets"}
    (call,) = doc["calls"]
    assert set(call) >= {
        "id",
        "kind",
        "state",
        "final_status",
        "start",
        "pdd_ms",
        "setup_ms",
        "duration_s",
        "legs",
    }
    assert call["start"].endswith("Z")
    (leg,) = call["legs"]
    assert leg["hops"] == [["127.0.0.10:5060", "127.0.0.20:5060"], ["127.0.0.20:5060", "127.0.0.30:5060"]]
    assert leg["dialogs"][0]["state"] == "terminated"
    assert {tx["method"] for tx in leg["transactions"]} == {"INVITE", "ACK", "BYE"}
    assert sum(tx["messages"] for tx in leg["transactions"]) == leg["messages"] == 14


def test_csv_has_a_header_and_one_row_per_call() -> None:
    _, out, _ = run("calls", str(SAMPLES / "three-calls.pcap"), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 3 and {r["state"] for r in rows} == {"completed"}


@pytest.mark.parametrize(
    ("args", "count"),
    [
        (["--state", "rejected"], 1),
        (["--state", "completed", "--state", "cancelled"], 2),
        (["--from", "ALICE"], 3),
        (["--to", "nobody"], 0),
        (["--call-id", "sipflow-cancel-1@127.0.0.10"], 1),
    ],
)
def test_filters(args: list[str], count: int) -> None:
    files = [str(SAMPLES / n) for n in ("busy-486.pcap", "cancel.pcap", "basic-call.pcap")]
    _, out, _ = run("calls", *files, "--format", "json", *args)
    assert len(json.loads(out)["calls"]) == count


def test_all_lists_every_call_id_once() -> None:
    _, out, _ = run("calls", str(SAMPLES / "register.pcap"), "--format", "json")
    assert json.loads(out)["calls"] == []  # no INVITE in it
    _, out, _ = run("calls", str(SAMPLES / "register.pcap"), "--format", "json", "--all")
    kinds = [c["kind"] for c in json.loads(out)["calls"]]
    assert kinds == ["registration", "options"]


def test_plain_ladder_fits_80_columns_for_three_endpoints() -> None:
    _, out, _ = run("ladder", PROXY_CALL, "--plain")
    body = out.split("time (UTC)", 1)[1]
    assert max(len(line) for line in body.splitlines()) <= 80
    assert "\x1b" not in out
    assert "127.0.0.10:5060" in out and "127.0.0.30:5060" in out


def test_ladder_selects_by_index_and_aliases_columns() -> None:
    _, out, _ = run(
        "ladder", str(SAMPLES / "three-calls.pcap"), "--call", "2", "--plain", "--alias", "127.0.0.20=proxy"
    )
    assert out.startswith("Call 2:") and "Call 1:" not in out and "Call 3:" not in out
    assert "proxy" in out.splitlines()[4]


def test_ladder_by_host_merges_ports() -> None:
    _, out, _ = run("ladder", str(SAMPLES / "ipv6-call.pcap"), "--plain", "--by-host")
    header = next(line for line in out.splitlines() if line.startswith("time (UTC)"))
    assert header.split()[-1] == "::1"


def test_full_shows_message_text() -> None:
    _, out, _ = run("ladder", PROXY_CALL, "--plain", "--full")
    assert "Call-ID: sipflow-proxy-call-1@127.0.0.10" in out
    assert "m=audio 6000 RTP/AVP" in out


def test_colour_ladder_uses_styles_on_a_terminal() -> None:
    code, out, _ = run("ladder", PROXY_CALL, "--no-pager", "--width", "100", "--color", "always")
    assert code == 0 and "\x1b[" in out and "INVITE" in out


def test_python_dash_m(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "sipflow", "calls", PROXY_CALL, "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout)["calls"][0]["state"] == "completed"


# --- hostile packet text -----------------------------------------------------------------------------

HOSTILE_NAME = "\x1b[2J\x1b]0;pwned\x07[bold red]boom[/] <script>alert(1)</script>"


def _hostile_capture(tmp_path: Path) -> Path:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    name = HOSTILE_NAME.replace("\\", "\\\\").replace('"', '\\"')
    invite = (
        "INVITE sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-evil\r\n"
        f'From: "{name}" <sip:=cmd|calc@example.com>;tag=x\r\n'
        "To: <sip:bob@example.com>\r\nCall-ID: =1+2[bold]x[/]\x1b[6n@example.com\r\n"
        "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:a@10.0.0.1>\r\nContent-Length: 0\r\n\r\n"
    )
    reply = (
        "SIP/2.0 486 Busy \x1b[5m[blink]Here\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-evil\r\n"
        f'From: "{name}" <sip:=cmd|calc@example.com>;tag=x\r\n'
        "To: <sip:bob@example.com>;tag=y\r\nCall-ID: =1+2[bold]x[/]\x1b[6n@example.com\r\nCSeq: 1 INVITE\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    packets = [
        Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5060, dport=5060) / invite.encode(),
        Ether() / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=5060, dport=5060) / reply.encode(),
    ]
    packets[0].time, packets[1].time = 1_700_000_000.0, 1_700_000_000.5
    path = tmp_path / "hostile.pcap"
    wrpcap(str(path), packets)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["calls", "--color", "always"],
        ["calls", "--format", "csv"],
        ["calls", "--format", "json"],
        ["ladder", "--plain", "--full"],
        ["ladder", "--no-pager", "--full", "--color", "always"],
    ],
)
def test_hostile_text_never_reaches_the_terminal(tmp_path: Path, args: list[str]) -> None:
    path = _hostile_capture(tmp_path)
    code, out, err = run(args[0], str(path), *args[1:])
    assert code == 0, err
    # The packet's own escape sequences never come out raw (rich's own styling may).
    for seq in ("\x1b[2J", "\x1b]0;", "\x07", "\x1b[6n", "\x1b[5m"):
        assert seq not in out
    if args[-1] != "json":
        assert "[bold]x[/]" in out  # shown literally, never interpreted as rich markup
    if args[0] == "ladder":
        assert "[bold red]boom[/]" in out
    if args[1:] == ["--format", "csv"]:
        row = next(csv.DictReader(io.StringIO(out)))
        assert row["call_ids"].startswith("'=1+2")  # a spreadsheet will not run it
