"""An archive's tables as Parquet files, for other tools (Spark, Polars, DuckDB elsewhere,
pandas): ``OUT/TABLE/…``; ``packets``, ``messages`` and ``calls`` partitioned by UTC day
(``day=YYYY-MM-DD`` folders, Hive style), the others one file each."""

from __future__ import annotations

import os
from typing import Final

from sipflow.archive.schema import TABLES
from sipflow.archive.store import connect

PARTITIONED: Final = {"packets": "time_ns", "messages": "time_ns", "calls": "start_ns"}
"""Tables split by day, and the column whose day it is."""


def write_parquet(db: str, out: str) -> list[str]:
    """Write every table of the archive ``db`` under the folder ``out`` (replacing what an
    earlier export left there); returns the tables written."""
    os.makedirs(out, exist_ok=True)
    con = connect(db, create=False, read_only=True)
    written = []
    try:
        for table in TABLES:
            if table == "pending":
                continue
            target = os.path.join(out, table)
            quoted = target.replace("'", "''")
            column = PARTITIONED.get(table)
            if column is not None:
                query = (
                    f"SELECT *, strftime(make_timestamp({column} // 1000), '%Y-%m-%d') AS day FROM {table}"
                )
                con.execute(
                    f"COPY ({query}) TO '{quoted}' (FORMAT parquet, PARTITION_BY (day), OVERWRITE_OR_IGNORE)"
                )
            else:
                os.makedirs(target, exist_ok=True)
                path = os.path.join(target, f"{table}.parquet").replace("'", "''")
                con.execute(f"COPY {table} TO '{path}' (FORMAT parquet)")
            written.append(table)
    finally:
        con.close()
    return written
