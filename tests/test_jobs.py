"""``--jobs``: reading and parsing in worker processes gives the result of one process (issue 12).

Also the command's own process: ``sipflow.cli.run`` (the installed command) exits with the
command's code without tearing its heap down, and ``main`` (what embedders and tests call)
leaves the host's garbage collector as it found it (issue 13).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipflow import readahead
from sipflow.cli import main
from sipflow.errors import CaptureError, UsageError
from sipflow.pipeline import _worker_count, analyze
from sipflow.render.json import dumps

from .conftest import ROOT, SAMPLES, sample_captures, shared_captures


def _result(paths: list[Path], jobs: int) -> tuple[object, ...]:
    analysis = analyze(paths, jobs=jobs)
    return (
        dumps(analysis, analysis.calls, with_flow=True),
        analysis.summary,
        analysis.warnings,
        tuple(m.sip for m in analysis.messages),
        analysis.malformed,
    )


@pytest.mark.parametrize("path", sample_captures(), ids=lambda p: p.name)
def test_each_sample_is_the_same_with_a_worker(path: Path) -> None:
    assert _result([path], 2) == _result([path], 1)


def test_shared_captures_are_the_same_with_a_worker() -> None:
    paths = shared_captures()
    if not paths:
        pytest.skip("../shared/captures is not here")
    for path in paths:
        assert _result([path], 2) == _result([path], 1), path.name


def test_several_files_with_workers_and_without() -> None:
    """Two files in workers, the others here, merged by time and deduplicated as one process does."""
    paths = [SAMPLES / "two-probes.pcapng", SAMPLES / "proxy-call.pcap", SAMPLES / "b2bua-load.pcap",
             SAMPLES / "faulty-via-487-proxy.pcap"]  # fmt: skip
    assert _result(paths, 3) == _result(paths, 1)


def test_a_damaged_file_reports_the_same(tmp_path: Path) -> None:
    data = (SAMPLES / "b2bua-load.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) * 2 // 3])
    one, two = _result([cut], 1), _result([cut], 2)
    assert one == two
    analysis = analyze([cut], jobs=2)
    assert analysis.summary.partial and analysis.warnings


def test_progress_reaches_the_end_with_a_worker() -> None:
    seen: list[tuple[int, int]] = []
    analyze([SAMPLES / "b2bua-load.pcap"], jobs=2, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] > 0
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def _dies(conn: object, path: str, name: str, media: bool) -> None:
    os._exit(7)


def _fails(conn: object, path: str, name: str, media: bool) -> None:
    raise RuntimeError("disk on fire")


def test_a_worker_that_dies_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readahead, "_context", lambda: readahead.multiprocessing.get_context("fork"))
    monkeypatch.setattr(readahead, "_worker", _dies)
    with pytest.raises(CaptureError, match=r"ended unexpectedly \(exit code 7\)"):
        analyze([SAMPLES / "basic-call.pcap"], jobs=2)


def test_a_worker_error_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readahead, "_context", lambda: readahead.multiprocessing.get_context("fork"))

    def failing(conn: object, path: str, name: str, media: bool) -> None:
        readahead.CaptureReader = _Broken  # type: ignore[misc,assignment]  # in the child only
        original(conn, path, name, media)  # type: ignore[arg-type]

    original = readahead._worker
    monkeypatch.setattr(readahead, "_worker", failing)
    with pytest.raises(CaptureError, match="reading in a worker process failed: RuntimeError: disk on fire"):
        analyze([SAMPLES / "basic-call.pcap"], jobs=2)


class _Broken:
    def __init__(self, path: str, *, name: str, sink: object = None) -> None:
        raise RuntimeError("disk on fire")


def test_the_spawn_start_method_works_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where forking is unsafe (other threads running), the worker is spawned afresh."""
    monkeypatch.setattr(readahead, "_context", lambda: readahead.multiprocessing.get_context("spawn"))
    path = SAMPLES / "proxy-call.pcap"
    assert _result([path], 2) == _result([path], 1)


def test_jobs_bounds() -> None:
    with pytest.raises(UsageError):
        analyze([SAMPLES / "basic-call.pcap"], jobs=0)
    assert _worker_count(1, 3) == 0
    assert _worker_count(2, 3) == 1
    assert _worker_count(8, 3) == 3
    assert _worker_count(None, 3) == 0
    result = CliRunner().invoke(main, ["calls", str(SAMPLES / "basic-call.pcap"), "--jobs", "0"])
    assert result.exit_code == 2 and "--jobs" in result.stderr


def test_cli_jobs_output_is_the_same() -> None:
    outputs = []
    for jobs in ("1", "2"):
        args = ["calls", str(SAMPLES / "b2bua-load.pcap"), "--format", "json", "-j", jobs]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]


def test_main_leaves_the_garbage_collector_on() -> None:
    assert gc.isenabled()
    result = CliRunner().invoke(main, ["calls", str(SAMPLES / "basic-call.pcap")])
    assert result.exit_code == 0
    assert gc.isenabled()
    gc.disable()
    try:
        CliRunner().invoke(main, ["calls", str(SAMPLES / "basic-call.pcap")])
        assert not gc.isenabled()  # as it found it
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["calls", "samples/basic-call.pcap"], 0),
        (["calls", "samples/nonexistent.pcap"], 2),
        (["ladder", "samples/basic-call.pcap", "--call", "99"], 1),
        (["calls", "--no-such-option"], 2),
    ],
)
def test_the_installed_command_exits_with_the_commands_code(args: list[str], code: int) -> None:
    command = [sys.executable, "-m", "sipflow", *args]
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == code, process.stderr
    if code == 0:
        assert "basic-call" in process.stdout and process.stdout.endswith("\n")
    else:
        assert process.stderr


def test_the_installed_command_flushes_a_large_output() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "sipflow", "calls", "samples/b2bua-load.pcap", "--format", "json", "-j", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert process.returncode == 0
    result = CliRunner().invoke(main, ["calls", "samples/b2bua-load.pcap", "--format", "json"])
    assert process.stdout == result.stdout


def test_options_object_describes_a_run() -> None:
    """``AnalysisOptions`` pickles (a run described once, carried out elsewhere), and a keyword
    argument replaces its field."""
    import pickle

    from sipflow import AnalysisOptions

    path = SAMPLES / "b2bua-load.pcap"
    options = pickle.loads(pickle.dumps(AnalysisOptions(jobs=2, max_call_ids=3)))
    limited = analyze([path], options)
    assert limited.summary.untracked > 0
    assert _result([path], 1) == _result([path], 2)
    unlimited = analyze([path], options, max_call_ids=None)
    assert unlimited.summary.untracked == 0
    assert dumps(unlimited, unlimited.calls) == dumps(analyze([path]), analyze([path]).calls)
