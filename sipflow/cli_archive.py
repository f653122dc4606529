"""The archive commands of ``sipflow``: ``index`` (captures into an archive) and ``sql`` (a
query on one). The others read an archive through ``--db`` (``cli._load``). ``cli`` adds
these to its group; this module imports nothing heavy until a command runs."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from sipflow.correlate import CorrelationOptions, HeaderRule

if TYPE_CHECKING:
    from sipflow.archive.files import FileCapture
    from sipflow.archive.indexing import FileProgress, IndexReport


@contextmanager
def _file_progress() -> Iterator[FileProgress | None]:
    """A bar of files read on stderr when it is a terminal: files, packets, packets/s."""
    if not sys.stderr.isatty():
        yield None
        return
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    start = time.perf_counter()
    packets = 0
    with Progress("files", *columns, console=Console(stderr=True, highlight=False), transient=True) as bar:
        task = bar.add_task("files", total=None, rate="")

        def update(capture: FileCapture, done: int, total: int) -> None:
            nonlocal packets
            packets += capture.rows
            rate = packets / max(time.perf_counter() - start, 1e-6)
            bar.update(task, completed=done, total=total, rate=f"{packets:,} SIP packets, {rate:,.0f}/s")

        yield update


def _report_lines(report: IndexReport, db: str) -> list[str]:
    from sipflow.render.text import clean

    rate = report.packets / report.read_seconds if report.read_seconds > 0 else 0.0
    lines = [
        f"{clean(db)}: {len(report.indexed)} of {report.files} files read "
        f"({report.unchanged} unchanged, {len(report.failed)} failed): {report.packets:,} SIP packets "
        f"of {report.frames:,} frames in {report.read_seconds:.2f} s ({rate:,.0f}/s); "
        f"{report.reduced_call_ids:,} Call-IDs analysed in {report.reduce_seconds:.2f} s; "
        f"{report.calls:,} items in the archive ({report.seconds:.2f} s in all)"
    ]
    return lines


@click.command(short_help="Index captures into an archive (DuckDB, or Parquet) to query calls fast.")
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "--db",
    metavar="ARCHIVE",
    help="The archive (a DuckDB file, made when missing). Needed unless --format parquet.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["duckdb", "parquet"]),
    default="duckdb",
    show_default=True,
    help="parquet: also write the tables as Parquet under --out (by day).",
)
@click.option("--out", metavar="DIR", help="The folder of --format parquet.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Processes reading files at once (default: the cores).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Read the files as tasks on a Dask cluster: its scheduler (tcp://host:8786), or local:N "
    "for a local cluster of N workers. The workers must see the files under the same paths.",
)
@click.option("--no-correlate", is_flag=True, help="One call per Call-ID: do not join B2BUA legs.")
@click.option(
    "--correlate-header",
    "correlate_headers",
    multiple=True,
    metavar="NAME[:REGEX]",
    help="A header naming the other leg's Call-ID (as for `sipflow calls`; repeatable).",
)
@click.option(
    "--correlate-window",
    type=click.FloatRange(0.0, 60.0),
    default=CorrelationOptions().window,
    show_default=True,
    metavar="SECONDS",
    help="How soon after an INVITE reaches a B2BUA its outbound INVITE may leave.",
)
def index(
    captures: tuple[str, ...],
    db: str | None,
    fmt: str,
    out: str | None,
    jobs: int | None,
    scheduler: str | None,
    no_correlate: bool,
    correlate_headers: tuple[str, ...],
    correlate_window: float,
) -> None:
    """Read CAPTURE... (files, folders searched for captures, glob patterns; gzip'd too) into
    the archive ARCHIVE: every SIP packet, and the calls, legs, transactions, dialogs,
    correlation and check findings made of them, and each file's RTP streams measured (the
    tables are in README). Run it again on
    the same folder: only new or changed files are read, and the calls they continue (a call
    across two rotated files is one call) are analysed again. A file that cannot be read is
    reported and skipped (exit 3). Then query with `sipflow calls --db ARCHIVE`, `ladder`,
    `export`, `check`, `stats`, `media` with --db (--media too), or `sipflow sql`.

    \b
    Example:
      sipflow index /var/spool/captures/ --db calls.duckdb
      sipflow calls --db calls.duckdb --to +4930 --status 4xx --since 1d
      sipflow index 'probe-*.pcap.gz' --db calls.duckdb --scheduler local:4
    """
    from sipflow.archive import index as run_index
    from sipflow.archive.parquet import write_parquet
    from sipflow.errors import EXIT_PARTIAL, UsageError

    if fmt == "parquet" and out is None:
        raise click.UsageError("--format parquet needs --out DIR")
    if fmt == "duckdb" and out is not None:
        raise click.UsageError("--out is the folder of --format parquet")
    if db is None and fmt != "parquet":
        raise click.UsageError("give the archive: --db ARCHIVE")
    try:
        rules = tuple(HeaderRule.parse(value) for value in correlate_headers)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--correlate-header") from None
    correlation = CorrelationOptions(
        enabled=not no_correlate, headers=CorrelationOptions().headers + rules, window=correlate_window
    )
    with tempfile.TemporaryDirectory(prefix="sipflow-index-") as scratch:
        target = db if db is not None else f"{scratch}/archive.duckdb"
        with _file_progress() as progress:
            report = run_index(
                captures, target, correlation=correlation, jobs=jobs, scheduler=scheduler, progress=progress
            )
        for line in (*report.failed, *report.warnings):
            click.echo(f"sipflow: warning: {line}", err=True)
        if out is not None:
            try:
                write_parquet(target, out)
            except OSError as exc:
                raise UsageError(f"{out}: {exc.strerror or exc}") from None
        for line in _report_lines(report, db if db is not None else out or ""):
            click.echo(line)
    if report.failed:
        raise SystemExit(EXIT_PARTIAL)


@click.command(short_help="Run SQL on an archive: a table, JSON or CSV.")
@click.argument("query", metavar="SQL")
@click.option("--db", required=True, metavar="ARCHIVE", help="The archive (made by `sipflow index`).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def sql(query: str, db: str, fmt: str) -> None:
    """Run the SQL statement SQL (DuckDB's dialect) on the archive, read-only, and print the
    rows. The tables (calls, legs, messages, transactions, dialogs, correlation, findings,
    packets, files, and the view malformed) are described in README.

    \b
    Example:
      sipflow sql --db calls.duckdb "SELECT state, count(*) FROM calls GROUP BY state"
      sipflow sql --db calls.duckdb --format csv "SELECT * FROM calls WHERE final_status >= 500"
    """
    from sipflow.archive import sql as run_sql
    from sipflow.render import table

    columns, rows = run_sql(db, query)
    render: Any = {"table": table.table_text, "json": table.json_text, "csv": table.csv_text}[fmt]
    if not columns:
        return
    click.echo(render(columns, rows), nl=fmt != "csv")
