"""sipflow over every public capture in ../shared/captures, cross-checked live with tshark.

For each file: no exception; the SIP message count, the frames carrying SIP and the set of
Call-IDs equal what tshark (default preferences) says. Where sipflow rightly differs, or a
transport comes in a later issue, ``DIFFERENCES`` says why and what is asserted instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sipflow import analyze
from sipflow.model.analysis import Analysis
from tests.conftest import SHARED_CAPTURES, run_tshark, shared_captures

pytestmark = pytest.mark.skipif(not SHARED_CAPTURES.is_dir(), reason="../shared/captures not present")

DIFFERENCES: dict[str, tuple[str, str]] = {
    # file: (why, tshark display filter for the SIP frames sipflow does not decode yet)
}


def _tshark_view(tshark: str, path: Path) -> tuple[int, set[int], set[str]]:
    stat = run_tshark(tshark, ["-r", str(path), "-q", "-z", "sip,stat"])
    match = re.search(r"Number of SIP messages: (\d+)", stat)
    count = int(match.group(1)) if match else 0
    fields = run_tshark(
        tshark,
        ["-r", str(path), "-Y", "sip", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=\x1f",
         "-e", "frame.number", "-e", "sip.Call-ID"],
    )  # fmt: skip
    frames: set[int] = set()
    call_ids: set[str] = set()
    for line in fields.splitlines():
        frame, _, ids = line.partition("\t")
        frames.add(int(frame))
        call_ids.update(i for i in ids.split("\x1f") if i)
    return count, frames, call_ids


def _our_view(analysis: Analysis) -> tuple[int, set[int], set[str]]:
    frames = {m.frame for m in analysis.messages} | {m.frame for m in analysis.malformed}
    call_ids = {m.sip.call_id for m in analysis.messages if m.sip.call_id}
    return len(analysis.messages), frames, call_ids


@pytest.mark.parametrize("path", shared_captures(), ids=lambda p: p.name)
def test_agrees_with_tshark(path: Path, tshark: str) -> None:
    analysis = analyze([path])
    ours = _our_view(analysis)
    theirs = _tshark_view(tshark, path)
    if path.name in DIFFERENCES:
        _why, display_filter = DIFFERENCES[path.name]
        out = run_tshark(
            tshark, ["-r", str(path), "-Y", f"sip && {display_filter}", "-T", "fields", "-e", "frame.number"]
        )
        skipped = {int(line) for line in out.split()}
        assert skipped, "tshark no longer sees the transport this difference is about"
        assert ours[1] == theirs[1] - skipped, "frames carrying SIP differ beyond the known difference"
        assert ours[0] == theirs[0] - len(skipped)
        assert ours[2] <= theirs[2]
        return
    assert ours[2] == theirs[2], "Call-IDs differ"
    assert ours[1] == theirs[1], "frames carrying SIP differ"
    assert ours[0] == theirs[0], "SIP message counts differ"
    # Every Call-ID belongs to exactly one item.
    ids = [leg.call_id for call in analysis.calls for leg in call.legs]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", shared_captures(), ids=lambda p: p.name)
def test_cli_runs_on_every_capture(path: Path) -> None:
    """``calls`` and ``ladder`` on every public capture: no traceback, and a ladder per item."""
    from click.testing import CliRunner

    from sipflow.cli import main

    runner = CliRunner()
    calls = runner.invoke(main, ["calls", str(path), "--all", "--format", "json"], catch_exceptions=False)
    assert calls.exit_code == 0
    items = len(json.loads(calls.stdout)["calls"])
    ladder = runner.invoke(main, ["ladder", str(path), "--all", "--plain", "--full"], catch_exceptions=False)
    if items == 0:
        assert ladder.exit_code == 1 and "no call matches" in ladder.stderr
    else:
        assert ladder.exit_code == 0
        assert ladder.stdout.count("\nCall ") + ladder.stdout.startswith("Call ") == items
