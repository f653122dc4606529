"""Time sipflow against tshark on the same capture, side by side.

Each tool runs ``--repeat`` times (best time kept) in its own child process, so peak RSS is that of the
tool alone (``os.wait4`` gives the child's ``ru_maxrss``):

* ``tshark``          ``tshark -q -z sip,stat -r FILE``
* ``sipflow calls``   ``python -m sipflow calls FILE --format json > /dev/null`` (the whole CLI)
* ``analyze()``       ``sipflow.analyze([FILE])`` timed inside a child interpreter (import excluded)
* ``CaptureReader``   ``sipflow.capture.reader.CaptureReader`` alone: every packet read, nothing parsed

Whatever is not importable or runnable yet is skipped with a note. Rates use the file's frame count
(read from the pcap record headers, or ``capinfos`` for pcapng) and its SIP message count (from
``tshark -z sip,stat``, else from the generator's ``.counts.json`` beside the file).

If FILE does not exist it is generated first with ``benchmarks/generate.py`` (``--calls``,
``--rtp-per-call``, ``--seed``, ``--tcp-fraction``).

Example::

    python benchmarks/run.py --repeat 3                 # benchmarks/out/bench.pcap, made if missing
    python benchmarks/run.py /tmp/big.pcap --only tshark,reader --json /tmp/bench.json
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_FILE = HERE / "out" / "bench.pcap"
TOOLS = ("tshark", "cli", "lib", "reader")
PEERS = ("sngrep",)


@dataclass(slots=True)
class Result:
    """One tool's outcome on the file."""

    tool: str
    seconds: float | None = None
    """Best wall time over the repeats (None when skipped or failed)."""
    max_rss_kb: int | None = None
    """Peak resident set size of the tool's process during its best run."""
    runs: int = 0
    note: str = ""


@dataclass(frozen=True, slots=True)
class Counts:
    """What the capture holds, to turn seconds into rates."""

    frames: int | None
    sip_messages: int | None
    file_bytes: int


# ---------------------------------------------------------------------------------------------------
# Running children
# ---------------------------------------------------------------------------------------------------
def run_child(
    argv: list[str],
    *,
    stdout: int | IO[bytes] = subprocess.DEVNULL,
    timeout: float,
    env: dict[str, str] | None = None,
) -> tuple[int, float, int, str]:
    """Run ``argv``; return (exit code, wall seconds, child peak RSS in KiB, stderr text).

    ``os.wait4`` reaps the child and returns its own resource usage, so the RSS is that process's
    alone (``RUSAGE_CHILDREN`` would be the maximum over every child so far). A timer kills the
    child after ``timeout`` seconds.
    """
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=REPO)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    return proc.returncode, elapsed, int(usage.ru_maxrss), text


def sipflow_env() -> dict[str, str]:
    """The environment for children: the work tree's sipflow first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def _error_line(text: str) -> str:
    """The last non-empty line of a traceback or message (the one that names the error), shortened."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:100] if lines else ""


def best_of(
    tool: str, argv: list[str], repeat: int, timeout: float, *, env: dict[str, str] | None = None
) -> Result:
    """Run a command ``repeat`` times and keep the fastest successful run."""
    res = Result(tool)
    for _ in range(repeat):
        code, secs, rss, err = run_child(argv, timeout=timeout, env=env)
        if code != 0:
            res.note = f"exit {code}: {_error_line(err)}"
            return res
        res.runs += 1
        if res.seconds is None or secs < res.seconds:
            res.seconds, res.max_rss_kb = secs, rss
    return res


def best_of_child(mode: str, path: Path, repeat: int, timeout: float) -> Result:
    """Run this script's ``--child MODE`` (in-process timing in a fresh interpreter) ``repeat`` times."""
    res = Result({"lib": "sipflow.analyze()", "reader": "CaptureReader"}[mode])
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(path)]
    for _ in range(repeat):
        with tempfile.TemporaryFile() as out:
            code, _secs, rss, err = run_child(argv, stdout=out, timeout=timeout, env=sipflow_env())
            out.seek(0)
            text = out.read().decode(errors="replace")
        if code != 0:
            res.note = f"exit {code}: {_error_line(err)}"
            return res
        report = json.loads(text.strip().splitlines()[-1])
        if report.get("skip"):
            res.note = f"skipped: {report['skip']}"
            return res
        res.runs += 1
        res.note = report.get("note", "")
        secs = float(report["seconds"])
        if res.seconds is None or secs < res.seconds:
            res.seconds, res.max_rss_kb = secs, rss
    return res


# ---------------------------------------------------------------------------------------------------
# Child side: the in-process measurements
# ---------------------------------------------------------------------------------------------------
def _count(items: Iterable[object]) -> int:
    """Exhaust an iterable, counting its items."""
    n = 0
    for _ in items:
        n += 1
    return n


def _reader_packets(path: Path) -> tuple[int, str]:
    """Stream every SIP candidate packet out of the file with ``CaptureReader``."""
    from sipflow.capture.reader import CaptureReader  # noqa: PLC0415

    with CaptureReader(str(path)) as reader:
        n = _count(reader)
        frames = reader.stats.frames
    return n, f"{n:,} SIP candidates of {frames:,} frames"


def _analyze(path: Path) -> tuple[int, str]:
    """Run the whole library pipeline on the file."""
    from sipflow import analyze  # noqa: PLC0415

    result = analyze([str(path)])
    n = len(result.calls)
    return n, f"{n:,} Call-IDs, {result.summary.sip_messages:,} SIP messages"


def child_main(mode: str, path: Path) -> int:
    """Time one in-process measurement and print a JSON report (``skip`` when the API is missing)."""
    fn = {"lib": _analyze, "reader": _reader_packets}[mode]
    t_import = time.perf_counter()
    try:
        importlib.import_module("sipflow.pipeline" if mode == "lib" else "sipflow.capture.reader")
    except ImportError as exc:
        print(json.dumps({"skip": f"not importable yet ({exc})"}))
        return 0
    import_s = time.perf_counter() - t_import
    gc.collect()
    started = time.perf_counter()
    _n, note = fn(path)
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    note = f"{note}; import {import_s:.2f} s".lstrip("; ")
    print(json.dumps({"seconds": seconds, "max_rss_kb": rss, "note": note}))
    return 0


# ---------------------------------------------------------------------------------------------------
# The file and its counts
# ---------------------------------------------------------------------------------------------------
def pcap_frames(path: Path) -> int | None:
    """Count records of a classic pcap by walking the record headers (None for anything else)."""
    rec = struct.Struct("<IIII")
    with path.open("rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return None
        magic = head[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            rec = struct.Struct("<IIII")
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            rec = struct.Struct(">IIII")
        else:
            return None
        n = 0
        pos = 24
        size = path.stat().st_size
        while pos + 16 <= size:
            f.seek(pos)
            incl = rec.unpack(f.read(16))[2]
            pos += 16 + incl
            n += 1
    return n


def capinfos_frames(path: Path) -> int | None:
    """Frame count from ``capinfos -M -c`` (any format tshark reads), if installed."""
    exe = shutil.which("capinfos")
    if exe is None:
        return None
    proc = subprocess.run([exe, "-M", "-c", str(path)], capture_output=True, text=True, check=False)
    m = re.search(r"Number of packets:\s+(\d+)", proc.stdout)
    return int(m.group(1)) if m else None


def tshark_sip_messages(path: Path) -> int | None:
    """``Number of SIP messages`` from ``tshark -q -z sip,stat``, if tshark is installed."""
    exe = shutil.which("tshark")
    if exe is None:
        return None
    proc = subprocess.run(
        [exe, "-r", str(path), "-q", "-z", "sip,stat"], capture_output=True, text=True, check=False
    )
    m = re.search(r"Number of SIP messages: (\d+)", proc.stdout)
    return int(m.group(1)) if m else None


def file_counts(path: Path) -> Counts:
    """Frames and SIP messages of the file, from the cheapest source available."""
    sidecar = path.with_suffix(path.suffix + ".counts.json")
    frames = sip = None
    if sidecar.exists():
        data = json.loads(sidecar.read_text())
        frames, sip = data.get("frames"), data.get("sip_messages")
    if frames is None:
        frames = pcap_frames(path) or capinfos_frames(path)
    if sip is None:
        sip = tshark_sip_messages(path)
    return Counts(frames=frames, sip_messages=sip, file_bytes=path.stat().st_size)


def ensure_file(args: argparse.Namespace) -> None:
    """Generate the capture (and its ``.counts.json``) when it does not exist."""
    path: Path = args.file
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        str(HERE / "generate.py"),
        "-o",
        str(path),
        "--calls",
        str(args.calls),
        "--rtp-per-call",
        str(args.rtp_per_call),
        "--seed",
        str(args.seed),
        "--tcp-fraction",
        str(args.tcp_fraction),
        "--json",
        str(path.with_suffix(path.suffix + ".counts.json")),
    ]
    print(f"{path} is missing: generating it ({args.calls} calls)...", flush=True)
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    print(f"generated in {time.perf_counter() - started:.1f} s\n", flush=True)


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------
def _rate(n: int | None, secs: float | None) -> str:
    """Items per second, thousands-separated, or a dash."""
    if not n or not secs:
        return "-"
    return f"{n / secs:,.0f}"


def print_table(results: list[Result], counts: Counts, path: Path, repeat: int) -> None:
    """Print the side-by-side table."""
    frames = f"{counts.frames:,}" if counts.frames else "?"
    sip = f"{counts.sip_messages:,}" if counts.sip_messages else "?"
    print(f"file: {path} ({counts.file_bytes / 1e6:,.1f} MB, {frames} frames, {sip} SIP messages)")
    print(f"best of {repeat}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs\n")
    header = ("tool", "seconds", "packets/s", "SIP msgs/s", "peak RSS MB", "note")
    rows = [header]
    for r in results:
        rows.append(
            (
                r.tool,
                f"{r.seconds:.2f}" if r.seconds is not None else "-",
                _rate(counts.frames, r.seconds),
                _rate(counts.sip_messages, r.seconds),
                f"{r.max_rss_kb / 1024:,.0f}" if r.max_rss_kb else "-",
                r.note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        cells = [
            cell.ljust(w) if j in (0, len(header) - 1) else cell.rjust(w)
            for j, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE, help="capture to time")
    p.add_argument("--repeat", type=int, default=3, help="runs per tool; the best is kept")
    p.add_argument("--only", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    p.add_argument("--peers", action="store_true", help=f"also time peers found on PATH ({', '.join(PEERS)})")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before one run is killed")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    g = p.add_argument_group("generation (only when FILE is missing)")
    g.add_argument("--calls", type=int, default=14_300)
    g.add_argument("--rtp-per-call", type=int, default=50)
    g.add_argument("--seed", type=int, default=20240601)
    g.add_argument("--tcp-fraction", type=float, default=0.0)
    p.add_argument("--child", choices=("lib", "reader"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        return child_main(args.child, args.file)

    only = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = sorted(set(only) - set(TOOLS))
    if unknown:
        p.error(f"unknown tool(s) in --only: {', '.join(unknown)}")
    args.file = args.file.resolve()
    ensure_file(args)
    counts = file_counts(args.file)
    path = str(args.file)

    results: list[Result] = []
    for tool in only:
        print(f"timing {tool}...", file=sys.stderr, flush=True)
        if tool == "tshark":
            exe = shutil.which("tshark")
            if exe is None:
                results.append(Result("tshark -z sip,stat", note="skipped: tshark not installed"))
                continue
            res = best_of("tshark", [exe, "-q", "-z", "sip,stat", "-r", path], args.repeat, args.timeout)
            res.tool = "tshark -z sip,stat"
            results.append(res)
        elif tool == "cli":
            probe = run_child(
                [sys.executable, "-m", "sipflow", "calls", "--help"], timeout=60, env=sipflow_env()
            )
            if probe[0] != 0:
                note = f"skipped: `python -m sipflow calls` not usable yet ({_error_line(probe[3])})"
                results.append(Result("sipflow calls --format json", note=note))
                continue
            argv_cli = [sys.executable, "-m", "sipflow", "calls", path, "--format", "json"]
            res = best_of("sipflow calls", argv_cli, args.repeat, args.timeout, env=sipflow_env())
            res.tool = "sipflow calls --format json"
            results.append(res)
        else:
            results.append(best_of_child(tool, args.file, args.repeat, args.timeout))

    if args.peers:
        for peer in PEERS:
            exe = shutil.which(peer)
            if exe is None:
                results.append(Result(peer, note="skipped: not installed"))
                continue
            # sngrep without its UI: read the file, keep only SIP, write nothing but a pcap to /dev/null
            res = best_of(peer, [exe, "-N", "-q", "-I", path, "-O", os.devnull], args.repeat, args.timeout)
            results.append(res)

    print()
    print_table(results, counts, args.file, args.repeat)
    if args.json is not None:
        payload = {"file": path, "counts": asdict(counts), "repeat": args.repeat}
        payload["results"] = [asdict(r) for r in results]
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
