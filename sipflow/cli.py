"""The ``sipflow`` command: a thin shell over ``sipflow.pipeline.analyze`` and the renderers.

Nothing imports this module. Each group of shared options is one decorator that parses and
validates them once and hands the command one frozen object: ``InputOptions`` (the keyword
arguments of ``analyze``), ``Selection`` (of ``Analysis.select``), ``LayoutOptions`` (of
``build_ladder``), ``OutputOptions``. The group translates errors once: a ``SipflowError``
becomes one line on stderr and the exit code of its class (``EXIT_CODES``); a command that
completes on a partial analysis (``Summary.partial``) exits 3 (``check`` keeps 0/1/2).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import itertools
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from sipflow import __version__
from sipflow.capture.reader import is_stream
from sipflow.correlate import CorrelationOptions, HeaderRule
from sipflow.errors import EXIT_PARTIAL, CaptureError, ParseError, SipflowError, UsageError
from sipflow.exporting import write_export
from sipflow.model.call import CallState
from sipflow.pipeline import DEFAULT_MAX_CALL_IDS, AnalysisOptions, Progress, analyze, gc_paused
from sipflow.render import csv as csv_render
from sipflow.render import json as json_render
from sipflow.render.export import DIAGRAM_FORMATS, EXPORT_FORMATS
from sipflow.render.listing import malformed_lines, summary_line, warning_lines
from sipflow.render.options import LayoutOptions, OutputOptions, Selection
from sipflow.render.stats import stats_dict, stats_lines
from sipflow.render.text import clean
from sipflow.stats import compute as compute_stats

if TYPE_CHECKING:
    from rich.console import Console

    from sipflow.media.collector import RtpStream
    from sipflow.model.analysis import Analysis
    from sipflow.model.call import Call

EXIT_NO_MATCH = 1  # ladder, export: no call matches the selection (check: a check failed)
EXIT_BAD_INPUT = 2  # bad usage, or a file that is missing, unreadable or not a capture
EXIT_CODES: dict[type[SipflowError], int] = {
    CaptureError: EXIT_BAD_INPUT,
    ParseError: EXIT_BAD_INPUT,
    UsageError: EXIT_BAD_INPUT,
    SipflowError: EXIT_BAD_INPUT,
}
"""The exit code of each error class; an error takes that of the nearest class it derives from."""
_PARTIAL = "sipflow.partial"
_JSON_BATCH = 64
"""Calls of ``calls --format json`` written together."""
"""Key in the click context's ``meta``: the loaded analysis is partial."""


def _error(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """The one way a command fails: ``sipflow: error: MESSAGE`` on stderr, exit ``code``."""
    click.echo(f"sipflow: error: {message}", err=True)
    raise SystemExit(code)


class SipflowGroup(click.Group):
    """The group of commands: what they raise is translated here, once (STYLE.md habit 8)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
        except SipflowError as exc:
            _error(clean(str(exc)), next(EXIT_CODES[k] for k in type(exc).__mro__ if k in EXIT_CODES))
        if ctx.meta.get(_PARTIAL):
            raise SystemExit(EXIT_PARTIAL)
        return result


# --- option groups: each builds one frozen object -------------------------------------------------

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _grouped(name: str, build: Callable[..., Any], params: Sequence[Decorator]) -> Decorator:
    """A decorator adding the options ``params`` to a command, which gets instead of their values
    one keyword argument ``name``: ``build`` called with those named as its parameters."""
    keys = tuple(inspect.signature(build).parameters)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {key: kwargs.pop(key) for key in keys if key in kwargs}
            return func(*args, **{name: build(**values)}, **kwargs)

        decorated: Callable[..., Any] = command
        for param in reversed(params):
            decorated = param(decorated)
        return decorated

    return decorator


@dataclass(frozen=True, slots=True, kw_only=True)
class InputOptions:
    """The captures and how to analyse them: plain data standing for a call of
    ``sipflow.pipeline.analyze`` (``analyze_kwargs``), which another process could make."""

    files: tuple[str, ...]
    """The captures, merged by time."""
    skew: tuple[tuple[str, float], ...] = ()
    """``--skew``: (FILE[#IFACE], seconds its clock runs ahead); the others' are estimated."""
    max_call_ids: int = DEFAULT_MAX_CALL_IDS
    """``--max-call-ids`` (0: no limit)."""
    jobs: int | None = None
    """``--jobs``; None: the cores where ``sipflow.shard`` applies, else one process
    (``pipeline._worker_count``)."""
    correlation: CorrelationOptions = field(default_factory=CorrelationOptions)
    """``--no-correlate``, ``--correlate-header``, ``--correlate-window``."""
    db: str | None = None
    """``--db ARCHIVE``: read the calls from this archive (``sipflow index``), not from files."""

    def analysis_options(self) -> AnalysisOptions:
        """How to analyse ``files``, as the library takes it (``analyze(files, this)``)."""
        return AnalysisOptions(
            correlation=self.correlation, skew=dict(self.skew), max_call_ids=self.max_call_ids, jobs=self.jobs
        )

    def analyze_kwargs(self) -> dict[str, Any]:
        """``analyze(**these)``: the fields, ``files`` as ``paths`` and ``skew`` a dict."""
        kwargs = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "db"}
        kwargs["paths"] = kwargs.pop("files")
        return kwargs | {"skew": dict(self.skew)}


def _header_rules(_c: click.Context, _p: click.Parameter, values: tuple[str, ...]) -> tuple[HeaderRule, ...]:
    try:
        return tuple(HeaderRule.parse(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _skew(value: str) -> tuple[str, float]:
    name, sep, seconds = value.rpartition("=")
    try:
        offset = float(seconds)
    except ValueError:
        offset = math.nan
    if not sep or not name or not math.isfinite(offset):
        _error(f"--skew {clean(value)!r}: expected FILE=SECONDS, e.g. b.pcap=+0.35")
    return name, offset


def _inputs(
    files: tuple[str, ...],
    no_correlate: bool,
    correlate_headers: tuple[HeaderRule, ...],
    correlate_window: float,
    max_call_ids: int,
    jobs: int | None,
    skew: tuple[str, ...],
    db: str | None,
) -> InputOptions:
    if db is None and not files:
        raise click.UsageError("give capture files (FILE...), or an archive (--db ARCHIVE)")
    if db is not None and files:
        raise click.UsageError("give capture files or --db ARCHIVE, not both")
    return _live_inputs(
        files, no_correlate, correlate_headers, correlate_window, max_call_ids, jobs, skew, db
    )


def _live_inputs(
    files: tuple[str, ...],
    no_correlate: bool,
    correlate_headers: tuple[HeaderRule, ...],
    correlate_window: float,
    max_call_ids: int,
    jobs: int | None,
    skew: tuple[str, ...],
    db: str | None = None,
) -> InputOptions:
    """The input options of ``browse``: files may be none (live sources), no archive."""
    headers = CorrelationOptions().headers + correlate_headers
    correlation = CorrelationOptions(enabled=not no_correlate, headers=headers, window=correlate_window)
    skews = tuple(_skew(value) for value in skew)
    return InputOptions(
        files=files, skew=skews, max_call_ids=max_call_ids, jobs=jobs, correlation=correlation, db=db
    )


_INPUT_OPTIONS: list[Decorator] = [
    click.option("--no-correlate", is_flag=True, help="One call per Call-ID: do not join B2BUA legs."),
    click.option("--correlate-header", "correlate_headers", multiple=True, metavar="NAME[:REGEX]",
                 callback=_header_rules,
                 help="A header naming the other leg's Call-ID, besides X-CID, X-Call-ID, X-Orig-Call-ID and "
                 "X-Original-Call-ID; REGEX's group 1 extracts it, e.g. 'X-Info:orig=([^;]+)' (repeatable)."),
    click.option("--correlate-window", type=click.FloatRange(0.0, 60.0), default=CorrelationOptions().window,
                 show_default=True, metavar="SECONDS",
                 help="How soon after an INVITE reaches a B2BUA its outbound INVITE may leave."),
    click.option("--max-call-ids", type=click.IntRange(min=0), default=DEFAULT_MAX_CALL_IDS,
                 show_default=True, metavar="N",
                 help="Analyse at most N Call-IDs (0: no limit); messages of later Call-IDs are counted, "
                 "left out, and the result is partial (exit 3)."),
    click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, metavar="N",
                 help="Processes to use (same result): `calls --format json` shares a capture's Call-IDs "
                 "out among N processes and correlates after; elsewhere, with 2 or more, files are read and "
                 "parsed in worker processes while the calls are built (pays where decoding is costly, e.g. "
                 "TCP reassembly). Default: the cores for `calls --format json` on 16 MB of input or more, "
                 "else 1."),
    click.option("--skew", multiple=True, metavar="FILE[#IFACE]=SECONDS",
                 help="FILE's clock (or that of interface IFACE of a pcapng FILE with several) runs SECONDS "
                 "ahead of the first capture point's (subtracted from its times), e.g. b.pcap=+0.35 or "
                 "probes.pcapng#1=+0.35; FILE as given or its basename (repeatable). Default: estimated "
                 "from the messages the capture points share."),
]  # fmt: skip
_DB = click.option("--db", metavar="ARCHIVE",
                   help="Read the calls from this archive (made by `sipflow index`) instead of capture "
                   "files: the same output, without reading the captures again.")  # fmt: skip
input_options = _grouped(
    "inputs", _inputs, [click.argument("files", nargs=-1, metavar="FILE..."), *_INPUT_OPTIONS, _DB]
)
"""Files, correlation, ``--max-call-ids``, ``--jobs``, ``--skew``: the command gets ``inputs``."""


_FILTERS: list[Decorator] = [
    click.option("--call-id", "call_id", metavar="ID", help="Only the call with this Call-ID (any leg)."),
    click.option("--from", "from_", metavar="TEXT", help="From URI, user or display name contains TEXT."),
    click.option("--to", "to", metavar="TEXT", help="To URI, user or display name contains TEXT."),
    click.option("--state", multiple=True, type=click.Choice([s.value for s in CallState]),
                 help="Only calls (with --all, items of any kind) in this state (repeatable)."),
    click.option("--all", "all_kinds", is_flag=True,
                 help="Include registrations, subscriptions, OPTIONS, MESSAGE and other Call-IDs."),
    click.option("--since", metavar="TIME", callback=lambda c, p, v: _time_option(v, "--since"),
                 help="Only items that started at TIME or later: ISO 8601 (UTC unless it names a zone, "
                 "e.g. 2026-12-05T10:00), epoch seconds, or ago: 90s, 30m, 2h, 1d."),
    click.option("--until", metavar="TIME", callback=lambda c, p, v: _time_option(v, "--until"),
                 help="Only items that started before TIME (as --since)."),
    click.option("--status", metavar="CODE", callback=lambda c, p, v: _status_option(v),
                 help="Only items whose final status is CODE (486) or of its class (4xx)."),
    click.option("--header", "headers", multiple=True, metavar="NAME=TEXT",
                 callback=lambda c, p, v: _header_option(v),
                 help="Only items with a message whose header NAME contains TEXT, case-insensitive "
                 "(repeatable: all must hold), e.g. User-Agent=Yealink."),
]  # fmt: skip


def _time_option(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    from sipflow.render.text import parse_time  # noqa: PLC0415

    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


def _status_option(value: str | None) -> str | None:
    if value is None:
        return None
    from sipflow.model.analysis import status_matcher  # noqa: PLC0415

    try:
        status_matcher(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--status") from None
    return value


def _header_option(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{clean(value)!r}: expected NAME=TEXT, e.g. User-Agent=Yealink",
                                     param_hint="--header")  # fmt: skip
        out.append((name.strip(), text))
    return tuple(out)


def _one_call(ctx: click.Context, param: click.Parameter, value: tuple[int, ...]) -> int | None:
    """``--call`` once at most: a second one would otherwise silently replace the first."""
    if len(value) > 1:
        given = ", ".join(map(str, value))
        raise click.BadParameter(f"given {len(value)} times ({given}): name one call", ctx, param)
    return value[0] if value else None


_CALL = click.option("--call", "index", type=click.IntRange(min=1), multiple=True, callback=_one_call,
                     metavar="N", help="Only call number N (the # of `sipflow calls`).")  # fmt: skip


def selection_options(*, call: bool) -> Decorator:
    """``--call-id``, ``--from``, ``--to``, ``--state``, ``--all``, with ``call`` also ``--call``:
    the command gets ``selection``."""
    return _grouped("selection", Selection, [_CALL, *_FILTERS] if call else _FILTERS)


def _layout(alias: tuple[str, ...], by_host: bool) -> LayoutOptions:
    aliases = []
    for value in alias:
        address, sep, name = value.partition("=")
        if not sep or not address or not name:
            message = f"{value!r}: expected ADDRESS=NAME, e.g. 10.0.0.5=proxy"
            raise click.BadParameter(message, param_hint="--alias")
        aliases.append((address.strip(), name.strip()))
    return LayoutOptions(aliases=tuple(aliases), by_host=by_host)


layout_options = _grouped("layout", _layout, [
    click.option("--alias", multiple=True, metavar="ADDR=NAME",
                 help="Name a column: IP or IP:port (repeatable)."),
    click.option("--by-host", is_flag=True, help="One column per IP address instead of per IP:port."),
])  # fmt: skip
"""``--alias``, ``--by-host``: the command gets ``layout``."""


def _console(output: OutputOptions, width: int | None = None) -> Console:
    """stdout as rich sees it, coloured as ``output.color`` says."""
    from rich.console import Console  # noqa: PLC0415

    if output.color == "always":
        return Console(highlight=False, width=width, force_terminal=True)
    no_color = True if output.color == "never" else None  # None: as NO_COLOR says
    return Console(highlight=False, width=width, no_color=no_color)


def output_options(explain: str = "Show, per call, the evidence that joins its legs.") -> Decorator:
    """``--color`` and ``--explain`` (``explain`` is its help): the command gets ``output``."""
    return _grouped("output", OutputOptions, [
        click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto",
                     show_default=True, help="Colour the output: on a terminal only (auto), always "
                     "(e.g. for less -R) or never."),
        click.option("--explain", is_flag=True, help=explain),
    ])  # fmt: skip


# --- running the analysis --------------------------------------------------------------------------


@contextmanager
def _progress() -> Iterator[Progress | None]:
    """A progress bar on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, DownloadColumn, TimeRemainingColumn  # noqa: PLC0415
    from rich.progress import Progress as Bar  # noqa: PLC0415

    columns = (BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Bar("reading", *columns, console=Console(stderr=True, highlight=False), transient=True) as bar:
        task = bar.add_task("reading", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _load(
    inputs: InputOptions,
    *,
    media: bool = False,
    selection: Selection | None = None,
) -> Analysis:
    """The analysis, its warnings said on stderr; a partial one is remembered (exit 3).

    From an archive (``--db``), only the items ``selection`` may select are read (None: all),
    with the RTP streams measured when it was indexed."""
    if inputs.db is not None:
        return _load_archive(inputs.db, media=media, selection=selection)
    with _progress() as progress:
        options = inputs.analysis_options()
        if media:
            options = replace(options, media=True)
        analysis = analyze(inputs.files, options, progress=progress)
    for line in warning_lines(analysis):
        click.echo(f"sipflow: warning: {line}", err=True)
    if analysis.summary.partial:
        click.get_current_context().meta[_PARTIAL] = True
    return analysis


def _sharded_json(inputs: InputOptions, selection: Selection) -> bool:
    """``calls --format json`` with its Call-IDs shared out among processes (``sipflow.shard``),
    written; False when one process is the way (then nothing was said)."""
    from sipflow import shard  # noqa: PLC0415

    chosen = {f.name: getattr(selection, f.name) for f in fields(Selection)}
    indent = 2 if sys.stdout.isatty() else None
    started = shard.start(inputs.files, inputs.analysis_options(), selection=chosen, indent=indent)
    if started is None:
        return False
    try:
        with _progress() as progress:  # once the workers are forked: the bar runs a thread
            run = started.run(progress)
    except shard.ShardingError as exc:  # nothing written yet: one process gives the answer
        click.echo(f"sipflow: warning: {clean(str(exc))}; reading it again in one process", err=True)
        return False
    if run is None:
        return False
    for line in warning_lines(run.analysis):
        click.echo(f"sipflow: warning: {line}", err=True)
    if run.analysis.summary.partial:
        click.get_current_context().meta[_PARTIAL] = True
    while batch := list(itertools.islice(run.pieces, _JSON_BATCH)):
        click.echo("".join(batch), nl=False)
    click.echo()
    return True


def _load_archive(db: str, *, media: bool, selection: Selection | None) -> Analysis:
    from sipflow.archive import Query, load  # noqa: PLC0415

    query = Query(**{f.name: getattr(selection, f.name) for f in fields(Selection)}) if selection else None
    analysis = load(db, query, media=media)
    for line in warning_lines(analysis):
        click.echo(f"sipflow: warning: {line}", err=True)
    if analysis.summary.partial:
        click.get_current_context().meta[_PARTIAL] = True
    return analysis


def _nonempty(selection: Selection, analysis: Analysis) -> list[Call]:
    """The selected items; none: say which other items ``--all`` would show, exit 1."""
    if selected := selection.apply(analysis):
        return selected
    click.echo(f"sipflow: {selection.no_match_line(analysis)}", err=True)
    raise SystemExit(EXIT_NO_MATCH)


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A file that cannot be written: one line naming it, exit 2."""
    try:
        yield
    except OSError as exc:
        _error(f"{path}: {exc.strerror or exc}")


# --- the commands ----------------------------------------------------------------------------------


@click.group(
    cls=SipflowGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="sipflow")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Turn packet captures (pcap, pcapng, gzip'd) into SIP call flows.

    \b
    Example:
      sipflow calls capture.pcap
      sipflow ladder capture.pcap --call 1
    """
    # A command builds a large acyclic object graph (the analysis, then its rendering): the
    # cyclic collector would only rescan it. Paused for the command, as it was found after.
    ctx.with_resource(gc_paused())


@main.command(short_help="List the calls: who, state, final status, PDD, setup, duration.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output format (json: schema 1, see README).")  # fmt: skip
@click.option("--media", "with_media", is_flag=True,
              help="Measure the RTP too: streams, codecs, loss, jitter per call (JSON: media).")  # fmt: skip
@click.option("--columns", "columns_text", metavar="KEY,...",
              help="The table's columns, in this order, never dropped to fit the terminal: "
              "index, start, kind, from, to, src, dst, transport, state, code, pdd, setup, "
              "duration, msgs, retr, legs, call-id; rtp, codec, loss, jitter, mos with --media.")  # fmt: skip
@click.option("--sort", "sort_text", metavar="[-]KEY",
              help="Order the calls by a column (a key of --columns; '-' first: descending); "
              "calls without a value come last. Default: by start.")  # fmt: skip
@selection_options(call=False)
@input_options
@output_options()
def calls(
    fmt: str,
    with_media: bool,
    columns_text: str | None,
    sort_text: str | None,
    selection: Selection,
    inputs: InputOptions,
    output: OutputOptions,
) -> None:
    """List the calls in FILE... (merged by time): start, From, To, the first message's source
    and destination, transport, state, final status, post-dial delay, setup time, duration,
    messages, retransmissions, legs and Call-ID; with --media also each call's RTP streams (as
    `sipflow media` measures them). On a terminal too narrow for the table, the least needed
    columns are left out (Call-ID first) unless --columns names them.

    \b
    Example:
      sipflow calls samples/proxy-call.pcap
      sipflow calls a.pcap --state rejected --format json
      sipflow calls call.pcap --media --sort mos
      sipflow calls a.pcap --columns start,from,to,state,code,pdd --sort -pdd
    """
    from sipflow.render import call_table  # noqa: PLC0415

    columns = sort = None
    try:
        if columns_text is not None:
            columns = call_table.parse_columns(columns_text, media=with_media)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--columns") from None
    try:
        if sort_text is not None:
            sort = call_table.parse_sort(sort_text, media=with_media)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sort") from None
    if (
        fmt == "json"
        and not with_media
        and sort is None
        and inputs.db is None
        and _sharded_json(inputs, selection)
    ):
        return
    analysis = _load(inputs, media=with_media, selection=selection)
    selected = selection.apply(analysis)
    media = None
    if with_media:
        from sipflow.model.media import streams_by_call  # noqa: PLC0415

        media = streams_by_call(analysis.calls, analysis.media)
    if sort is not None:
        selected = call_table.sort_calls(selected, sort[0], descending=sort[1], media=media)
    if fmt == "json":
        # Indented for a person at a terminal, compact (and fast) into a pipe or a file.
        pieces = json_render.iter_dumps(analysis, selected, indent=2 if sys.stdout.isatty() else None)
        while batch := list(itertools.islice(pieces, _JSON_BATCH)):
            click.echo("".join(batch), nl=False)  # a call at a time costs click a tty test each
        click.echo()
        return
    if fmt == "csv":
        click.echo(csv_render.dumps(selected), nl=False)
        return
    from rich.text import Text  # noqa: PLC0415

    from sipflow.render.terminal import explain_lines  # noqa: PLC0415

    # On a terminal the table is fitted to its width; into a pipe or a file nothing is cut.
    console = _console(output)
    width = console.width if console.is_terminal else None
    lines = call_table.calls_table(
        selected,
        show_kind=selection.all_kinds,
        width=width,
        plain=not console.is_terminal,
        media=media,
        columns=columns,
    )
    for call in selected if output.explain else ():
        if len(call.legs) > 1 or call.related:
            lines += [Text(f"Call {call.index}:"), *explain_lines(call)]
    lines += [Text(line) for line in malformed_lines(analysis)]
    summary = summary_line(analysis, len(selected))
    if width is not None:  # on a terminal: wrapped at words, not cut mid-word by the terminal
        import textwrap  # noqa: PLC0415

        summary = "\n".join(textwrap.wrap(summary, width, break_on_hyphens=False)) or summary
    lines.append(Text(summary, style="dim"))
    if console.is_terminal:
        console.print(Text("\n").join(lines), soft_wrap=True)
    else:
        click.echo("\n".join(line.plain for line in lines))


@main.command(short_help="Draw the ladder diagram of calls in the terminal.")
@selection_options(call=True)
@layout_options
@click.option("--plain", is_flag=True, help="ASCII without colour (stable, for golden files and CI logs).")
@click.option("--full", is_flag=True, help="Show each message's full text under its arrow.")
@click.option("--width", type=click.IntRange(40, 1000), help="Line width (default: terminal width, or 80).")
@click.option("--pager/--no-pager", default=None, help="Page long output (default: on a terminal).")
@click.option("--media", "with_media", is_flag=True,
              help="Measure the RTP: each stream as a bar (codec, packets, loss), each DTMF "
              "digit as a note.")  # fmt: skip
@input_options
@output_options()
def ladder(
    selection: Selection,
    layout: LayoutOptions,
    plain: bool,
    full: bool,
    width: int | None,
    pager: bool | None,
    with_media: bool,
    inputs: InputOptions,
    output: OutputOptions,
) -> None:
    """Draw the ladder (sequence) diagram of calls in FILE...: one column per endpoint,
    one arrow per message with time and delta, retransmissions marked, SDP summarised;
    with --media, each RTP stream as a bar from its first packet, with codec, packets and loss,
    and each DTMF digit (RFC 4733 events, SIP INFO) as a note on its sender's lifeline.

    \b
    Example:
      sipflow ladder samples/proxy-call.pcap --call 1
      sipflow ladder a.pcap --call-id 1-2345@10.0.0.1 --alias 10.0.0.5=proxy --plain
      sipflow ladder samples/media-two-way.pcap --media
    """
    from sipflow.render.plain import plain_ladder  # noqa: PLC0415
    from sipflow.render.terminal import LadderView  # noqa: PLC0415

    analysis = _load(inputs, media=with_media, selection=selection)
    selected = _nonempty(selection, analysis)
    streams = _streams_by_call(analysis)
    if plain:
        drawn = [
            plain_ladder(
                layout.ladder(c, streams.get(c.index, ())),
                width=width or 80,
                full=full,
                explain=output.explain,
            )
            for c in selected
        ]
        click.echo("\n".join(line for lines in drawn for line in [*lines, ""]).rstrip("\n"))
        return
    console = _console(output, width)
    views = [
        LadderView(layout.ladder(c, streams.get(c.index, ())), full=full, explain=output.explain)
        for c in selected
    ]
    paged = pager if pager is not None else console.is_terminal
    if paged:
        # As git does: less shows the colours (-R), quits when the ladder fits the screen (-F)
        # and leaves it on the screen after (-X), unless the user set LESS otherwise.
        os.environ.setdefault("LESS", "FRX")
        os.environ.setdefault("LV", "-c")
    with console.pager(styles=True) if paged else contextlib.nullcontext():
        for view in views:
            console.print(view)


def _streams_by_call(analysis: Analysis) -> dict[int, list[RtpStream]]:
    """The measured streams by call index (empty when the media was not measured)."""
    if not analysis.media:
        return {}
    from sipflow.model.media import streams_by_call  # noqa: PLC0415

    return streams_by_call(analysis.calls, analysis.media)


@main.command(short_help="Write calls as SVG/PNG/PDF, DOT, Mermaid, PlantUML, HTML, JSON or pcap.")
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path), metavar="OUT",
              help="The file to write; with --each, a folder (one file per call).")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS),
              help="Format (default: OUT's extension; svg with --each).")  # fmt: skip
@click.option(
    "--each",
    is_flag=True,
    help="One file per selected call: call-N.FORMAT in the folder OUT (made if missing).",
)
@selection_options(call=True)
@layout_options
@click.option("--media", "with_media", is_flag=True,
              help="Measure the RTP: a bar per stream and a note per DTMF digit in diagrams, "
              "media and dtmf in JSON.")  # fmt: skip
@input_options
def export(
    out: Path,
    fmt: str | None,
    each: bool,
    selection: Selection,
    layout: LayoutOptions,
    with_media: bool,
    inputs: InputOptions,
) -> None:
    """Write calls of FILE... as a diagram or data to paste elsewhere: SVG, PNG or PDF
    ladders (Graphviz), Graphviz source (.dot), Mermaid (.mmd), PlantUML (.puml), a
    self-contained HTML page, JSON (schema 1 plus every message), or a pcap of just those
    calls' packets. A diagram holds one call: pick it with --call or --call-id, or give
    --each and a folder to get one file per call (--all adds registrations, OPTIONS and the
    other items, as for `calls`). The JSON holds the evidence that joins a call's legs; a
    diagram names the links in its header.

    \b
    Example:
      sipflow export samples/proxy-call.pcap --call 1 -o call.svg
      sipflow export a.pcap --each -o flows/
      sipflow export a.pcap --each --all -o flows/ --format mmd
      sipflow export samples/media-two-way.pcap --call 1 --media -o call.svg
    """
    suffix = out.suffix.lstrip(".").lower()
    if not each and selection.all_kinds and not selection.names_one and _folder_like(out):
        # Before --each, --all with a folder meant one file per item: still does, said once.
        click.echo(
            "sipflow: note: --all with a folder writes one file per item as before; say --each "
            "for that (--all alone adds registrations and other items)",
            err=True,
        )
        each = True
    if each:
        if suffix in EXPORT_FORMATS and not out.is_dir():
            raise click.BadParameter(
                f"with --each, OUT is a folder, not a .{suffix} file: "
                f"name a folder ({str(out.with_suffix(''))!r})",
                param_hint="-o/--output",
            )
        fmt = fmt or "svg"
    elif fmt and suffix in EXPORT_FORMATS and suffix != fmt:
        raise click.BadParameter(
            f"{str(out)!r} says {suffix} and --format says {fmt}: name the file .{fmt} or leave --format out",
            param_hint="-o/--output",
        )
    fmt = fmt or suffix
    if fmt not in EXPORT_FORMATS:
        raise click.BadParameter(
            f"cannot tell the format from {str(out)!r}: use one of .{', .'.join(EXPORT_FORMATS)} or --format "
            "(or --each and a folder)",
            param_hint="-o/--output",
        )
    pipes = [f for f in inputs.files if is_stream(f)]
    if fmt in ("pcap", "pcapng") and pipes:
        _error(
            f"cannot write a {fmt} from standard input or another pipe ({pipes[0]}): its frames are "
            "copied from the capture, which a pipe gives only once; save it to a file first"
        )
    analysis = _load(inputs, media=with_media, selection=selection)
    selected = _nonempty(selection, analysis)
    with _writing(out):
        if each:
            out.mkdir(parents=True, exist_ok=True)
            for call in selected:
                write_export(analysis, [call], fmt, out / f"call-{call.index}.{fmt}", layout)
            click.echo(f"sipflow: wrote {len(selected)} files into {out}", err=True)
            return
        if len(selected) > 1 and fmt in DIAGRAM_FORMATS:
            _error(
                f"{len(selected)} calls match and a {fmt} diagram holds one: pick one with "
                "--call N or --call-id ID, or use --each with a folder"
            )
        write_export(analysis, selected, fmt, out, layout)


def _folder_like(out: Path) -> bool:
    """An OUT that names a folder: one that exists, or ends with a slash, or has no suffix."""
    return out.is_dir() or str(out).endswith(("/", "\\")) or not out.suffix


@main.command(short_help="Counts as tshark -z sip,stat, response times, RFC 6076 metrics.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format (json: the same numbers, status codes as string keys).")  # fmt: skip
@click.option("--media", "with_media", is_flag=True,
              help="Measure the RTP too: streams, loss, jitter and MOS over the streams, "
              "answered calls by the direction of their RTP.")  # fmt: skip
@input_options
def stats(fmt: str, with_media: bool, inputs: InputOptions) -> None:
    """Statistics of FILE... (merged by time): requests by method and responses by status code
    (counted as tshark -z sip,stat counts them), retransmissions and response times per method,
    and the RFC 6076 metrics (RRD, SRD, SDD, SDT, SER, SEER, ISA, SCR) with ASR and NER. A call
    whose B2BUA legs are joined counts as one session attempt (--no-correlate: one per Call-ID).
    With --media, the media totals as well.

    \b
    Example:
      sipflow stats samples/auth-407.pcap
      sipflow stats a.pcap b.pcap --format json
      sipflow stats samples/media-loss-jitter.pcap --media
    """
    analysis = _load(inputs, media=with_media)
    result = compute_stats(analysis)
    totals = None
    if with_media:
        from sipflow.media_stats import media_stats  # noqa: PLC0415
        from sipflow.render.stats import media_stats_dict, media_stats_lines  # noqa: PLC0415

        totals = media_stats(analysis)
    if fmt == "json":
        document = {"files": list(analysis.files), **stats_dict(result)}
        if totals is not None:
            document["media"] = media_stats_dict(totals)
        # Indented for a person at a terminal, compact into a pipe or a file (as `calls`).
        click.echo(json.dumps(document, indent=2 if sys.stdout.isatty() else None, ensure_ascii=True))
        return
    lines = stats_lines(result)
    if totals is not None:
        lines += ["", *media_stats_lines(totals)]
    click.echo("\n".join([*lines, *malformed_lines(analysis)]))


@main.command(short_help="List the RTP streams as tshark -z rtp,streams, with their calls.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format (json: one object per stream, see README).")  # fmt: skip
@input_options
def media(fmt: str, inputs: InputOptions) -> None:
    """The RTP streams of FILE..., one row each (SSRC, source and destination): codec,
    packets, lost packets (RFC 3550: negative when packets came twice), maximum delta, mean and
    maximum interarrival jitter, measured as tshark -z rtp,streams measures them, and the call
    whose SDP described the stream's destination ("-": none in the capture). Dynamic payload
    types get their clock rate from the receiver's a=rtpmap.

    \b
    Example:
      sipflow media call.pcap
      sipflow media a.pcap --format json
    """
    from sipflow.model.media import calls_of_streams, sdp_of_streams  # noqa: PLC0415
    from sipflow.render.media import media_lines, stream_dict  # noqa: PLC0415

    analysis = _load(inputs, media=True)
    owners = calls_of_streams(analysis.calls, analysis.media)
    if fmt == "json":
        described = sdp_of_streams(analysis.media, owners)
        document = {
            "files": list(analysis.files),
            "streams": [
                stream_dict(s, c, d) for s, c, d in zip(analysis.media, owners, described, strict=True)
            ],
        }
        click.echo(json.dumps(document, indent=2 if sys.stdout.isatty() else None, ensure_ascii=True))
        return
    if not analysis.media:
        click.echo("sipflow: no RTP streams", err=True)
        return
    click.echo("\n".join(media_lines(analysis.media, owners)))


@main.command(short_help="Fail a CI build on an incorrect trace: rules and expectations.")
@click.option("--expect", "expect_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.yaml",
              help="Expectations the calls must meet (see README).")  # fmt: skip
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Rule settings (default: ./sipflow.toml, else [tool.sipflow] in "
              "./pyproject.toml).")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "github"]), default="text",
              show_default=True,
              help="Report format (junit: JUnit XML; github: Actions annotations).")  # fmt: skip
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), metavar="OUT",
              help="Write the report here instead of stdout.")  # fmt: skip
@click.option("--strict", is_flag=True, help="Warnings fail the check too.")
@input_options
@output_options("In the text report, show in each failed call's ladder the evidence that joins its legs.")
def check(
    expect_path: Path | None,
    config_path: Path | None,
    fmt: str,
    out: Path | None,
    strict: bool,
    inputs: InputOptions,
    output: OutputOptions,
) -> None:
    """Check SIP traces for CI: built-in protocol rules (unanswered INVITEs, un-ACKed 2xx,
    481s, CSeq going backwards, missing headers, wrong Content-Length, slow PDD…) and, with
    --expect, the calls you expect. Exit 0 when everything holds, 1 when something fails,
    2 for bad input or a bad expectations or config file.

    \b
    Example:
      sipflow check capture.pcap --expect calls.yaml --format junit -o report.xml
    """
    from sipflow.checks.config import load_config  # noqa: PLC0415
    from sipflow.checks.expect import evaluate, load_expectations  # noqa: PLC0415
    from sipflow.checks.media import MEDIA_RULES  # noqa: PLC0415
    from sipflow.checks.rules import RULES, run_rules  # noqa: PLC0415
    from sipflow.render import check_output  # noqa: PLC0415
    from sipflow.render.report import CheckReport  # noqa: PLC0415

    config = load_config(config_path)
    expectations = load_expectations(expect_path) if expect_path is not None else None
    # The media rules read the RTP, which costs a few µs per RTP packet: not when all are off.
    needs_media = expectations is not None and expectations.needs_media
    analysis = _load(inputs, media=needs_media or not config.disabled >= MEDIA_RULES)
    report = CheckReport(
        files=analysis.files,
        rules=tuple(rule for rule in RULES if rule.id not in config.disabled),
        findings=tuple(run_rules(analysis, config)),
        results=tuple(evaluate(expectations, analysis) if expectations is not None else ()),
        strict=strict,
    )
    # 0 or 1, also after a partial read (it only warns), unless --strict.
    code = 0 if report.passed and not (strict and analysis.summary.partial) else 1
    if out is None and fmt == "text":
        from rich.text import Text  # noqa: PLC0415

        console = _console(output)
        for style, line in check_output.styled_lines(report, analysis, explain=output.explain):
            console.print(Text(line, style=style or ""), soft_wrap=True)
        raise SystemExit(code)
    text = check_output.document(report, fmt, analysis, explain=output.explain)
    if out is None:
        click.echo(text, nl=False)
    else:
        with _writing(out):
            out.write_text(text)
    raise SystemExit(code)


@main.command(short_help="Browse the calls interactively, as sngrep does: list, flow, messages.")
@layout_options
@click.option(
    "--media",
    "with_media",
    is_flag=True,
    help="Measure the RTP: media columns in the list, a bar per stream in the ladder.",
)
@click.option(
    "--interface",
    "-i",
    "interfaces",
    multiple=True,
    metavar="IFACE",
    help="Capture live on IFACE through libpcap (dumpcap, else tcpdump; repeatable).",
)
@click.option(
    "--filter",
    "bpf",
    metavar="BPF",
    help="The capture filter of --interface (default: the SIP ports, and UDP/TCP whose payload "
    "starts like SIP).",
)
@click.option(
    "--hep-listen",
    metavar="ADDR:PORT",
    help="Act as a HEP collector: read HEP v1-v3 sent to this UDP address (e.g. 0.0.0.0:9060).",
)
@click.option(
    "--write",
    "write",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Keep what --interface or --hep-listen captured in FILE (pcapng from dumpcap, else pcap).",
)
@_grouped("inputs", _live_inputs, [click.argument("files", nargs=-1, metavar="[FILE]..."), *_INPUT_OPTIONS])
def browse(
    layout: LayoutOptions,
    with_media: bool,
    interfaces: tuple[str, ...],
    bpf: str | None,
    hep_listen: str | None,
    write: Path | None,
    inputs: InputOptions,
) -> None:
    """Browse calls in the terminal: of capture FILEs (- for a pcap on standard input, as
    `tcpdump -i eth0 -U -w - | sipflow browse -`), of live traffic (--interface), or sent as
    HEP (--hep-listen). The list fills as packets are read; type / to filter (a number, a
    name, a Call-ID, a state, any header text), s or 1-9 to sort, Enter to open a call: its
    ladder across every leg, each message in full, r retransmissions, t relative time, e the
    correlation evidence, f the check findings, w to write the call as pcap, SVG, HTML,
    Mermaid, PlantUML or JSON. ? lists the keys.

    \b
    Example:
      sipflow browse samples/b2bua-3pcc.pcap
      sipflow browse -i lo --write trace.pcapng
      sipflow browse --hep-listen 127.0.0.1:9060
    """
    from sipflow.browse.app import BrowseApp  # noqa: PLC0415
    from sipflow.capture.live import HepListener, LiveCapture  # noqa: PLC0415

    files = list(inputs.files)
    if not files and not interfaces and hep_listen is None:
        raise click.UsageError("name a FILE, - for standard input, --interface or --hep-listen")
    if write is not None and not interfaces and hep_listen is None:
        raise click.BadParameter(
            "it keeps live traffic: name --interface or --hep-listen", param_hint="--write"
        )
    if write is not None and interfaces and hep_listen is not None:
        raise click.BadParameter("it keeps one source: --interface or --hep-listen", param_hint="--write")
    if files.count("-") > 1:
        _error("standard input (-) can be read only once")
    if "-" in files and not sys.stdin.isatty():
        # The keys come from the terminal; the capture from the pipe, under another descriptor.
        try:
            tty = os.open("/dev/tty", os.O_RDONLY)
        except OSError:
            _error("browse - needs a terminal to read keys from (/dev/tty), besides the pipe")
        piped = os.dup(0)
        os.dup2(tty, 0)
        os.close(tty)
        files[files.index("-")] = f"/dev/fd/{piped}"
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        _error("browse needs a terminal (for a pipe, use calls, ladder or export)")
    live: list[LiveCapture | HepListener] = []
    labels: dict[str, str] = {}
    try:
        if interfaces:
            capture = LiveCapture(interfaces, bpf, write=str(write) if write else None)
            live.append(capture)
            files.append(capture.path)
            labels[capture.path] = "live " + ",".join(interfaces)
        if hep_listen is not None:
            host, _, port = hep_listen.rpartition(":")
            if not host or not port.isdigit() or int(port) > 65535:
                raise click.BadParameter(f"not ADDR:PORT: {hep_listen!r}", param_hint="--hep-listen")
            listener = HepListener(host.strip("[]"), int(port), write=str(write) if write else None)
            live.append(listener)
            files.append(listener.path)
            labels[listener.path] = f"HEP {hep_listen}"
        options = replace(inputs.analysis_options(), media=with_media)
        BrowseApp(files, options, ladder_options=layout, labels=labels, live=live).run()
    finally:
        for source in live:
            source.close()


if __name__ == "__main__":  # pragma: no cover
    main()


from sipflow.cli_archive import index as _index_command  # noqa: E402  # after main: it adds to main
from sipflow.cli_archive import sql as _sql_command  # noqa: E402

main.add_command(_index_command, "index")
main.add_command(_sql_command, "sql")


def run() -> None:
    """The ``sipflow`` command (and ``python -m sipflow``): ``main``, then the process ends
    without tearing its heap down object by object (a second or more after a large capture;
    the output is flushed first). Embedders and tests call ``main`` instead."""
    # The process ends after the command: no collection at all (one after the command would
    # scan everything the command built, in vain).
    gc.disable()
    code = 0
    try:
        main.main(prog_name="sipflow")
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            code = 1
        else:
            code = exc.code or 0
    # A reader that left (``| head``) read all it wanted.
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)
