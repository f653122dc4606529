"""The archive file: a DuckDB database of the schema in ``schema``; opening it, and reading a
file's packets back as a ``CaptureSource`` the pipeline analyses as it would the file."""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sipflow.archive.schema import SCHEMA_VERSION, ddl
from sipflow.capture.types import CaptureStats, CaptureWarning, SipPayload, restore_sip_payload
from sipflow.errors import SipflowError, UsageError

if TYPE_CHECKING:
    import duckdb

FETCH_ROWS: Final = 8192
"""Packets fetched from the database at a time while a file is read back."""


class ArchiveError(SipflowError):
    """The archive cannot be used: not a sipflow archive, another schema version, locked."""


def connect(path: str, *, create: bool, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """The archive at ``path``, made (empty, this schema) when ``create`` and it does not exist.
    Raises ``ArchiveError`` for a file that is not an archive of this schema version, and
    ``UsageError`` for one that does not exist when not ``create``."""
    import duckdb  # noqa: PLC0415

    exists = os.path.exists(path)
    if not exists and not create:
        raise UsageError(f"{path}: no such archive (make one with: sipflow index CAPTURES... --db {path})")
    try:
        con = duckdb.connect(path, read_only=read_only and exists)
    except duckdb.Error as exc:
        raise ArchiveError(f"{path}: cannot open as an archive: {_first_line(exc)}") from None
    try:
        tables = {
            row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if "schema_version" not in tables:
            if tables:
                raise ArchiveError(f"{path}: a DuckDB database, but not a sipflow archive")
            if read_only and exists:
                raise ArchiveError(f"{path}: an empty database, not a sipflow archive")
            for statement in ddl():
                con.execute(statement)
            from sipflow import __version__  # noqa: PLC0415

            con.execute(
                "INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION, f"sipflow {__version__}"]
            )
        else:
            row = con.execute("SELECT max(version) FROM schema_version").fetchall()[0]
            version = row[0] if row else None
            if version != SCHEMA_VERSION:
                raise ArchiveError(
                    f"{path}: archive schema version {version}, this sipflow reads version {SCHEMA_VERSION} "
                    "(index the captures again into a new archive)"
                )
    except BaseException:
        con.close()
        raise
    return con


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A row of ``files``: what the analysis needs of a file indexed earlier."""

    file_id: int
    path: str
    interfaces: tuple[str, ...]
    seen_interfaces: tuple[int, ...]
    skews: dict[str, float]
    """The clock skew of each of its capture points (``FILE`` or ``FILE#N``) set when it was
    reduced (none: not yet, or all 0)."""
    reduced: bool
    first_ns: int | None
    last_ns: int | None


def stored_files(con: duckdb.DuckDBPyConnection) -> list[StoredFile]:
    """Every file of the archive, in the archive's order (by path, as given when indexed)."""
    rows = con.execute(
        """SELECT file_id, path, interfaces, seen_interfaces, skews, reduced, first_ns, last_ns
           FROM files ORDER BY path, file_id"""
    ).fetchall()
    return [
        StoredFile(r[0], r[1], tuple(r[2]), tuple(r[3]), json.loads(r[4]), r[5], r[6], r[7]) for r in rows
    ]


class StoredCapture:
    """A file's packets read back from the archive: those whose Call-ID is in the temporary
    table ``scope_ids`` (``scoped``) or all its parsed ones, as the ``CaptureSource`` the
    pipeline reads. Its stats and warnings stay empty: the archive keeps the file's own."""

    reopenable = False
    live = False

    def __init__(self, con: duckdb.DuckDBPyConnection, file: StoredFile, *, scoped: bool) -> None:
        self.con = con
        self.file = file
        self.name = file.path
        self.size = 0
        self.position = 0
        self.interfaces = file.interfaces
        self.stats = CaptureStats()
        self.warnings: list[CaptureWarning] = []
        self.seen_interfaces = set(file.seen_interfaces)
        self.scoped = scoped
        self.seqs: dict[int, list[tuple[int, bytes, int]]] = {}
        """frame → (seq, payload, interface) of the packets read (several where one TCP
        segment completed several messages): what ties a message of the analysis back to its
        row (``seq_of``), whatever clock skew was taken out of its time."""

    def __iter__(self) -> Iterator[SipPayload]:
        # The packets come whole (compressed, in Arrow buffers) before the first is handed up:
        # several files are read at once, merged by time, and one connection has one result.
        join = "JOIN scope_ids USING (call_id)" if self.scoped else ""
        table = self.con.sql(
            f"""SELECT seq, frame, frames, timestamp, src_host, src_port, dst_host, dst_port, transport,
                       raw, truncated, interface, ip_id
                FROM packets {join}
                WHERE file_id = ? AND call_id IS NOT NULL ORDER BY seq""",
            params=[self.file.file_id],
        ).to_arrow_table()
        name = self.name
        seqs = self.seqs
        decompress = zlib.decompress
        for batch in table.to_batches(FETCH_ROWS):
            columns = [column.to_pylist() for column in batch.columns]
            for seq, frame, frames, ts, sh, sp, dh, dp, transport, raw, truncated, iface, ip_id in zip(
                *columns, strict=True
            ):
                payload = decompress(raw)
                seqs.setdefault(frame, []).append((seq, payload, iface))
                yield restore_sip_payload(
                    frame,
                    tuple(frames),
                    ts,
                    sh,
                    sp,
                    dh,
                    dp,
                    transport,
                    payload,
                    truncated,
                    name,
                    iface,
                    ip_id,
                )

    def seq_of(self, frame: int, raw: bytes) -> tuple[int, int]:
        """(seq, interface) of the packet read with this frame and payload."""
        found = self.seqs[frame]
        if len(found) > 1:
            for i, (seq, payload, interface) in enumerate(found):
                if payload == raw:
                    del found[i]
                    return seq, interface
        return found[0][0], found[0][2]

    def frame_interfaces(self) -> dict[int, int]:
        """The interface of each frame read."""
        return {frame: found[0][2] for frame, found in self.seqs.items()}


def json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def register(con: duckdb.DuckDBPyConnection, name: str, table: Any) -> None:
    """Make an Arrow table visible to SQL as ``name`` (replacing one of that name)."""
    con.register(name, table)


def insert_arrow(con: duckdb.DuckDBPyConnection, table_name: str, table: Any, columns: Sequence[str]) -> None:
    """INSERT the Arrow ``table`` into ``table_name`` (its ``columns``, in that order)."""
    if table.num_rows == 0:
        return
    view = f"_in_{table_name}"
    con.register(view, table)
    try:
        names = ", ".join(columns)
        con.execute(f"INSERT INTO {table_name} ({names}) SELECT {names} FROM {view}")
    finally:
        con.unregister(view)
