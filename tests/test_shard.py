"""One capture over several processes (``sipflow.shard``): the JSON is that of one process."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipflow import shard
from sipflow.cli import main
from sipflow.correlate import CorrelationOptions
from sipflow.errors import CaptureError
from sipflow.pipeline import AnalysisOptions, analyze
from sipflow.render.json import iter_dumps
from tests.conftest import SAMPLES, sample_captures, shared_captures

ROTATED = sorted((SAMPLES / "rotated").glob("part-*.pcap"))


@pytest.fixture(autouse=True)
def _threads_of_other_tests_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other tests in this process leave idle pool threads behind (Dask's offload thread), which
    would make ``shard.start`` decline to fork; here only the threads a test starts count."""
    before = set(threading.enumerate()) - {threading.main_thread()}
    monkeypatch.setattr(threading, "active_count", lambda: len(set(threading.enumerate()) - before))


def _one_process(paths: list[str], options: AnalysisOptions, **selection: object) -> str:
    analysis = analyze(paths, options)
    return "".join(iter_dumps(analysis, analysis.select(**selection)))  # type: ignore[arg-type]


def _sharded(paths: list[str], options: AnalysisOptions, **selection: object) -> str | None:
    run = shard.calls_json(paths, options, selection=dict(selection), min_bytes=0)
    return None if run is None else "".join(run.pieces)


CAPTURES = [p for p in sample_captures() + shared_captures() if p.stat().st_size]


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_same_json_as_one_process(path: Path) -> None:
    # Every item (--all), so that registrations and the like are compared too.
    options = AnalysisOptions(jobs=1)
    expected = _one_process([str(path)], options, all_kinds=True)
    assert _sharded([str(path)], AnalysisOptions(jobs=3), all_kinds=True) == expected


def test_several_files_merged_and_deduped_as_one_process() -> None:
    # Rotated parts with calls across the cuts, and a capture with two interfaces (skews,
    # copies of one message at two capture points).
    for paths in ([str(p) for p in ROTATED], [str(SAMPLES / "two-probes.pcapng")]):
        expected = _one_process(paths, AnalysisOptions(jobs=1))
        assert _sharded(paths, AnalysisOptions(jobs=2)) == expected


def test_b2bua_legs_on_different_workers_make_one_call() -> None:
    # The legs of a B2BUA's calls have Call-IDs of their own: most calls have legs in both
    # workers, which hand them over to the call's owner.
    path = str(SAMPLES / "b2bua-load.pcap")
    expected = _one_process([path], AnalysisOptions(jobs=1))
    document = json.loads(expected)
    assert sum(len(c["legs"]) > 1 for c in document["calls"]) >= 10
    assert _sharded([path], AnalysisOptions(jobs=2)) == expected
    off = CorrelationOptions(enabled=False)
    expected = _one_process([path], AnalysisOptions(jobs=1, correlation=off))
    assert _sharded([path], AnalysisOptions(jobs=2, correlation=off)) == expected


def test_selection_applied_in_the_workers() -> None:
    path = str(SAMPLES / "b2bua-load.pcap")
    selections = ({"state": ("completed",)}, {"status": "4xx"}, {"from_": "1"}, {"call_id": "none-such"})
    for selection in selections:
        expected = _one_process([path], AnalysisOptions(jobs=1), **selection)
        assert _sharded([path], AnalysisOptions(jobs=2), **selection) == expected
    assert not json.loads(expected)["calls"]  # none selected: the document all the same


def test_one_process_where_sharding_does_not_apply(tmp_path: Path) -> None:
    path = str(SAMPLES / "basic-call.pcap")
    assert shard.calls_json([path], AnalysisOptions(jobs=1), min_bytes=0) is None
    assert shard.calls_json([path], AnalysisOptions(jobs=2)) is None  # smaller than MIN_BYTES
    assert shard.calls_json([path], AnalysisOptions(jobs=2, media=True), min_bytes=0) is None
    assert shard.calls_json(["-"], AnalysisOptions(jobs=2), min_bytes=0) is None
    # More Call-IDs than the limit: one process says which messages it left out.
    three = str(SAMPLES / "three-calls.pcap")
    assert shard.calls_json([three], AnalysisOptions(jobs=2, max_call_ids=1), min_bytes=0) is None
    assert shard.calls_json([three], AnalysisOptions(jobs=2, max_call_ids=3), min_bytes=0) is not None
    assert shard.shard_count(None) >= 1
    assert shard.shard_count(4) == 4


def test_one_process_while_other_threads_run() -> None:
    # A fork copies only the thread that forks: a lock another thread held stays held.
    path = str(SAMPLES / "basic-call.pcap")
    release = threading.Event()
    thread = threading.Thread(target=release.wait, daemon=True)
    thread.start()
    try:
        assert shard.calls_json([path], AnalysisOptions(jobs=2), min_bytes=0) is None
    finally:
        release.set()
        thread.join()


def test_a_bad_file_is_the_error_one_process_gives(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-capture.pcap"
    bad.write_bytes(b"this is no capture file at all" * 10)
    with pytest.raises(CaptureError) as one:
        analyze([str(bad)])
    with pytest.raises(CaptureError) as sharded:
        shard.calls_json([str(bad)], AnalysisOptions(jobs=2), min_bytes=0)
    assert str(sharded.value) == str(one.value)


def test_cli_jobs_gives_the_same_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shard, "MIN_BYTES", 0)
    used = []
    real = shard.start

    def spy(*args: object, **kwargs: object) -> shard.Sharded | None:
        started = real(*args, **kwargs)  # type: ignore[arg-type]
        used.append(started is not None)
        return started

    monkeypatch.setattr(shard, "start", spy)
    runner = CliRunner()
    path = str(SAMPLES / "b2bua-load.pcap")
    one = runner.invoke(main, ["calls", path, "--format", "json", "--jobs", "1"])
    two = runner.invoke(main, ["calls", path, "--format", "json", "--jobs", "2"])
    default = runner.invoke(main, ["calls", path, "--format", "json"])
    assert one.exit_code == two.exit_code == default.exit_code == 0, (two.output, two.exception)
    assert two.output == one.output == default.output
    # --jobs 1: one process; 2 and the default (one per core, where there are several): shards.
    assert used == [False, True, shard.shard_count(None) > 1]
