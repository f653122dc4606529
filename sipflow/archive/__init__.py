"""Capture archives: many captures indexed once into DuckDB, queried in a second.

    from sipflow.archive import index, load
    index(["captures/"], "calls.duckdb")          # again later: only new or changed files
    analysis = load("calls.duckdb", Query(to="+4930"))

``index`` (``sipflow.archive.indexing``) reads the captures (here, in a process pool or on a Dask
cluster: ``scale``) into ``packets`` and derives the rest; ``load`` (``query``) builds the
``Analysis`` of the calls a query selects from the stored packets, the same as analysing the
files would give. The tables are in ``schema`` and in README.md ("Archives").
"""

from __future__ import annotations

from sipflow.archive.indexing import IndexReport, index
from sipflow.archive.query import Query, load, sql
from sipflow.archive.store import ArchiveError

__all__ = ["ArchiveError", "IndexReport", "Query", "index", "load", "sql"]
