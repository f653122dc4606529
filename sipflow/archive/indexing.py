"""``index``: captures into an archive, incrementally.

1. Find the captures; those whose size, mtime and head hash the archive knows are skipped.
2. Read the others (``scale.run_reads``: here, a process pool or Dask); each file's packets
   and RTP streams go in with its row in a transaction of its own, marked not yet reduced.
3. The reduction: the Call-IDs of the packets not reduced yet (and of files replaced), the
   calls near them in time (timers and correlation look a few seconds either way; a file
   appended to moves the capture's end) and every leg of the calls these touch are analysed
   again from their stored packets, as ``analyze`` would analyse all the files at once
   (``pipeline.analyze_sources``). Their derived rows replace the old ones and the calls are
   numbered again, in one transaction: an interrupted run leaves files not reduced, which
   the next run reduces.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from sipflow.archive.derived import PacketRef, Rows, call_rows, finding_rows
from sipflow.archive.files import FileCapture, discover, fingerprint
from sipflow.archive.scale import run_reads
from sipflow.archive.schema import DERIVED
from sipflow.archive.store import StoredCapture, StoredFile, connect, insert_arrow, json_text, stored_files
from sipflow.correlate import CorrelationOptions

if TYPE_CHECKING:
    import duckdb

    from sipflow.model.message import Message

HORIZON_S: Final = 300.0
"""Seconds before (and after) new packets within which calls are analysed again: more than
the protocol timers (64·T1 = 32 s), the correlation windows and the transfer window."""

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexReport:
    """What one ``index`` run did."""

    files: int
    """Captures found."""
    indexed: tuple[str, ...]
    """Read into the archive (new or changed)."""
    unchanged: int
    failed: tuple[str, ...] = ()
    """One line each: a file that could not be read (skipped)."""
    warnings: tuple[str, ...] = ()
    """Damage inside files read (reported, the rest kept)."""
    packets: int = 0
    """SIP packets read in this run."""
    frames: int = 0
    """Frames read in this run."""
    reduced_call_ids: int = 0
    """Call-IDs analysed again."""
    calls: int = 0
    """Items in the archive now."""
    read_seconds: float = 0.0
    reduce_seconds: float = 0.0
    seconds: float = 0.0


@dataclass(slots=True)
class _Plan:
    to_read: list[str] = field(default_factory=list)
    unchanged: int = 0


FileProgress = Callable[[FileCapture, int, int], None]
"""Called after each file read: (the file's result, files done, files to read)."""


def index(
    inputs: Sequence[str],
    db: str,
    *,
    correlation: CorrelationOptions | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    progress: FileProgress | None = None,
) -> IndexReport:
    """Index the captures named by ``inputs`` (files, folders, glob patterns) into the archive
    ``db`` (made when missing). Returns what was done; a file that cannot be read is listed in
    ``failed`` and skipped. Raises ``UsageError`` when an input names nothing, ``ArchiveError``
    for a database that is not an archive of this version."""
    start = time.perf_counter()
    paths = discover(inputs)
    con = connect(db, create=True)
    try:
        plan = _plan(con, paths)
        failed: list[str] = []
        failed_paths: set[str] = set()
        warnings: list[str] = []
        packets = frames = 0
        read_start = time.perf_counter()
        ids = _file_ids(con, plan.to_read)
        for done, capture in enumerate(run_reads(plan.to_read, jobs=jobs, scheduler=scheduler), start=1):
            if capture.error is not None:
                failed.append(capture.error)
                failed_paths.add(capture.path)
            else:
                _store_file(con, capture, ids[capture.path])
                packets += capture.rows
                frames += capture.frames
                warnings += [_warning_line(capture.path, w) for w in capture.warnings]
            if progress is not None:
                progress(capture, done, len(plan.to_read))
        read_seconds = time.perf_counter() - read_start
        reduce_start = time.perf_counter()
        reduced = reduce_pending(con, correlation)
        calls_row = con.execute("SELECT count(*) FROM calls").fetchall()[0]
        return IndexReport(
            files=len(paths),
            indexed=tuple(p for p in plan.to_read if p not in failed_paths),
            unchanged=plan.unchanged,
            failed=tuple(failed),
            warnings=tuple(warnings),
            packets=packets,
            frames=frames,
            reduced_call_ids=reduced,
            calls=calls_row[0] if calls_row else 0,
            read_seconds=read_seconds,
            reduce_seconds=time.perf_counter() - reduce_start,
            seconds=time.perf_counter() - start,
        )
    finally:
        con.close()


def _warning_line(path: str, warning: tuple[str, int | None, int | None]) -> str:
    message, frame, offset = warning
    where = [path]
    if frame is not None:
        where.append(f"frame {frame}")
    if offset is not None:
        where.append(f"byte offset {offset}")
    return f"{', '.join(where)}: {message}"


def _plan(con: duckdb.DuckDBPyConnection, paths: Sequence[str]) -> _Plan:
    known = {
        row[0]: (row[1], row[2], row[3])
        for row in con.execute("SELECT abspath, size, mtime_ns, head_hash FROM files").fetchall()
    }
    plan = _Plan()
    for path in paths:
        try:
            fp = fingerprint(path)
        except OSError:
            plan.to_read.append(path)  # its read reports why
            continue
        if known.get(os.path.abspath(path)) == (fp.size, fp.mtime_ns, fp.head_hash):
            plan.unchanged += 1
        else:
            plan.to_read.append(path)
    return plan


def _file_ids(con: duckdb.DuckDBPyConnection, paths: Sequence[str]) -> dict[str, int]:
    """The file_id each path to read will have: its old one if it was indexed, else the next
    free one, in path order (so that any order of reading gives the same archive)."""
    known = dict(con.execute("SELECT abspath, file_id FROM files").fetchall())
    row = con.execute("SELECT coalesce(max(file_id), 0) FROM files").fetchall()[0]
    next_id = (row[0] if row else 0) + 1
    out = {}
    for path in paths:
        old = known.get(os.path.abspath(path))
        if old is not None:
            out[path] = old
        else:
            out[path] = next_id
            next_id += 1
    return out


def _store_file(con: duckdb.DuckDBPyConnection, capture: FileCapture, file_id: int) -> None:
    """The file's row and packets, replacing what an earlier version of it left, in one
    transaction; the Call-IDs it had are left pending, to be analysed again."""
    import datetime  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    from sipflow.archive.files import PACKET_COLUMNS  # noqa: PLC0415
    from sipflow.archive.media import STREAM_COLUMNS  # noqa: PLC0415

    table = capture.packets
    assert table is not None
    table = table.add_column(0, "file_id", pa.array([file_id] * table.num_rows, pa.int32()))
    times = table.column("time_ns")
    first = pc.min(times).as_py() if table.num_rows else None
    last = pc.max(times).as_py() if table.num_rows else None
    con.begin()
    try:
        con.execute(
            """INSERT INTO pending
               SELECT DISTINCT call_id FROM packets WHERE file_id = ? AND call_id IS NOT NULL""",
            [file_id],
        )
        con.execute("DELETE FROM packets WHERE file_id = ?", [file_id])
        con.execute("DELETE FROM media_streams WHERE file_id = ?", [file_id])
        con.execute("DELETE FROM files WHERE file_id = ?", [file_id])
        fp = capture.fingerprint
        con.execute(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                file_id,
                capture.path,
                os.path.abspath(capture.path),
                fp.size,
                fp.mtime_ns,
                fp.head_hash,
                capture.format,
                list(capture.interfaces),
                list(capture.seen_interfaces),
                capture.frames,
                capture.sip_packets,
                json_text(capture.non_sip),
                json_text(capture.unsupported),
                capture.truncated,
                json_text([list(w) for w in capture.warnings]),
                "{}",
                first,
                last,
                datetime.datetime.now(datetime.UTC).replace(tzinfo=None),
                capture.seconds,
                False,
            ],
        )
        insert_arrow(con, "packets", table, ("file_id", *PACKET_COLUMNS))
        if capture.streams is not None:
            streams = capture.streams
            ids = pa.array([file_id] * streams.num_rows, pa.int32())
            streams = streams.add_column(0, "file_id", ids)
            insert_arrow(con, "media_streams", streams, ("file_id", *STREAM_COLUMNS))
        con.commit()
    except BaseException:
        con.rollback()
        raise


def reduce_pending(con: duckdb.DuckDBPyConnection, correlation: CorrelationOptions | None) -> int:
    """Analyse again what the files not yet reduced touch (module doc, step 3); returns how
    many Call-IDs were. One transaction."""
    from sipflow.pipeline import gc_paused  # noqa: PLC0415

    con.begin()
    try:
        # The analysis, the rules and the rows build a large acyclic graph, as ``analyze`` does.
        with gc_paused():
            count = _reduce(con, correlation)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return count


def _scope(con: duckdb.DuckDBPyConnection) -> int:
    """Fill the temporary table ``scope_ids`` with the Call-IDs to analyse again."""
    con.execute("CREATE OR REPLACE TEMP TABLE scope_ids (call_id VARCHAR PRIMARY KEY)")
    con.execute(
        """INSERT OR IGNORE INTO scope_ids
           SELECT DISTINCT call_id FROM packets JOIN files USING (file_id)
           WHERE NOT files.reduced AND call_id IS NOT NULL
           UNION SELECT call_id FROM pending"""
    )
    span = con.execute(
        "SELECT min(first_ns), max(last_ns) FROM files WHERE NOT reduced AND first_ns IS NOT NULL"
    ).fetchall()[0]
    old_end = con.execute("SELECT max(last_ns) FROM files WHERE reduced").fetchall()[0]
    horizon = int(HORIZON_S * _NS)
    if span is not None and span[0] is not None:
        lo, hi = span[0] - horizon, span[1] + horizon
        # Calls near the new packets in time, and those near the old end of the capture when
        # the new packets move it (their timers ran on that end).
        windows = [(lo, hi)]
        if old_end is not None and old_end[0] is not None and span[1] > old_end[0]:
            windows.append((old_end[0] - horizon, span[1] + horizon))
        for a, b in windows:
            con.execute(
                """INSERT OR IGNORE INTO scope_ids
                   SELECT DISTINCT call_id FROM legs WHERE last_ns >= ? AND first_ns <= ?""",
                [a, b],
            )
    # Every leg of a call any of these is in; then, once, the legs set up within the horizon of
    # those legs (the candidates a B2BUA leg competed with), and their calls' legs.
    for step in range(2):
        _close_over_calls(con)
        if step == 0:
            con.execute(
                """INSERT OR IGNORE INTO scope_ids
                   SELECT DISTINCT o.call_id FROM legs o JOIN
                     (SELECT l.first_ns FROM legs l JOIN scope_ids USING (call_id)) s
                   ON o.first_ns BETWEEN s.first_ns - ? AND s.first_ns + ?""",
                [horizon // 10, horizon // 10],
            )
    row = con.execute("SELECT count(*) FROM scope_ids").fetchall()[0]
    return row[0] if row else 0


def _close_over_calls(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """INSERT OR IGNORE INTO scope_ids
           SELECT DISTINCT l.call_id FROM legs l WHERE l.call_key IN
             (SELECT call_key FROM legs JOIN scope_ids USING (call_id))"""
    )


def _reduce(con: duckdb.DuckDBPyConnection, correlation: CorrelationOptions | None) -> int:
    from sipflow.checks.rules import run_rules  # noqa: PLC0415
    from sipflow.pipeline import AnalysisOptions, analyze_sources  # noqa: PLC0415

    count = _scope(con)
    if count == 0:
        con.execute("UPDATE files SET reduced = true WHERE NOT reduced")
        return 0
    files = stored_files(con)
    in_scope = {
        row[0]
        for row in con.execute(
            "SELECT DISTINCT file_id FROM packets JOIN scope_ids USING (call_id)"
        ).fetchall()
    }
    skews = _skews(con, files)
    sources = [StoredCapture(con, f, scoped=True) for f in files if f.file_id in in_scope]
    end_row = con.execute("SELECT max(timestamp) FROM packets").fetchall()[0]
    capture_end = end_row[0] if end_row else None
    options = AnalysisOptions(
        correlation=correlation,
        skew={name: value for s in sources for name, value in skews.get(s.file.file_id, {}).items()},
        max_call_ids=None,
    )
    analysis = analyze_sources(sources, options, capture_end=capture_end)
    by_name = {s.name: s for s in sources}
    multi = {f.path: len(f.interfaces) > 1 for f in files}
    frame_interfaces: dict[str, dict[int, int]] = {}

    def locate(message: Message) -> PacketRef:
        source = by_name[message.file]
        seq, interface = source.seq_of(message.frame, message.sip.raw)
        return PacketRef(source.file.file_id, seq, interface)

    def interface_of(file: str, frame: int) -> int:
        known = frame_interfaces.get(file)
        if known is None:
            known = frame_interfaces[file] = by_name[file].frame_interfaces() if file in by_name else {}
        return known.get(frame, 0)

    # The calls these Call-IDs were in go; the analysis's take their place.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE old_keys AS
           SELECT DISTINCT call_key FROM legs JOIN scope_ids USING (call_id)"""
    )
    for table in DERIVED:
        con.execute(f"DELETE FROM {table} WHERE call_key IN (SELECT call_key FROM old_keys)")
    key_row = con.execute(
        "SELECT coalesce(max(call_key), 0), coalesce(max(position), -1) FROM "
        "(SELECT max(call_key) AS call_key, NULL AS position FROM calls UNION ALL "
        "SELECT NULL, max(position) FROM messages)"
    ).fetchall()[0]
    base_key, last_position = (key_row[0], key_row[1]) if key_row else (0, -1)
    rows = Rows()
    keys: dict[int, int] = {}
    for n, call in enumerate(analysis.calls, start=1):
        keys[call.index] = base_key + n
        call_rows(
            rows,
            call,
            base_key + n,
            locate=locate,
            interface_of=interface_of,
            multi=multi,
            position_base=last_position + 1,
        )
    finding_rows(rows, [f for f in run_rules(analysis) if f.call_index is not None], keys)
    for name, table in rows.tables().items():
        insert_arrow(con, name, table, table.column_names)
    _number_calls(con)
    con.execute("DELETE FROM pending")
    con.execute("UPDATE files SET reduced = true WHERE NOT reduced")
    return count


def _skews(con: duckdb.DuckDBPyConnection, files: Sequence[StoredFile]) -> dict[int, dict[str, float]]:
    """Each file's capture points' skews: those of files reduced before as they were set, the
    others' estimated (``merge.estimate_skew``, as ``analyze`` estimates them) from the first
    packets of the files not reduced yet and of those overlapping them in time; stored."""
    from sipflow.capture.types import Endpoint  # noqa: PLC0415
    from sipflow.merge import PRESCAN_PACKETS, DuplicateKey, estimate_skew  # noqa: PLC0415
    from sipflow.pipeline import CapturePoints  # noqa: PLC0415

    points = CapturePoints([StoredCapture(con, f, scoped=False) for f in files])
    out = {f.file_id: dict(f.skews) for f in files}
    new = [f for f in files if not f.reduced]
    if len(points.names) < 2 or not new:
        return out
    fixed = {name: value for f in files if f.reduced for name, value in f.skews.items()}
    fixed.update(
        {name: 0.0 for f in files if f.reduced for name in points.by_file[f.path] if name not in fixed}
    )
    lo = min((f.first_ns for f in new if f.first_ns is not None), default=None)
    hi = max((f.last_ns for f in new if f.last_ns is not None), default=None)

    def near(f: StoredFile) -> bool:
        if not f.reduced:
            return True
        if lo is None or hi is None or f.first_ns is None or f.last_ns is None:
            return False
        return f.last_ns >= lo - _NS and f.first_ns <= hi + _NS

    def samples() -> Iterator[tuple[str, Any, float]]:
        # ``merge.duplicate_key`` of the file's first messages, from the columns stored with them.
        for f in files:
            if not near(f):
                continue
            rows = con.execute(
                """SELECT interface, timestamp, call_id, cseq, cseq_method, method, status, branch,
                          src_host, src_port, dst_host, dst_port
                   FROM (SELECT * FROM packets WHERE file_id = ? AND call_id IS NOT NULL
                         ORDER BY seq LIMIT ?)
                   WHERE cseq IS NOT NULL AND call_id <> '' ORDER BY seq""",
                [f.file_id, PRESCAN_PACKETS],
            ).fetchall()
            for iface, ts, call_id, seq, cseq_method, method, status, branch, sh, sp, dh, dp in rows:
                src, dst = Endpoint(sh, sp), Endpoint(dh, dp)
                key = DuplicateKey(call_id, seq, cseq_method, method, status, branch, src, dst)
                yield points.name(f.path, iface), key, ts

    names = points.names
    if all(n in fixed for n in names[1:]):
        return out
    estimated = estimate_skew(samples(), names, fixed=fixed)
    for f in new:
        own = {n: estimated[n] for n in points.by_file[f.path] if estimated.get(n)}
        out[f.file_id] = own
        con.execute("UPDATE files SET skews = ? WHERE file_id = ?", [json_text(own), f.file_id])
    return out


def _number_calls(con: duckdb.DuckDBPyConnection) -> None:
    """Every call's number (``call_index``): its place in start order, as ``analyze`` numbers."""
    con.execute(
        """UPDATE calls SET call_index = r.n FROM
             (SELECT call_key, row_number() OVER (ORDER BY order_start, order_file, order_seq, call_key) AS n
              FROM calls) r
           WHERE calls.call_key = r.call_key AND calls.call_index <> r.n"""
    )
