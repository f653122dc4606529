"""Time sipflow against tshark on the benchmark workloads, side by side.

Workloads (generated into a cache directory, ``$SIPFLOW_BENCH_DIR`` or ``/tmp/sipflow-bench``, and made
again only when missing or when their generator's code or seed changed):

* ``mixed``        ``generate.py``: 999,578 packets, G.711 RTP, 1.4 % SIP (2,000 scenarios, 308 RTP
                   packets each way per answered call)
* ``sip-dense``    ``dense.py sip-dense``: a busy SBC port, 100,000 calls in 25 minutes, ~6,500 at once,
                   ~690,000 SIP messages, no RTP
* ``b2bua-dense``  ``dense.py b2bua-dense``: 50,000 calls through a B2BUA, two Call-IDs each, ~2,300 at
                   once; the generator's ground truth gives the precision and recall of sipflow's leg pairs

Tools (each run a separate child process; its wall time, and its peak RSS from ``os.wait4``, or
for a run in several processes the peak of their summed PSS, ``run_child``):

* ``tshark``   ``tshark -q -z sip,stat -r FILE``
* ``cli``      ``python -m sipflow calls FILE --format json > /dev/null`` (a large capture's Call-IDs
               shared out among one process per core, ``sipflow.shard``)
* ``cli-1``    the same with ``--jobs 1``: one process
* ``lib``      ``sipflow.analyze([FILE])`` timed inside a child interpreter (import excluded)
* ``reader``   ``sipflow.capture.reader.CaptureReader`` alone: every packet read, nothing parsed
* ``tshark-rtp`` ``tshark -q -o rtp.heuristic_rtp:TRUE -z rtp,streams -r FILE``: every RTP stream measured
* ``cli-media``  ``python -m sipflow calls FILE --media --format json``: the calls with their streams
  (``x tshark`` of these two is against ``tshark -z rtp,streams``)

The table shows the median wall time of ``--repeat`` runs, the largest peak RSS of those runs and the
ratio to tshark's median on the same file. ``--scaling`` times sip-dense and b2bua-dense at 1x, 2x and
4x (calls and arrival window both scaled: the same load for longer) and prints time and memory per SIP
message and the ratio of each size to the one before. ``--quick`` uses small sizes and one run.

A FILE argument times that capture alone (generated with ``generate.py`` if missing).

Example::

    python benchmarks/run.py --quick
    python benchmarks/run.py --workloads sip-dense,b2bua-dense --repeat 1
    python benchmarks/run.py --scaling --quick
    python benchmarks/run.py /tmp/big.pcap --only tshark,reader --json /tmp/bench.json
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import itertools
import json
import os
import re
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOOLS = ("tshark", "cli", "cli-1", "lib", "reader", "tshark-rtp", "cli-media")
TOOL_NAMES = {
    "tshark": "tshark -z sip,stat",
    "cli": "sipflow calls --format json",
    "cli-1": "sipflow calls --format json --jobs 1",
    "tshark-rtp": "tshark -z rtp,streams",
    "cli-media": "sipflow calls --media --format json",
    "lib": "sipflow.analyze()",
    "reader": "CaptureReader",
}
PEERS = ("sngrep",)
WORKLOADS = ("mixed", "sip-dense", "b2bua-dense")
QUICK_SCALE = {"mixed": 0.1, "sip-dense": 0.02, "b2bua-dense": 0.02}
SCALING_WORKLOADS = ("sip-dense", "b2bua-dense")
MIXED_CALLS, MIXED_RTP = 2_000, 308  # 999,578 frames, 13,978 of them SIP (1.4 %)
GENERATOR_FILES = {
    "mixed": ("generate.py",),
    "sip-dense": ("dense.py", "generate.py"),
    "b2bua-dense": ("dense.py", "generate.py"),
}
SEEDS = {"mixed": 20240601, "sip-dense": 20240612, "b2bua-dense": 20240612}


def cache_dir() -> Path:
    """Where generated captures live."""
    return Path(os.environ.get("SIPFLOW_BENCH_DIR") or "/tmp/sipflow-bench")


@dataclass(slots=True)
class Result:
    """One tool's outcome on one file."""

    workload: str
    scale: float
    tool: str
    seconds: list[float] = field(default_factory=list)
    """Wall time of each successful run."""
    max_rss_kb: int | None = None
    """Largest peak resident set size of the tool's process over the runs."""
    sip_messages: int | None = None
    note: str = ""
    quality: dict[str, Any] = field(default_factory=dict)
    """b2bua-dense: precision and recall of the leg pairs."""
    load: list[float] = field(default_factory=list)
    """The 1-minute load average as each run started (other processes on the machine skew the times)."""

    @property
    def median(self) -> float | None:
        """Median wall time, None when no run succeeded."""
        return statistics.median(self.seconds) if self.seconds else None


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
    alone (``RUSAGE_CHILDREN`` would be the maximum over every child so far). A child that works
    in several processes (``sipflow calls`` sharding a capture) is measured as a whole: while it
    has processes of its own, their proportional set sizes (PSS: a page shared by two counts
    half in each) are summed every ``_TREE_EVERY`` seconds, and the peak of that sum is taken
    when it exceeds the child's own peak. A timer kills the child (by its PID) after
    ``timeout`` seconds; the exit code is then -9 and stderr says so.
    """
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=REPO)
        done = threading.Event()
        tree_peak = [0]

        def watch() -> None:
            while not done.wait(_TREE_EVERY):
                pids = _descendants(proc.pid)
                if pids:
                    tree_peak[0] = max(tree_peak[0], sum(_pss_kb(pid) for pid in [proc.pid, *pids]))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            proc.kill()

        killer = threading.Timer(timeout, kill)
        killer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
            done.set()
            watcher.join()
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    if killed.is_set():
        text += f"\nkilled after {timeout:.0f} s (--timeout)"
    return proc.returncode, elapsed, max(int(usage.ru_maxrss), tree_peak[0]), text


_TREE_EVERY = 0.2
"""Seconds between two looks at a child's processes (``run_child``)."""


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux ``/proc``; none elsewhere)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            text = Path(f"/proc/{parent}/task/{parent}/children").read_text()
        except OSError:
            continue
        children = [int(c) for c in text.split()]
        out += children
        todo += children
    return out


def _pss_kb(pid: int) -> int:
    """A process's proportional set size in KiB (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def sipflow_env() -> dict[str, str]:
    """The environment for children: the work tree's sipflow first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def _error_line(text: str) -> str:
    """The last non-empty line of a traceback or message (the one that names the error), shortened."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:100] if lines else ""


def measure(
    res: Result,
    argv: list[str],
    repeat: int,
    timeout: float,
    *,
    env: dict[str, str] | None = None,
    keep_output: Path | None = None,
) -> Result:
    """Run a command ``repeat`` times, recording every wall time and the largest peak RSS.

    With ``keep_output`` the first run's stdout goes to that file (to score it), the others to /dev/null.
    """
    for i in range(repeat):
        res.load.append(os.getloadavg()[0])
        if keep_output is not None and i == 0:
            with keep_output.open("wb") as out:
                code, secs, rss, err = run_child(argv, stdout=out, timeout=timeout, env=env)
        else:
            code, secs, rss, err = run_child(argv, timeout=timeout, env=env)
        res.max_rss_kb = max(res.max_rss_kb or 0, rss)
        if code != 0:
            res.note = f"exit {code} after {secs:.0f} s: {_error_line(err)}"
            return res
        res.seconds.append(secs)
    return res


def measure_child(res: Result, mode: str, path: Path, repeat: int, timeout: float) -> Result:
    """Run this script's ``--child MODE`` (in-process timing in a fresh interpreter) ``repeat`` times."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(path)]
    for _ in range(repeat):
        res.load.append(os.getloadavg()[0])
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
        res.note = report.get("note", "")
        res.seconds.append(float(report["seconds"]))
        res.max_rss_kb = max(res.max_rss_kb or 0, rss)
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
# Files: the workloads in the cache, or a capture given on the command line
# ---------------------------------------------------------------------------------------------------
def _scale_tag(scale: float) -> str:
    return f"{scale:g}x".replace(".", "_")


def workload_path(name: str, scale: float) -> Path:
    """The cached capture of ``name`` at ``scale``."""
    return cache_dir() / f"{name}-{_scale_tag(scale)}.pcap"


def _digest(name: str) -> str:
    h = hashlib.sha256()
    for f in GENERATOR_FILES[name]:
        h.update((HERE / f).read_bytes())
    return h.hexdigest()[:16]


def _generator_argv(name: str, scale: float, path: Path) -> list[str]:
    seed = str(SEEDS[name])
    if name == "mixed":
        return [sys.executable, str(HERE / "generate.py"), "-o", str(path), "--seed", seed,
                "--calls", str(max(round(MIXED_CALLS * scale), 1)), "--rtp-per-call", str(MIXED_RTP),
                "--json", str(path.with_suffix(path.suffix + ".counts.json"))]  # fmt: skip
    return [sys.executable, str(HERE / "dense.py"), name, "-o", str(path), "--scale", f"{scale:g}",
            "--seed", seed]  # fmt: skip


def ensure_workload(name: str, scale: float) -> Path:
    """The workload's capture, generated when missing or made by other generator code or seed."""
    path = workload_path(name, scale)
    meta_path = path.with_suffix(path.suffix + ".meta.json")
    argv = _generator_argv(name, scale, path)
    meta = {"generator": _digest(name), "seed": SEEDS[name], "args": argv[2:]}
    if path.exists() and meta_path.exists():
        try:
            if json.loads(meta_path.read_text()) == meta:
                return path
        except json.JSONDecodeError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {path.name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"generator failed: {' '.join(argv)}\n{proc.stdout}{proc.stderr}")
    took = time.perf_counter() - started
    first = proc.stdout.splitlines()[0] if proc.stdout else ""
    print(f"  {first} (generator process: {took:.1f} s)", file=sys.stderr, flush=True)
    meta_path.write_text(json.dumps(meta) + "\n")
    return path


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
    """Generate the FILE given on the command line (and its ``.counts.json``) when it does not exist."""
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
# Leg pairs against the ground truth
# ---------------------------------------------------------------------------------------------------
def truth_file(pcap: Path) -> Path:
    """``NAME.truth.json`` beside ``NAME.pcap``."""
    return pcap.with_name(pcap.stem + ".truth.json")


def _pairs(groups: Iterable[Iterable[str]]) -> set[tuple[str, str]]:
    return {pair for group in groups for pair in itertools.combinations(sorted(group), 2)}


def leg_quality(output: Path, truth: Path) -> dict[str, Any]:
    """Precision and recall of the leg pairs of sipflow's JSON (``calls[].legs[].call_id``) against truth."""
    expected = _pairs(json.loads(truth.read_text())["calls"])
    data = json.loads(output.read_bytes())
    found = _pairs([leg["call_id"] for leg in c["legs"]] for c in data["calls"] if c.get("kind") == "call")
    methods: dict[str, int] = {}
    for c in data["calls"]:
        for link in c.get("correlation") or ():
            methods[link["method"]] = methods.get(link["method"], 0) + 1
    del data
    common = len(expected & found)
    return {
        "truth_pairs": len(expected),
        "found_pairs": len(found),
        "correct_pairs": common,
        "precision": common / len(found) if found else 1.0,
        "recall": common / len(expected) if expected else 1.0,
        "methods": methods,
    }


# ---------------------------------------------------------------------------------------------------
# Timing one file
# ---------------------------------------------------------------------------------------------------
def time_file(
    workload: str, scale: float, path: Path, tools: list[str], args: argparse.Namespace
) -> list[Result]:
    """Every requested tool on one file."""
    counts = file_counts(path)
    spath = str(path)
    results: list[Result] = []
    for tool in tools:
        res = Result(workload, scale, TOOL_NAMES[tool], sip_messages=counts.sip_messages)
        print(f"  {workload} {scale:g}x: {res.tool} ...", file=sys.stderr, flush=True)
        if tool == "tshark":
            exe = shutil.which("tshark")
            if exe is None:
                res.note = "skipped: tshark not installed"
            else:
                measure(res, [exe, "-q", "-z", "sip,stat", "-r", spath], args.repeat, args.timeout)
        elif tool == "tshark-rtp":
            exe = shutil.which("tshark")
            if exe is None:
                res.note = "skipped: tshark not installed"
            else:
                argv = [exe, "-q", "-o", "rtp.heuristic_rtp:TRUE", "-z", "rtp,streams", "-r", spath]
                measure(res, argv, args.repeat, args.timeout)
        elif tool == "cli-media":
            argv = [sys.executable, "-m", "sipflow", "calls", spath, "--media", "--format", "json"]
            measure(res, argv, args.repeat, args.timeout, env=sipflow_env())
        elif tool in ("cli", "cli-1"):
            argv = [sys.executable, "-m", "sipflow", "calls", spath, "--format", "json"]
            argv += ["--jobs", "1"] if tool == "cli-1" else []
            truth = truth_file(path)
            keep = path.with_name(path.stem + ".sipflow.json") if truth.exists() else None
            measure(res, argv, args.repeat, args.timeout, env=sipflow_env(), keep_output=keep)
            if keep is not None:
                if res.seconds:
                    res.quality = leg_quality(keep, truth)
                    res.note = "first run's output scored against the truth"
                keep.unlink(missing_ok=True)
        else:
            measure_child(res, tool, path, args.repeat, args.timeout)
        if res.seconds:
            print(f"    median {res.median:.2f} s, peak RSS {(res.max_rss_kb or 0) / 1024:,.0f} MB",
                  file=sys.stderr, flush=True)  # fmt: skip
        results.append(res)
    if args.peers:
        for peer in PEERS:
            res = Result(workload, scale, peer, sip_messages=counts.sip_messages)
            exe = shutil.which(peer)
            if exe is None:
                res.note = "skipped: not installed"
            else:  # sngrep without its UI: read the file, keep only SIP, write a pcap to /dev/null
                measure(res, [exe, "-N", "-q", "-I", spath, "-O", os.devnull], args.repeat, args.timeout)
            results.append(res)
    return results


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------
def _table(rows: list[tuple[str, ...]], right: set[int]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.rjust(w) if j in right else c.ljust(w) for j, (c, w) in pairs]
        print("  ".join(cells).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _tshark_median(results: list[Result], r: Result) -> float | None:
    """tshark's median on the same file: ``-z rtp,streams`` for the media tools, else ``-z sip,stat``."""
    media = r.tool in (TOOL_NAMES["tshark-rtp"], TOOL_NAMES["cli-media"])
    peer = TOOL_NAMES["tshark-rtp" if media else "tshark"]
    for other in results:
        if other.workload == r.workload and other.scale == r.scale and other.tool == peer:
            return other.median
    return None


def _mb(kb: int | None) -> str:
    return f"{kb / 1024:,.0f}" if kb else "-"


def _load(r: Result) -> str:
    return f"{max(r.load):.1f}" if r.load else "-"


def print_main(results: list[Result], repeat: int) -> None:
    """The side-by-side table."""
    print(f"median of {repeat} run(s); peak RSS: the largest of the runs (of a run in several processes, "
          "their summed PSS); load: the highest 1-minute load "
          f"average as a run started; python {sys.version.split()[0]}; {os.cpu_count()} CPUs\n")  # fmt: skip
    rows: list[tuple[str, ...]] = [
        ("workload", "scale", "SIP msgs", "tool", "median wall s", "peak RSS MB", "x tshark", "load", "note")
    ]
    for r in results:
        ts = _tshark_median(results, r)
        med = r.median
        ratio = f"{med / ts:.2f}" if med is not None and ts else "-"
        rows.append(
            (
                r.workload,
                f"{r.scale:g}x",
                f"{r.sip_messages:,}" if r.sip_messages else "?",
                r.tool,
                f"{med:.2f}" if med is not None else "-",
                _mb(r.max_rss_kb),
                ratio,
                _load(r),
                r.note,
            )
        )
    _table(rows, {1, 2, 4, 5, 6, 7})
    _print_quality(results)


def _print_quality(results: list[Result]) -> None:
    for r in results:
        q = r.quality
        if q:
            methods = ", ".join(f"{k} {v:,}" for k, v in sorted(q["methods"].items())) or "none"
            print(
                f"\n{r.workload} {r.scale:g}x leg pairs: precision {q['precision']:.4f}, "
                f"recall {q['recall']:.4f} "
                f"({q['correct_pairs']:,} correct of {q['found_pairs']:,} found, {q['truth_pairs']:,} in the "
                f"truth; links by {methods})"
            )


def print_scaling(results: list[Result]) -> None:
    """Time and memory per message at each size, and each size against the one before."""
    rows: list[tuple[str, ...]] = [
        ("workload", "scale", "SIP msgs", "tool", "median s", "us/msg", "peak RSS MB", "KB/msg",
         "time vs prev", "RSS vs prev", "x tshark", "load", "note")
    ]  # fmt: skip
    prev: dict[tuple[str, str], Result] = {}
    for r in results:
        med, n = r.median, r.sip_messages
        key = (r.workload, r.tool)
        before = prev.get(key)
        t_ratio = rss_ratio = "-"
        if before is not None and med is not None and before.median:
            t_ratio = f"{med / before.median:.2f} ({r.scale / before.scale:g}x msgs)"
        if before is not None and r.max_rss_kb and before.max_rss_kb:
            rss_ratio = f"{r.max_rss_kb / before.max_rss_kb:.2f}"
        prev[key] = r
        ts = _tshark_median(results, r)
        rows.append(
            (
                r.workload,
                f"{r.scale:g}x",
                f"{n:,}" if n else "?",
                r.tool,
                f"{med:.2f}" if med is not None else "-",
                f"{med / n * 1e6:.1f}" if med is not None and n else "-",
                _mb(r.max_rss_kb),
                f"{r.max_rss_kb / n:.2f}" if r.max_rss_kb and n else "-",
                t_ratio,
                rss_ratio,
                f"{med / ts:.2f}" if med is not None and ts else "-",
                _load(r),
                r.note,
            )
        )
    _table(rows, {1, 2, 4, 5, 6, 7, 10, 11})
    _print_quality(results)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("file", nargs="?", type=Path, default=None, help="time this capture, not the workloads")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset of these")
    p.add_argument("--scale", type=float, default=None, help="workload size (default 1; --quick: small)")
    p.add_argument("--quick", action="store_true", help="small sizes, one run: well under a minute")
    p.add_argument("--scaling", action="store_true", help="sip-dense and b2bua-dense at 1x, 2x and 4x")
    p.add_argument("--repeat", type=int, default=None, help="runs per tool; the median is shown (default 3)")
    p.add_argument("--only", default="tshark,cli,cli-1", help=f"comma-separated subset of {','.join(TOOLS)}")
    p.add_argument("--peers", action="store_true", help=f"also time peers found on PATH ({', '.join(PEERS)})")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before one run is killed")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    g = p.add_argument_group("generation of FILE (only when it is missing)")
    g.add_argument("--calls", type=int, default=14_300)
    g.add_argument("--rtp-per-call", type=int, default=50)
    g.add_argument("--seed", type=int, default=20240601)
    g.add_argument("--tcp-fraction", type=float, default=0.0)
    p.add_argument("--child", choices=("lib", "reader"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        return child_main(args.child, args.file)

    tools = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        p.error(f"unknown tool(s) in --only: {', '.join(unknown)}")
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = sorted(set(workloads) - set(WORKLOADS))
    if unknown:
        p.error(f"unknown workload(s): {', '.join(unknown)}")
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3

    results: list[Result] = []
    if args.file is not None:
        args.file = args.file.resolve()
        ensure_file(args)
        results = time_file(args.file.name, 1.0, args.file, tools, args)
        print()
        print_main(results, args.repeat)
    elif args.scaling:
        for name in [w for w in SCALING_WORKLOADS if w in workloads]:
            base = args.scale or (QUICK_SCALE[name] if args.quick else 1.0)
            for factor in (1, 2, 4):
                scale = base * factor
                results += time_file(name, scale, ensure_workload(name, scale), tools, args)
        print()
        print_scaling(results)
    else:
        for name in workloads:
            scale = args.scale or (QUICK_SCALE[name] if args.quick else 1.0)
            results += time_file(name, scale, ensure_workload(name, scale), tools, args)
        print()
        print_main(results, args.repeat)
    if args.json is not None:
        payload = {"repeat": args.repeat, "results": [asdict(r) | {"median": r.median} for r in results]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
