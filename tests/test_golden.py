"""Golden files: what sipflow says about each bundled sample, pinned.

Refresh after an intended change with ``python -m pytest tests/test_golden.py --update-golden``
and read the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipflow.cli import main
from tests.conftest import GOLDEN, ROOT, sample_captures

LOAD_SAMPLES = {"b2bua-load.pcap"}
"""Hundreds of calls: checked against their ground truth (test_correlate), not pinned here."""


def _pinned() -> list[Path]:
    return [p for p in sample_captures() if p.name not in LOAD_SAMPLES]


def _run(args: list[str]) -> str:
    cwd = os.getcwd()
    os.chdir(ROOT)  # relative file names in the output
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return result.stdout


def _check(name: str, text: str, update: bool) -> None:
    path = GOLDEN / name
    if update or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        if not update:
            pytest.fail(f"golden file {name} was missing and has been written: check it in")
    assert text == path.read_text(), f"output differs from tests/golden/{name} (see --update-golden)"


@pytest.mark.parametrize("path", _pinned(), ids=lambda p: p.name)
def test_plain_ladder(path: Path, update_golden: bool) -> None:
    rel = str(path.relative_to(ROOT))
    text = _run(["ladder", rel, "--all", "--plain", "--width", "100"])
    _check(f"{path.stem}.ladder.txt", text, update_golden)


@pytest.mark.parametrize("path", _pinned(), ids=lambda p: p.name)
def test_json(path: Path, update_golden: bool) -> None:
    rel = str(path.relative_to(ROOT))
    text = _run(["calls", rel, "--all", "--format", "json"])
    # Stored indented so that a change reads well in a diff.
    _check(f"{path.stem}.json", json.dumps(json.loads(text), indent=2) + "\n", update_golden)
