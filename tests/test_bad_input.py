"""Broken and hostile captures (tests/captures/, made by make_broken.py): the exact lines a user
sees on stderr, the exit code, and that every output format neutralises hostile header text."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipflow.cli import main
from tests.conftest import SAMPLES

CAPTURES = Path(__file__).resolve().parent / "captures"
BROKEN = CAPTURES / "broken"
HOSTILE = CAPTURES / "hostile" / "hostile-headers.pcap"
PARTIAL = "sipflow: warning: partial result: a file could not be read to its end"


def run(*args: str, color: bool = False) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), color=color, env={"COLUMNS": "250"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _json(name: str) -> tuple[int, dict[str, object], list[str]]:
    path = str(BROKEN / name)
    code, out, err = run("calls", path, "--format", "json", "--all")
    return code, json.loads(out) if out else {}, [line.replace(path, "FILE") for line in err.splitlines()]


# --- not a capture: exit 2, one line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.pcap", "sipflow: error: FILE, byte offset 0: empty file"),
        ("text-file.pcap",
         "sipflow: error: FILE, byte offset 0: not a pcap or pcapng file: magic number 54686973"),
        ("wrong-magic.pcap",
         "sipflow: error: FILE, byte offset 0: not a pcap or pcapng file: magic number deadbeef"),
    ],
)  # fmt: skip
def test_not_a_capture(name: str, message: str) -> None:
    code, doc, err = _json(name)
    assert (code, doc, err) == (2, {}, [message])


def test_directory() -> None:
    code, out, err = run("calls", str(BROKEN))
    assert (code, out) == (2, "")
    assert err == f"sipflow: error: {BROKEN}: is a directory, not a capture file\n"


# --- damaged inside: warnings, everything before the damage, exit 3 ---------------------------------


@pytest.mark.parametrize(
    ("name", "warning", "messages"),
    [
        ("truncated-last-record.pcap",
         "FILE, frame 7, byte offset 2758: the file ends inside record 7 (303 of 323 octets)", 6),
        ("corrupt-record-length.pcap",
         "FILE, frame 4, byte offset 1358: corrupt record header: captured length 2147483632 exceeds 262144; "
         "reading stopped", 3),
        ("bad-block-length.pcapng",
         "FILE, frame 3, byte offset 1052: corrupt block length 13; reading stopped", 2),
        # The offset of a compressed file is in its decompressed data.
        ("truncated.pcap.gz",
         "FILE, frame 2, byte offset 689: the file ends inside record 2 (30 of 286 octets) "
         "(gzip error: Compressed file ended before the end-of-stream marker was reached)", 1),
    ],
)  # fmt: skip
def test_damaged_file_is_partial(name: str, warning: str, messages: int) -> None:
    code, doc, err = _json(name)
    assert code == 3
    assert err == [f"sipflow: warning: {warning}", PARTIAL]
    summary = doc["summary"]
    assert isinstance(summary, dict)
    assert summary["partial"] is True and summary["sip_messages"] == messages


@pytest.mark.parametrize("command", [["calls"], ["ladder", "--plain"], ["stats"]])
def test_partial_exit_code_for_every_reading_command(command: list[str]) -> None:
    code, out, err = run(command[0], str(BROKEN / "truncated-last-record.pcap"), *command[1:])
    assert code == 3 and out and err.endswith(PARTIAL + "\n")


def test_partial_export(tmp_path: Path) -> None:
    out = tmp_path / "call.json"
    code, _, err = run("export", str(BROKEN / "truncated-last-record.pcap"), "--call", "1", "-o", str(out))
    assert code == 3 and err.endswith(PARTIAL + "\n") and json.loads(out.read_text())["calls"]


def test_partial_check_warns_and_fails_only_with_strict() -> None:
    path = str(BROKEN / "truncated-last-record.pcap")
    code, _, err = run("check", path)
    assert code == 0 and err.endswith(PARTIAL + "\n")
    code, _, _ = run("check", path, "--strict")
    assert code == 1


def test_partial_and_no_match_exits_1() -> None:
    code, _, err = run("ladder", str(BROKEN / "truncated-last-record.pcap"), "--call", "9")
    assert code == 1 and "no call matches" in err


# --- readable as they are -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["good.pcap.gz", "good.pcapng.gz"])
def test_gzip_reads_like_the_original(name: str) -> None:
    _, plain, _ = run("calls", str(CAPTURES.parent.parent / "samples" / "basic-call.pcap"), "--format", "csv")
    code, zipped, err = run("calls", str(BROKEN / name), "--format", "csv")
    assert (code, err, zipped) == (0, "", plain)


def test_snaplen_cut_messages_show_as_truncated() -> None:
    """Cut by the snapshot length, each message is read up to its last whole header line and
    shown as the truncated message it is, not as malformed."""
    path = str(BROKEN / "snaplen-200.pcap")
    code, out, err = run("calls", path, "--format", "json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["summary"]["malformed"] == 0 and doc["summary"]["sip_messages"] == 7
    code, out, err = run("ladder", path, "--plain")
    assert code == 0
    rows = [line for line in out.splitlines() if "(truncated)" in line]
    labels = [row.split("| ", 1)[1].split("|")[0].strip() for row in rows]
    assert labels == [
        "INVITE (truncated)", "100 Trying (truncated)", "180 Ringing (truncated)", "200 OK (truncated)",
        "ACK (truncated)", "BYE (truncated)", "200 OK (truncated)",
    ]  # fmt: skip


# --- hostile header text ------------------------------------------------------------------------------

RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters other than tab and newline (ESC included)."""


def _no_raw_controls(text: str, *, colour: bool = False) -> None:
    if colour:  # rich's own SGR sequences are fine; nothing else may be there
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert not RAW_CONTROL.search(text.replace("\r\n", "\n")), repr(RAW_CONTROL.search(text))


@pytest.mark.parametrize(
    "args",
    [
        ["calls", "--all"],
        ["calls", "--all", "--color", "always"],
        ["calls", "--all", "--format", "json"],
        ["calls", "--all", "--format", "csv"],
        ["ladder", "--plain", "--full"],
        ["ladder", "--no-pager", "--full", "--color", "always"],
        ["stats"],
        ["check"],
    ],
)
def test_hostile_terminal_and_data_formats(args: list[str]) -> None:
    code, out, err = run(args[0], str(HOSTILE), *args[1:])
    assert code in (0, 1), err
    _no_raw_controls(out + err, colour="always" in args)
    if "csv" in args:
        row = next(csv.DictReader(io.StringIO(out)))
        for key, value in row.items():
            assert not value.startswith(("=", "+", "-", "@")), (key, value)
        assert row["call_ids"].startswith("'=HYPERLINK")
    if "--plain" in args:
        assert "[bold red]boom[/]" in out  # shown literally, never interpreted as rich markup


@pytest.mark.parametrize("fmt", ["svg", "dot", "mmd", "puml", "html", "json"])
def test_hostile_exports(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"call.{fmt}"
    code, _, err = run("export", str(HOSTILE), "--all", "--call", "1", "-o", str(out))
    if code == 2 and "graphviz" in err.lower():
        pytest.skip(err)
    assert code == 0, err
    text = out.read_text()
    _no_raw_controls(text)
    # Markup matters where a browser reads it; dot, mmd, puml and json carry the text as quoted data.
    if fmt == "html":
        # The page's own scripts only: the packet's text is escaped inside them (\u003cscript\u003e).
        for raw in ("<script>alert", "<script>y", "<script>z", "</svg><script>"):
            assert raw not in text
    if fmt == "svg":
        assert "<script" not in text
    if fmt in ("svg", "html"):
        assert "</svg><script>" not in text


# --- the Call-ID limit: what is left out is counted, named, and the result is partial -------------


THREE_CALLS = str(Path(__file__).resolve().parents[1] / "samples" / "three-calls.pcap")
LIMITED = [
    f"sipflow: warning: {THREE_CALLS}, frame 17: the limit of 2 Call-IDs was reached: 14 SIP messages from "
    "here on with other Call-IDs were not analysed (raise the limit: --max-call-ids, 0 for none)",
    "sipflow: warning: partial result: 14 SIP messages beyond the Call-ID limit left out",
]


def test_call_id_limit_in_the_cli() -> None:
    code, out, err = run("calls", THREE_CALLS, "--max-call-ids", "2", "--format", "json")
    assert (code, err.splitlines()) == (3, LIMITED)
    doc = json.loads(out)
    assert [c["id"] for c in doc["calls"]] == [f"sipflow-three-calls-{i}@127.0.0.10" for i in (1, 2)]
    assert doc["summary"]["untracked"] == 14 and doc["summary"]["partial"] is True
    code, out, err = run("calls", THREE_CALLS, "--max-call-ids", "2")
    assert code == 3 and out.rstrip().endswith("PARTIAL: 14 SIP messages beyond the Call-ID limit left out")
    # 0 lifts the limit; the default (1,000,000) is far above three.
    for limit in (["--max-call-ids", "0"], []):
        code, out, err = run("calls", THREE_CALLS, *limit, "--format", "json")
        assert (code, err) == (0, "") and len(json.loads(out)["calls"]) == 3
        assert "untracked" not in json.loads(out)["summary"]


@pytest.mark.parametrize(
    "command", [["ladder", "--plain"], ["stats"], ["check"], ["export", "--call", "1", "-o", "OUT"]]
)
def test_call_id_limit_in_every_reading_command(command: list[str], tmp_path: Path) -> None:
    args = [str(tmp_path / "out.json") if a == "OUT" else a for a in command[1:]]
    code, _, err = run(command[0], THREE_CALLS, "--max-call-ids", "2", *args)
    assert err.splitlines() == LIMITED
    assert code == (0 if command[0] == "check" else 3)  # check only warns on a partial read
    code, _, err = run(command[0], THREE_CALLS, "--max-call-ids", "-1", *args)
    assert code == 2 and "-1 is not in the range x>=0" in err


def _with_times(tmp_path: Path, shifts: dict[int, float]) -> Path:
    """samples/proxy-call.pcap with the seconds of some records (by frame number) moved."""
    import struct

    data = bytearray((SAMPLES / "proxy-call.pcap").read_bytes())
    offset, frame = 24, 0
    while offset + 16 <= len(data):
        frame += 1
        seconds, _, incl, _ = struct.unpack_from("<IIII", data, offset)
        if frame in shifts:
            struct.pack_into("<I", data, offset, int(seconds + shifts[frame]))
        offset += 16 + incl
    out = tmp_path / "clock.pcap"
    out.write_bytes(data)
    return out


def test_a_clock_jump_is_reported_with_its_frame(tmp_path: Path) -> None:
    """Issue 17: a damaged timestamp gave a setup time of years and no word about it."""
    import sipflow

    path = _with_times(tmp_path, {5: 10 * 365 * 86400.0})
    analysis = sipflow.analyze(path)
    jumps = [w for w in analysis.warnings if "capture time jumps" in w.message]
    assert [(w.frame, "forward" in w.message) for w in jumps] == [(5, True), (6, False)]
    assert "after frame 4" in jumps[0].message and "10.0 years" in jumps[0].message
    assert len(analysis.calls) == 1  # reported, and the run goes on
    # A day is the threshold; an ordinary capture says nothing.
    assert not [
        w for w in sipflow.analyze(_with_times(tmp_path, {5: 3600.0})).warnings if "jumps" in w.message
    ]
    assert not [w for w in sipflow.analyze(SAMPLES / "proxy-call.pcap").warnings if "jumps" in w.message]


def test_many_clock_jumps_are_counted(tmp_path: Path) -> None:
    import sipflow

    path = _with_times(tmp_path, dict.fromkeys(range(2, 15, 2), 2 * 86400.0))  # 7 records moved
    messages = [w.message for w in sipflow.analyze(path).warnings]
    assert sum("capture time jumps" in m for m in messages) == 5
    assert "8 more jumps of the capture time of over a day" in messages
