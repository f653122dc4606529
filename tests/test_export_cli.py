"""``sipflow export``: every format for sample calls, selection rules, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipflow import analyze
from sipflow.cli import main
from tests.conftest import SAMPLES

PROXY_CALL = str(SAMPLES / "proxy-call.pcap")
THREE = str(SAMPLES / "three-calls.pcap")

STARTS = {
    "svg": (b"<?xml", b"<svg"),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "dot": (b"digraph",),
    "mmd": (b"sequenceDiagram", b"%%", b"---"),
    "puml": (b"@startuml",),
    "html": (b"<!DOCTYPE html>", b"<!doctype html>"),
}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


@pytest.mark.parametrize("fmt", sorted(STARTS))
def test_each_diagram_format_for_one_call(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"call.{fmt}"
    code, err = run("export", PROXY_CALL, "--call", "1", "-o", str(out))
    assert code == 0, err
    data = out.read_bytes()
    assert data.lstrip().startswith(STARTS[fmt]), data[:80]


def test_format_option_overrides_the_extension(tmp_path: Path) -> None:
    out = tmp_path / "flow.txt"
    code, err = run("export", PROXY_CALL, "-o", str(out), "--format", "mmd")
    assert code == 0, err
    assert "sequenceDiagram" in out.read_text()


def test_json_has_every_message_of_the_selected_calls(tmp_path: Path) -> None:
    out = tmp_path / "calls.json"
    code, err = run("export", THREE, "-o", str(out), "--state", "completed")
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["schema"] == 1 and len(doc["calls"]) == 3
    for call in doc["calls"]:
        assert len(call["flow"]) == call["messages"] == 14
        first = call["flow"][0]
        assert first["first_line"].startswith("INVITE ") and first["leg"] == 0
        assert set(first) >= {"time", "src", "dst", "first_line", "frame", "frames", "leg", "retransmission"}


def test_pcap_of_one_call_reads_back_as_that_call(tmp_path: Path) -> None:
    out = tmp_path / "call2.pcap"
    code, err = run("export", THREE, "--call", "2", "-o", str(out))
    assert code == 0, err
    (call,) = analyze([out]).calls
    assert call.id == "sipflow-three-calls-2@127.0.0.10" and len(call.messages) == 14
    assert call.state.value == "completed"


def test_a_diagram_holds_one_call(tmp_path: Path) -> None:
    code, err = run("export", THREE, "-o", str(tmp_path / "x.svg"))
    assert code == 2 and "3 calls match" in err and "--each" in err
    assert not (tmp_path / "x.svg").exists()


def test_all_writes_one_file_per_call(tmp_path: Path) -> None:
    out = tmp_path / "flows"
    code, err = run("export", THREE, "--all", "-o", str(out), "--format", "puml")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["call-1.puml", "call-2.puml", "call-3.puml"]


def test_unknown_extension_is_a_usage_error(tmp_path: Path) -> None:
    code, err = run("export", PROXY_CALL, "-o", str(tmp_path / "x.docx"))
    assert code == 2 and "--format" in err


def test_correlated_call_exports_both_legs(tmp_path: Path) -> None:
    out = tmp_path / "b2bua.json"
    code, err = run("export", str(SAMPLES / "b2bua-3pcc.pcap"), "--call", "1", "-o", str(out))
    assert code == 0, err
    (call,) = json.loads(out.read_text())["calls"]
    assert len(call["legs"]) == 2 and {m["leg"] for m in call["flow"]} == {0, 1}
    assert call["correlation"][0]["method"] == "b2bua-heuristic"


ALL_FORMATS = ("svg", "dot", "mmd", "puml", "html", "json", "pcap")


@pytest.mark.parametrize("sample", [p for p in sorted(SAMPLES.glob("*.pcap")) if p.name != "b2bua-load.pcap"],
                         ids=lambda p: p.stem)  # fmt: skip
def test_every_format_for_every_call_of_every_sample(tmp_path: Path, sample: Path) -> None:
    """``--each --all`` writes one file per item (registrations and OPTIONS pings included)."""
    calls = analyze([sample]).calls
    for fmt in ALL_FORMATS:
        out = tmp_path / fmt
        code, err = run("export", str(sample), "--each", "--all", "-o", str(out), "--format", fmt)
        assert code == 0, err
        files = sorted(out.iterdir())
        assert [f.name for f in files] == sorted(f"call-{c.index}.{fmt}" for c in calls)
        for f in files:
            data = f.read_bytes()
            if fmt in STARTS:
                assert data.lstrip().startswith(STARTS[fmt]), (f.name, data[:60])
            elif fmt == "json":
                assert len(json.loads(data)["calls"]) == 1
            else:
                (again,) = analyze([f]).calls  # a pcap of one call reads back as that call
                assert again.index == 1


def test_all_and_each_are_two_things(tmp_path: Path) -> None:
    """Issue 17: ``--all`` adds the other items, ``--each`` writes a file per item."""
    register = str(SAMPLES / "register.pcap")
    # --all into one JSON file: the registration and the OPTIONS ping, not a folder.
    out = tmp_path / "items.json"
    code, err = run("export", register, "--all", "-o", str(out))
    assert code == 0, err
    assert [c["kind"] for c in json.loads(out.read_text())["calls"]] == ["registration", "options"]
    # --each without --all: the calls only (three-calls.pcap has three), SVG by default.
    folder = tmp_path / "each"
    code, err = run("export", THREE, "--each", "-o", str(folder))
    assert code == 0 and "wrote 3 files" in err
    assert sorted(p.name for p in folder.iterdir()) == ["call-1.svg", "call-2.svg", "call-3.svg"]
    # The old spelling (--all with a folder) still writes a file per item, and says so.
    old = tmp_path / "old"
    code, err = run("export", THREE, "--all", "-o", str(old), "--format", "mmd")
    assert code == 0 and "say --each" in err and len(list(old.iterdir())) == 3


def test_the_html_page_says_the_headline_once(tmp_path: Path) -> None:
    """Issue 17: the page's header and the diagram inside it both said who called whom."""
    page_path, svg_path = tmp_path / "call.html", tmp_path / "call.svg"
    assert run("export", PROXY_CALL, "--call", "1", "-o", str(page_path))[0] == 0
    assert run("export", PROXY_CALL, "--call", "1", "-o", str(svg_path))[0] == 0
    page, svg = page_path.read_text(), svg_path.read_text()
    assert ">Call 1: alice@127.0.0.10 &#45;&gt; bob@127.0.0.20<" in svg  # the diagram alone says it
    inline = page[page.index("<svg") : page.index("</svg>")]
    assert "Call 1: alice" not in inline and "Call&#45;ID" not in inline and "key&#45;0" in inline
    assert page.count("alice@127.0.0.10 → bob@127.0.0.20") == 2  # <title> and <h1>
    # The detail pane takes no room until a message is shown, and at most 30 % of the window.
    assert "#detail-text:empty { display: none; }" in page and "max-height: 30vh" in page
