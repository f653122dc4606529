"""Where the per-file work of ``sipflow index`` runs: in this process, in a local process pool
(``--jobs N``), or as tasks on a Dask distributed cluster (``--scheduler ADDRESS``, or
``local:N`` for a ``LocalCluster`` of N workers started for the run on loopback).

Each task reads one capture into rows (``files.read_capture``) and hands them back; what
joins calls across files (the analysis of the packets kept) runs after, in this process, as
a reduction over everything the tasks returned. Results come back as each task ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from typing import Any

from sipflow.archive.files import FileCapture, read_capture
from sipflow.errors import UsageError


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def parse_scheduler(value: str) -> tuple[str, int | None]:
    """``local:N`` → ("local", N); an address (``tcp://host:8786``, ``host:8786``) → (it, None)."""
    if value.startswith("local:") or value == "local":
        count = value.partition(":")[2] or str(default_jobs())
        if not count.isdigit() or int(count) < 1:
            raise UsageError(f"--scheduler {value}: expected local:N with N workers, 1 or more")
        return "local", int(count)
    if not value.strip():
        raise UsageError("--scheduler: expected a Dask scheduler address or local:N")
    return value, None


def run_reads(
    paths: Sequence[str], *, jobs: int | None = None, scheduler: str | None = None
) -> Iterator[FileCapture]:
    """``read_capture`` of every path, each result as soon as its task ends (in any order)."""
    if not paths:
        return
    if scheduler is not None:
        yield from _dask_reads(paths, scheduler)
        return
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise UsageError(f"jobs must be 1 or more, not {jobs}")
    if jobs == 1 or len(paths) == 1:
        for path in paths:
            yield read_capture(path)
        return
    from sipflow.readahead import _context  # noqa: PLC0415  # fork where it is safe, else spawn

    with ProcessPoolExecutor(max_workers=min(jobs, len(paths)), mp_context=_context()) as pool:
        futures = [pool.submit(read_capture, path) for path in paths]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _dask_reads(paths: Sequence[str], scheduler: str) -> Iterator[FileCapture]:
    try:
        import distributed  # noqa: PLC0415
    except ImportError:
        raise UsageError(
            "--scheduler needs Dask distributed: pip install 'sipflow[dask]' (dask, distributed)"
        ) from None
    address, workers = parse_scheduler(scheduler)
    dask: Any = distributed  # untyped
    with ExitStack() as stack:
        if address == "local":
            cluster: Any = stack.enter_context(
                dask.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=40,
                )
            )
            client = stack.enter_context(dask.Client(cluster))
        else:
            try:
                client = stack.enter_context(dask.Client(address, timeout=30))
            except OSError as exc:
                raise UsageError(f"--scheduler {address}: cannot reach the Dask scheduler: {exc}") from None
        # Paths as this machine names them: the workers must see the same files (shared storage).
        futures = client.map(read_capture, [os.path.abspath(p) for p in paths], pure=False)
        by_abs = {os.path.abspath(p): p for p in paths}
        for future in dask.as_completed(futures):
            result: FileCapture = future.result()
            yield _renamed(result, by_abs.get(result.path, result.path))
            future.release()


def _renamed(capture: FileCapture, path: str) -> FileCapture:
    """The result of a task given an absolute path, named as the user named the file."""
    if capture.path == path:
        return capture
    from dataclasses import replace  # noqa: PLC0415

    error = capture.error.replace(capture.path, path, 1) if capture.error else capture.error
    return replace(capture, path=path, error=error)
