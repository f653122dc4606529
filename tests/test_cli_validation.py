"""Options that make no sense are refused with one clear line, never silently reinterpreted."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sipflow.cli import main
from tests.conftest import SAMPLES

B2BUA = str(SAMPLES / "b2bua-3pcc.pcap")
PROXY = str(SAMPLES / "proxy-call.pcap")


def run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


@pytest.mark.parametrize("command", [["ladder", "--plain"], ["export", "-o", "x.svg"]])
@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_call_numbers_start_at_one(command: list[str], value: str, tmp_path: Path) -> None:
    code, out = run([command[0], PROXY, "--call", value, *command[1:]])
    assert code == 2
    assert "Invalid value for '--call'" in out


def test_call_given_twice_is_refused_not_replaced() -> None:
    code, out = run(["ladder", B2BUA, "--call", "1", "--call", "3", "--plain"])
    assert code == 2
    assert "given 2 times (1, 3): name one call" in out
    code, out = run(["ladder", B2BUA, "--call", "3", "--plain"])
    assert code == 0 and out.startswith("Call 3:")


def test_export_format_and_file_name_must_agree(tmp_path: Path) -> None:
    svg = tmp_path / "x.svg"
    code, out = run(["export", PROXY, "--call", "1", "-o", str(svg), "--format", "png"])
    assert code == 2
    assert "says svg and --format says png" in out
    assert not svg.exists()
    # Agreeing, or a name whose extension is not a format, is fine.
    assert run(["export", PROXY, "--call", "1", "-o", str(svg), "--format", "svg"])[0] == 0
    assert svg.read_bytes().lstrip().startswith(b"<")
    other = tmp_path / "diagram.out"
    assert run(["export", PROXY, "--call", "1", "-o", str(other), "--format", "mmd"])[0] == 0
    assert other.read_text().startswith(("sequenceDiagram", "---", "%%"))
    # A folder of one file per call (--each) takes its names from --format, else SVG...
    folder = tmp_path / "calls"
    assert run(["export", B2BUA, "--each", "-o", str(folder), "--format", "mmd"])[0] == 0
    assert sorted(p.suffix for p in folder.iterdir()) == [".mmd"] * len(list(folder.iterdir()))
    svgs = tmp_path / "svgs"
    assert run(["export", B2BUA, "--each", "-o", str(svgs)])[0] == 0
    assert {p.suffix for p in svgs.iterdir()} == {".svg"} and len(list(svgs.iterdir())) > 1
    # ...and is not a file name with a format's extension.
    code, out = run(["export", B2BUA, "--each", "-o", str(tmp_path / "calls.svg")])
    assert code == 2 and "with --each, OUT is a folder" in out
