"""Reading an archive: the calls a query selects, as the ``Analysis`` analysing the files
would give (``load``), and SQL over the tables (``sql``).

``load`` narrows in SQL (kind, number, Call-ID, From/To, state, start time, status), then reads
the chosen calls' stored messages back and feeds them, call by call in their analysis order,
to a ``Tracker`` ending at the archive's capture end: a Call-ID's transactions, dialogs and leg
depend on its messages alone, so they come out as the whole analysis made them. The legs go
together into calls as the index stored them (its correlation, its numbers), never correlated
again. Filters SQL cannot test (header text) are left to ``Analysis.select`` after. With
``media``, the streams of the chosen calls (linked in SQL as ``model.media`` links them among
every call: ``archive.schema.owner_sql``) and those no SDP describes come back as measured.
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from sipflow.archive.derived import point_name
from sipflow.archive.media import SELECT_STREAM, restore_stream
from sipflow.archive.schema import owner_sql
from sipflow.archive.store import StoredCapture, StoredFile, connect, stored_files
from sipflow.capture.types import CaptureWarning, restore_sip_payload
from sipflow.model.analysis import Analysis, Summary, status_matcher
from sipflow.model.call import Call, CallKind, CallState, Link, build_call
from sipflow.model.message import Malformed
from sipflow.model.tracker import Tracker
from sipflow.readahead import parse_packet

if TYPE_CHECKING:
    import duckdb

    from sipflow.media.collector import RtpStream

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """Which items of an archive: ``Analysis.select``'s filters (``Selection``'s fields)."""

    all_kinds: bool = False
    call_id: str | None = None
    from_: str | None = None
    to: str | None = None
    state: tuple[str, ...] = ()
    index: int | None = None
    since: float | None = None
    until: float | None = None
    status: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(query: Query) -> tuple[str, list[Any]]:
    """The SQL condition on ``calls c`` that narrows to what ``query`` may select."""
    clauses: list[str] = []
    params: list[Any] = []
    if query.index is not None:
        clauses.append("c.call_index = ?")
        params.append(query.index)
    elif not query.all_kinds and query.call_id is None:
        clauses.append("c.kind = ?")
        params.append(CallKind.CALL.value)
    if query.call_id is not None:
        clauses.append("list_contains(c.call_ids, ?)")
        params.append(query.call_id)
    for which, text in (("from", query.from_), ("to", query.to)):
        if text is None:
            continue
        clauses.append(
            f"""c.call_key IN (SELECT call_key FROM legs WHERE lower({which}_uri) LIKE ? ESCAPE '\\'
                OR lower({which}_user) LIKE ? ESCAPE '\\' OR lower({which}_display) LIKE ? ESCAPE '\\')"""
        )
        params += [_like(text)] * 3
    if query.state:
        states = [CallState(s).value for s in query.state]
        clauses.append(f"c.state IN ({', '.join('?' for _ in states)})")
        params += states
    if query.since is not None:
        clauses.append("c.start_ns >= ?")
        params.append(int(query.since * _NS) - 1000)  # the float's own noise: the exact test follows
    if query.until is not None:
        clauses.append("c.start_ns < ?")
        params.append(int(query.until * _NS) + 1000)
    if query.status is not None:
        status_matcher(query.status)  # a bad one raises here
        text = query.status.strip().lower()
        if text.isdigit() and len(text) == 3:
            clauses.append("c.final_status = ?")
            params.append(int(text))
        else:
            klass = int(text[0])
            clauses.append("c.final_status BETWEEN ? AND ?")
            params += [klass * 100, klass * 100 + 99]
    return (" AND ".join(clauses) or "true"), params


def load(db: str, query: Query | None = None, *, media: bool = False) -> Analysis:
    """The analysis of the archive ``db`` holding the items ``query`` selects (all items, of
    every kind, when None) and, as analysing all its files would, its summary, malformed
    packets and warnings. With ``media``, as ``analyze(media=True)``: the RTP streams of those
    items, and those no SDP of the archive describes. Raises ``UsageError`` for a missing
    archive, ``ArchiveError`` for a file that is not one."""
    con = connect(db, create=False, read_only=True)
    try:
        return _load(con, query or Query(all_kinds=True), media)
    finally:
        con.close()


def _load(con: duckdb.DuckDBPyConnection, query: Query, media: bool) -> Analysis:
    where, params = _where(query)
    call_rows = con.execute(
        f"""SELECT call_key, call_index, call_ids, related FROM calls c WHERE {where} ORDER BY call_index""",
        params,
    ).fetchall()
    keys = [row[0] for row in call_rows]
    files = stored_files(con)
    end_row = con.execute("SELECT max(timestamp) FROM packets").fetchall()[0]
    capture_end = end_row[0] if end_row else None
    tracker = Tracker()
    paths = {f.file_id: f.path for f in files}
    if keys:
        result = con.execute(
            """SELECT m.file_id, p.frame, p.frames, m.timestamp, p.src_host, p.src_port, p.dst_host,
                      p.dst_port, p.transport, p.raw, p.truncated, p.interface, p.ip_id, m.copies
               FROM messages m JOIN packets p USING (file_id, seq) JOIN calls c USING (call_key)
               WHERE m.call_key IN (SELECT unnest(?::BIGINT[]))
               ORDER BY c.call_index, m.position""",
            [keys],
        )
        decompress = zlib.decompress
        while rows := result.fetchmany(8192):
            for (
                file_id,
                frame,
                frames,
                ts,
                sh,
                sp,
                dh,
                dp,
                transport,
                raw,
                truncated,
                iface,
                ip_id,
                copies,
            ) in rows:
                packet = restore_sip_payload(
                    frame,
                    tuple(frames),
                    ts,
                    sh,
                    sp,
                    dh,
                    dp,
                    transport,
                    decompress(raw),
                    truncated,
                    paths[file_id],
                    iface,
                    ip_id,
                )
                tracker.feed(
                    packet, parse_packet(packet), copies=tuple((c["file"], c["frame"]) for c in copies)
                )
    model = tracker.finish(capture_end, release=True)
    legs_by_id = {leg.call_id: leg for leg in model.legs}
    leg_order: dict[int, list[str]] = defaultdict(list)
    links: dict[int, list[Link]] = defaultdict(list)
    if keys:
        for key, call_id in con.execute(
            """SELECT call_key, call_id FROM legs WHERE call_key IN (SELECT unnest(?::BIGINT[]))
               ORDER BY call_key, leg""",
            [keys],
        ).fetchall():
            leg_order[key].append(call_id)
        for key, a, b, method, confidence, evidence in con.execute(
            """SELECT call_key, leg_a, leg_b, method, confidence, evidence FROM correlation
               WHERE call_key IN (SELECT unnest(?::BIGINT[])) ORDER BY call_key, leg_a, leg_b""",
            [keys],
        ).fetchall():
            links[key].append(
                Link(legs=(a, b), method=method, confidence=confidence, evidence=tuple(evidence))
            )
    calls: list[Call] = []
    for key, call_index, _ids, related in call_rows:
        legs = tuple(legs_by_id[call_id] for call_id in leg_order[key])
        calls.append(build_call(call_index, legs, tuple(links[key]), tuple(related)))
    owned = _streams(con, keys, files) if media else []
    analysis = Analysis(
        files=tuple(f.path for f in files),
        summary=_summary(con, files),
        calls=tuple(calls),
        messages=model.messages,
        malformed=_malformed(con, files),
        transactions=model.transactions,
        dialogs=model.dialogs,
        warnings=_warnings(con),
        media=tuple(stream for _, stream in owned),
        media_measured=media,
    )
    if query.headers:
        kept = analysis.select(**{f.name: getattr(query, f.name) for f in fields(query)})
        key_of = {row[1]: row[0] for row in call_rows}
        kept_keys = {key_of[c.index] for c in kept}
        # A stream of a call the header filter dropped is that call's, not unlinked.
        streams = tuple(stream for key, stream in owned if key is None or key in kept_keys)
        analysis = replace(analysis, calls=tuple(kept), media=streams)
    return analysis


def _streams(
    con: duckdb.DuckDBPyConnection, keys: Sequence[int], files: Sequence[StoredFile]
) -> list[tuple[int | None, RtpStream]]:
    """The streams of the calls ``keys`` (each with its call's key) and those no SDP of the
    archive describes (None), in ``Analysis.media``'s order: by first packet, then by file (the
    archive's order) and by place in the file, as ``analyze`` lists them."""
    rank = {f.file_id: n for n, f in enumerate(files)}
    rows = con.execute(
        f"""WITH chosen AS (SELECT unnest(?::BIGINT[]) AS call_key),
                 described AS (SELECT DISTINCT address, port FROM sdp_addresses JOIN chosen USING (call_key)),
                 candidates AS (SELECT m.* FROM media_streams m
                                JOIN described d ON m.dst_host = d.address AND m.dst_port = d.port),
                 owners AS ({owner_sql("candidates")})
            SELECT o.call_key, s.file_id, s.seq, {SELECT_STREAM}
            FROM owners o JOIN media_streams s USING (file_id, seq)
            WHERE o.call_key IN (SELECT call_key FROM chosen)
            UNION ALL
            SELECT NULL, s.file_id, s.seq, {SELECT_STREAM} FROM media_streams s
            WHERE NOT EXISTS (SELECT 1 FROM sdp_addresses a
                              WHERE a.address = s.dst_host AND a.port = s.dst_port)""",
        [list(keys)],
    ).fetchall()
    out = [(row[0], rank[row[1]], row[2], restore_stream(row[3:])) for row in rows]
    out.sort(key=lambda r: (r[3].first_time, r[1], r[2]))
    return [(key, stream) for key, _, _, stream in out]


def _malformed(con: duckdb.DuckDBPyConnection, files: Sequence[StoredFile]) -> tuple[Malformed, ...]:
    """The packets that held no SIP message, at their times as analysed (clock skew out)."""
    from sipflow.capture.types import Endpoint, Transport  # noqa: PLC0415

    by_id = {f.file_id: f for f in files}
    rows = con.execute(
        """SELECT p.file_id, p.frame, p.frames, p.timestamp, p.src_host, p.src_port, p.dst_host, p.dst_port,
                  p.transport, p.raw, p.truncated, p.parse_error, p.interface
           FROM packets p JOIN files f USING (file_id) WHERE p.parse_error IS NOT NULL
           ORDER BY round(p.timestamp, 6), f.path, p.file_id, p.seq"""
    ).fetchall()
    out = []
    for file_id, frame, frames, ts, sh, sp, dh, dp, transport, raw, truncated, reason, iface in rows:
        f = by_id[file_id]
        point = point_name(f.path, iface, len(f.interfaces) > 1)
        out.append(
            Malformed(
                reason=reason,
                timestamp=ts - f.skews.get(point, 0.0),
                src=Endpoint(sh, sp),
                dst=Endpoint(dh, dp),
                transport=Transport(transport),
                frame=frame,
                frames=tuple(frames),
                file=f.path,
                raw=zlib.decompress(raw),
                truncated=truncated,
            )
        )
    return tuple(out)


def _warnings(con: duckdb.DuckDBPyConnection) -> tuple[CaptureWarning, ...]:
    out = []
    for path, warnings in con.execute("SELECT path, warnings FROM files ORDER BY path, file_id").fetchall():
        for message, frame, offset in json.loads(warnings):
            out.append(CaptureWarning(file=path, message=message, frame=frame, offset=offset))
    return tuple(out)


def _summary(con: duckdb.DuckDBPyConnection, files: Sequence[Any]) -> Summary:
    from sipflow.pipeline import CapturePoints  # noqa: PLC0415

    file_rows = con.execute(
        "SELECT frames, non_sip, unsupported, truncated, path FROM files ORDER BY path, file_id"
    ).fetchall()
    non_sip: dict[str, int] = {}
    unsupported: dict[str, int] = {}
    for _, ns, us, _, _ in file_rows:
        for target, text in ((non_sip, ns), (unsupported, us)):
            for kind, n in json.loads(text).items():
                target[kind] = target.get(kind, 0) + n
    m = con.execute(
        """SELECT count(*), count(*) FILTER (WHERE retransmission), min(timestamp), max(timestamp),
                  coalesce(sum(len(copies)), 0), coalesce(sum(doubled), 0) FROM messages"""
    ).fetchall()[0]
    assert m is not None
    c = con.execute("SELECT count(*) FILTER (WHERE kind = 'call'), count(*) FROM calls").fetchall()[0]
    assert c is not None
    bad = con.execute("SELECT count(*) FROM packets WHERE parse_error IS NOT NULL").fetchall()[0]
    skews = {name: value for f in files for name, value in f.skews.items() if value}
    sources = [StoredCapture(con, f, scoped=False) for f in files]
    points = CapturePoints(sources)
    seen = [(f.path, i) for f in files for i in f.seen_interfaces]
    return Summary(
        files=tuple(f.path for f in files),
        packets=sum(r[0] for r in file_rows),
        sip_messages=m[0],
        malformed=bad[0] if bad else 0,
        non_sip_packets=sum(non_sip.values()),
        non_sip=non_sip,
        unsupported=unsupported,
        retransmissions=m[1],
        calls=c[0],
        items=c[1],
        partial=any(r[3] for r in file_rows),
        incomplete_files=tuple(r[4] for r in file_rows if r[3]),
        first_time=m[2],
        last_time=m[3],
        duplicates=m[4],
        doubled=m[5],
        skew=skews,
        capture_points=points.list(skews, seen),
    )


def sql(db: str, text: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one SQL statement on the archive ``db``, read-only: (column names, rows)."""
    import duckdb  # noqa: PLC0415

    from sipflow.errors import UsageError  # noqa: PLC0415

    con = connect(db, create=False, read_only=True)
    try:
        try:
            result = con.execute(text)
        except duckdb.Error as exc:
            raise UsageError(f"sql: {(str(exc).strip().splitlines() or ['error'])[0]}") from None
        description: Any = result.description  # None for a statement without a result
        if description is None:
            return [], []
        return [d[0] for d in description], result.fetchall()
    finally:
        con.close()
