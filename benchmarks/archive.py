"""Archive benchmark: index a rotated sip-dense capture, then answer questions from the archive,
side by side with tshark reading the captures again for each question.

The workload is ``sip-dense`` (``dense.py``: a busy SBC port, every call with its own Call-ID,
tags and branches) at ``--scale``, cut into ``--files`` consecutive files with ``editcap -c``
as a probe rotating its capture would leave it (calls cross the cuts). Then, one process each:

- ``sipflow index`` with ``--jobs 1``, ``--jobs 2`` and ``--scheduler local:2`` (a Dask
  LocalCluster of two workers): wall time, peak RSS of the main process, files/s and SIP
  packets/s of the read stage, and the time of the reduction (calls across files);
- an incremental run: the archive of all files but the last, then the last one added;
- questions: a call by Call-ID, calls to a number that failed, one call's ladder, a SQL count
  by state, and every call as JSON, each from the archive (``--db``) and from the files (tshark
  with a display filter, and ``sipflow calls`` on the files).

    python benchmarks/archive.py                 # sip-dense at 0.2x (137k messages), 20 files
    python benchmarks/archive.py --scale 1       # 686k messages: several minutes
    python benchmarks/archive.py --quick         # 0.02x, to see that it works
    python benchmarks/archive.py --scale 3 --files 30 --runs 6 --archive-only
                                                 # 2M messages indexed in 6 runs of 5 files, as a
                                                 # probe's cron job would; questions from the
                                                 # archive and tshark only (~15 minutes)

``--runs K`` indexes the files in K runs one after another (incremental, each adding the next
files in order) and times each; ``--archive-only`` leaves out the one-run indexing rows and the
column of sipflow on the files (which rereads everything, minutes at that size).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  # the workloads, run_child, the table printer

TIMEOUT = 3600.0


def split(capture: Path, folder: Path, files: int) -> list[Path]:
    """``capture`` cut into ``files`` consecutive files (``editcap -c``)."""
    frames = run.pcap_frames(capture) or run.capinfos_frames(capture)
    if frames is None:
        sys.exit(f"cannot count the frames of {capture}")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    per = -(-frames // files)
    subprocess.run(["editcap", "-c", str(per), str(capture), str(folder / "part.pcap")], check=True)
    return sorted(folder.glob("part*.pcap"))


def sipflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "sipflow", *args]


def timed(argv: list[str], *, capture_output: bool = False) -> tuple[float, int, str]:
    """(wall s, peak RSS KiB, stdout or stderr text) of one run; exits on failure."""
    with tempfile.TemporaryFile() as out:
        code, wall, rss, err = run.run_child(argv, stdout=out, timeout=TIMEOUT, env=run.sipflow_env())
        out.seek(0)
        text = out.read().decode(errors="replace")
    if code not in (0, 1):
        sys.exit(f"failed ({code}): {' '.join(argv)}\n{err}")
    return wall, rss, text if capture_output else err


_REPORT = re.compile(
    r"(?P<read>\d+) of (?P<files>\d+) files read .*?: (?P<packets>[\d,]+) SIP packets of [\d,]+ frames in "
    r"(?P<read_s>[\d.]+) s .*?; (?P<ids>[\d,]+) Call-IDs analysed in (?P<reduce_s>[\d.]+) s"
)


def index_row(label: str, db: Path, parts: list[Path], extra: list[str]) -> tuple[str, ...]:
    if db.exists():
        db.unlink()
    wall, rss, text = timed(sipflow("index", *map(str, parts), "--db", str(db), *extra), capture_output=True)
    m = _REPORT.search(text)
    if m is None:
        sys.exit(f"unexpected report: {text}")
    files, read_s = int(m["read"]), float(m["read_s"])
    packets = int(m["packets"].replace(",", ""))
    return (
        label, f"{wall:.2f}", run._mb(rss), f"{files / read_s:,.1f}", f"{packets / read_s:,.0f}", m["read_s"],
        m["reduce_s"], m["ids"],
    )  # fmt: skip


def add_row(label: str, db: Path, parts: list[Path]) -> tuple[str, ...]:
    """One incremental run over ``parts`` into the existing ``db``: only new files are read."""
    wall, rss, text = timed(
        sipflow("index", *map(str, parts), "--db", str(db), "--jobs", "2"), capture_output=True
    )
    m = _REPORT.search(text)
    if m is None:
        sys.exit(f"unexpected report: {text}")
    return (label, f"{wall:.2f}", run._mb(rss), "-", "-", m["read_s"], m["reduce_s"], m["ids"])


def run_sql(db: Path, query: str) -> str:
    _, _, text = timed(sipflow("sql", "--db", str(db), "--format", "csv", query), capture_output=True)
    return text.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=0.2, help="sip-dense at this scale (1: 686k messages)")
    p.add_argument("--files", type=int, default=20, help="rotated files to cut it into")
    p.add_argument("--quick", action="store_true", help="--scale 0.02")
    p.add_argument("--runs", type=int, default=0, help="also index the files in this many runs, in order")
    p.add_argument("--archive-only", action="store_true", help="no one-run indexing, no sipflow on the files")
    args = p.parse_args(argv)
    if args.quick:
        args.scale = 0.02
    if args.archive_only and not args.runs:
        p.error("--archive-only needs --runs")
    for tool in ("editcap", "tshark"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed (apt-get install tshark)")
    capture = run.ensure_workload("sip-dense", args.scale)
    work = run.cache_dir() / f"archive-{run._scale_tag(args.scale)}"
    parts = split(capture, work / "parts", args.files)
    messages = run.tshark_sip_messages(capture)
    print(f"workload: sip-dense at {args.scale:g}x, {messages:,} SIP messages, {len(parts)} files "
          f"({capture.stat().st_size / 1e6:,.0f} MB)\n")  # fmt: skip

    print("Indexing (read: per-file tasks; reduce: calls across files, in the main process)\n")
    db = work / "archive.duckdb"
    rows = [("run", "wall s", "peak RSS MB", "files/s", "packets/s", "read s", "reduce s", "Call-IDs")]
    if not args.archive_only:
        rows.append(index_row("index --jobs 1", work / "j1.duckdb", parts, ["--jobs", "1"]))
        rows.append(index_row("index --jobs 2", work / "j2.duckdb", parts, ["--jobs", "2"]))
        rows.append(index_row("index --scheduler local:2", db, parts, ["--scheduler", "local:2"]))
        base = work / "incremental.duckdb"
        index_row("(all but the last file)", base, parts[:-1], ["--jobs", "2"])
        rows.append(add_row("incremental: the last file added", base, parts))
    if args.runs:
        db = work / "runs.duckdb"
        if db.exists():
            db.unlink()
        per = -(-len(parts) // args.runs)
        for k in range(0, len(parts), per):
            label = f"run {k // per + 1}: files {k + 1}-{min(k + per, len(parts))} added"
            rows.append(add_row(label, db, parts[: k + per]))
    run._table(rows, right={1, 2, 3, 4, 5, 6, 7})
    messages_in = int(run_sql(db, "SELECT count(*) FROM messages"))
    items = int(run_sql(db, "SELECT count(*) FROM calls"))
    archive_mb = db.stat().st_size / 1e6
    captures_mb = sum(p.stat().st_size for p in parts) / 1e6
    print(
        f"\narchive: {messages_in:,} messages, {items:,} items, {archive_mb:,.0f} MB "
        f"for {captures_mb:,.0f} MB of captures\n"
    )

    _, _, ids = timed(sipflow("sql", "--db", str(db), "--format", "csv",
                              "SELECT id, call_index, to_user FROM calls WHERE kind = 'call' "
                              "ORDER BY call_index LIMIT 1 OFFSET 777"), capture_output=True)  # fmt: skip
    call_id, number, to_user = ids.strip().splitlines()[-1].split(",")
    to_part = (to_user or "49")[-6:]
    files = [str(p) for p in parts]
    questions = [
        ("a call by its Call-ID",
         sipflow("calls", "--db", str(db), "--call-id", call_id, "--format", "json"),
         ["tshark", "-r", str(capture), "-Y", f'sip.Call-ID == "{call_id}"'],
         sipflow("calls", *files, "--call-id", call_id, "--format", "json")),
        (f"failed calls to ...{to_part}",
         sipflow("calls", "--db", str(db), "--to", to_part, "--status", "4xx", "--format", "json"),
         ["tshark", "-r", str(capture), "-Y", f'sip.To contains "{to_part}" && sip.Status-Code >= 400'],
         sipflow("calls", *files, "--to", to_part, "--status", "4xx", "--format", "json")),
        (f"the ladder of call {number}",
         sipflow("ladder", "--db", str(db), "--call", number, "--plain"),
         ["tshark", "-r", str(capture), "-Y", f'sip.Call-ID == "{call_id}"', "-V"],
         sipflow("ladder", *files, "--call", number, "--plain")),
        ("calls by state (SQL)",
         sipflow("sql", "--db", str(db), "SELECT state, count(*) FROM calls GROUP BY state"),
         ["tshark", "-r", str(capture), "-q", "-z", "sip,stat"],
         sipflow("stats", *files)),
        ("every call as JSON",
         sipflow("calls", "--db", str(db), "--format", "json", "--all"),
         ["tshark", "-r", str(capture), "-q", "-z", "sip,stat"],
         sipflow("calls", *files, "--format", "json", "--all")),
    ]  # fmt: skip
    print("Questions (wall s, peak RSS MB; tshark reads the whole capture for each, with a display filter)\n")
    rows = [("question", "archive s", "RSS", "tshark s", "RSS", "sipflow on files s", "RSS")]
    for label, from_db, with_tshark, from_files in questions:
        a = timed(from_db)
        t = timed(with_tshark)
        f = None if args.archive_only else timed(from_files)
        rows.append(
            (label, f"{a[0]:.2f}", run._mb(a[1]), f"{t[0]:.2f}", run._mb(t[1]),
             "-" if f is None else f"{f[0]:.2f}", "-" if f is None else run._mb(f[1]))
        )  # fmt: skip
    run._table(rows, right={1, 2, 3, 4, 5, 6})
    return 0


if __name__ == "__main__":
    sys.exit(main())
