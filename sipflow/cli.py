"""The ``sipflow`` command: a thin shell over ``sipflow.pipeline.analyze`` and the renderers.

Nothing imports this module. It turns ``SipflowError`` into a one-line message on stderr
and exit code 2; a file damaged inside (``Summary.partial``) gives its warnings and, once the
output is written, exit code 3 (``check`` keeps 0/1/2).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json as json_module
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, TimeRemainingColumn
from rich.progress import Progress as Bar
from rich.text import Text

from sipflow import __version__
from sipflow.correlate import CorrelationOptions, HeaderRule
from sipflow.errors import SipflowError
from sipflow.model.analysis import Analysis
from sipflow.model.call import Call, CallState
from sipflow.pipeline import DEFAULT_MAX_CALL_IDS, Progress, analyze, gc_paused
from sipflow.render import csv as csv_render
from sipflow.render import json as json_render
from sipflow.render.ladder import Ladder, build_ladder
from sipflow.render.stats import stats_dict, stats_lines
from sipflow.render.summary import kinds_summary
from sipflow.render.terminal import LadderView, calls_table, explain_lines, ladder_lines
from sipflow.render.text import clean
from sipflow.stats import compute as compute_stats

EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3
"""A file was damaged (truncated or corrupt): everything before the damage was analysed and shown."""
MAX_WARNINGS_SHOWN = 20
_PARTIAL = "sipflow.partial"
"""Key in the click context's ``meta``: the loaded analysis is partial."""
_MAX_CALL_IDS = "sipflow.max_call_ids"
"""Key in the click context's ``meta``: the --max-call-ids value."""
_JOBS = "sipflow.jobs"
"""Key in the click context's ``meta``: the --jobs value (None: the default)."""


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


@contextmanager
def _progress() -> Iterator[Progress | None]:
    """A progress bar on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    with Bar(
        "reading", BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=_stderr(), transient=True
    ) as bar:
        task = bar.add_task("reading", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _load(
    files: Sequence[str],
    correlation: CorrelationOptions | None = None,
    skew: dict[str, float] | None = None,
) -> Analysis:
    try:
        with _progress() as progress:
            meta = click.get_current_context().meta
            analysis = analyze(
                files,
                progress=progress,
                correlation=correlation,
                skew=skew,
                max_call_ids=meta.get(_MAX_CALL_IDS, DEFAULT_MAX_CALL_IDS),
                jobs=meta.get(_JOBS),
            )
    except SipflowError as exc:
        click.echo(f"sipflow: error: {clean(str(exc))}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    warnings = analysis.warnings
    for warning in warnings[:MAX_WARNINGS_SHOWN]:
        click.echo(f"sipflow: warning: {clean(str(warning))}", err=True)
    if len(warnings) > MAX_WARNINGS_SHOWN:
        click.echo(f"sipflow: warning: … and {len(warnings) - MAX_WARNINGS_SHOWN} more", err=True)
    if analysis.summary.partial:
        # Always shown, even when the warning naming the damage is among those left out.
        click.echo(f"sipflow: warning: partial result: {_partial_reasons(analysis)}", err=True)
        click.get_current_context().meta[_PARTIAL] = True
    return analysis


def _partial_reasons(analysis: Analysis) -> str:
    s = analysis.summary
    reasons = []
    if s.incomplete_files or not s.untracked:
        reasons.append("a file could not be read to its end")
    if s.untracked:
        reasons.append(f"{_plural(s.untracked, 'SIP message')} beyond the Call-ID limit left out")
    return "; ".join(reasons)


def _max_call_ids_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--max-call-ids`` and ``--jobs``, kept in the context for ``_load`` (no parameter in
    each command)."""

    def remember(ctx: click.Context, _param: click.Parameter, value: int) -> None:
        ctx.meta[_MAX_CALL_IDS] = value

    return click.option(
        "--max-call-ids",
        type=click.IntRange(min=0),
        default=DEFAULT_MAX_CALL_IDS,
        show_default=True,
        expose_value=False,
        callback=remember,
        metavar="N",
        help="Analyse at most N Call-IDs (0: no limit); messages of later Call-IDs are counted, "
        "left out, and the result is partial (exit 3).",
    )(_jobs_option(func))


def _jobs_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--jobs``, kept in the context for ``_load``; it rides along with ``--max-call-ids``."""

    def remember(ctx: click.Context, _param: click.Parameter, value: int | None) -> None:
        ctx.meta[_JOBS] = value

    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        default=None,
        expose_value=False,
        callback=remember,
        metavar="N",
        help="Processes to use: with 2 or more, files are read and parsed in worker processes "
        "while the calls are built (same result). Default: the cores, for inputs of 8 MiB or more.",
    )(func)


def _exit_partial(func: Callable[..., None]) -> Callable[..., None]:
    """Exit 3 after a command that completed on a partial analysis (other exits pass through)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        func(*args, **kwargs)
        if click.get_current_context().meta.get(_PARTIAL):
            raise SystemExit(EXIT_PARTIAL)

    return wrapper


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def summary_line(analysis: Analysis, shown: int) -> str:
    """One line of counts under a listing."""
    s = analysis.summary
    parts = [
        f"{_plural(s.packets, 'packet')} read",
        f"{_plural(s.sip_messages, 'SIP message')}",
        f"{_plural(s.calls, 'call')} and {s.items - s.calls} other Call-IDs, {shown} shown",
    ]
    if s.retransmissions:
        parts.append(_plural(s.retransmissions, "retransmission"))
    if s.duplicates:
        points = len(s.capture_points)
        where = f"{s.duplicates - s.doubled} from {points} capture points" if s.duplicates > s.doubled else ""
        doubled = f"{s.doubled} captured twice at one point" if s.doubled else ""
        detail = ", ".join(p for p in (where, doubled) if p)
        parts.append(f"{_plural(s.duplicates, 'copy', 'copies')} merged ({detail})")
    if s.skew:
        skews = (f"{clean(f)} {v:+.6f}".rstrip("0").rstrip(".") + " s" for f, v in s.skew.items())
        parts.append("clock skew " + ", ".join(skews))
    parts.append(f"{s.malformed} malformed")
    if s.non_sip_packets:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(s.non_sip.items(), key=lambda kv: (-kv[1], kv[0])))
        parts.append(f"{s.non_sip_packets} non-SIP ({kinds})")
    if s.unsupported:
        parts.append("not decoded: " + ", ".join(f"{k} {v}" for k, v in sorted(s.unsupported.items())))
    if s.partial:
        parts.append(f"PARTIAL: {_partial_reasons(analysis)}")
    return "; ".join(parts)


def _no_call(
    analysis: Analysis,
    all_kinds: bool,
    index: int | None,
    call_id: str | None,
    from_: str | None,
    to: str | None,
    state: tuple[str, ...],
) -> None:
    """Nothing was selected: say so on stderr, and which other items ``--all`` would show; exit 1."""
    others = []
    if not all_kinds and index is None and call_id is None:
        others = analysis.select(all_kinds=True, from_=from_, to=to, state=state)  # no call among them
    if not others:
        click.echo(f"sipflow: no call matches ({summary_line(analysis, 0)})", err=True)
    else:
        n = len(others)
        what = _plural(n, "other Call-ID")
        if from_ is None and to is None and not state:
            said = f"no call; {what}"
        else:
            said = f"no call matches; {what} {'does' if n == 1 else 'do'}"
        click.echo(f"sipflow: {said} ({kinds_summary(others)}): add --all", err=True)
    raise SystemExit(1)


def _malformed_lines(analysis: Analysis) -> list[str]:
    return [
        f"malformed: {clean(m.file)} frame {m.frame} {m.src} -> {m.dst}: {clean(m.reason, 200)}"
        + (" (truncated)" if m.truncated else "")
        for m in analysis.malformed
    ]


def _console(color: str, width: int | None = None) -> Console:
    """stdout as rich sees it; ``color`` is auto (styles on a terminal), always or never."""
    if color == "always":
        return Console(highlight=False, width=width, force_terminal=True)
    if color == "never":
        return Console(highlight=False, width=width, no_color=True)
    return Console(highlight=False, width=width)


def _correlation(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options that steer leg correlation; the command receives ``correlation``."""

    def parse_rules(
        _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
    ) -> tuple[HeaderRule, ...]:
        rules = []
        for value in values:
            try:
                rules.append(HeaderRule.parse(value))
            except ValueError as exc:
                raise click.BadParameter(str(exc)) from None
        return tuple(rules)

    options = [
        click.option("--no-correlate", is_flag=True, help="One call per Call-ID: do not join B2BUA legs."),
        click.option(
            "--correlate-header",
            "correlate_headers",
            multiple=True,
            metavar="NAME[:REGEX]",
            callback=parse_rules,
            help="A header naming the other leg's Call-ID, besides X-CID, X-Call-ID, X-Orig-Call-ID and "
            "X-Original-Call-ID; REGEX's group 1 extracts it, e.g. 'X-Info:orig=([^;]+)' (repeatable).",
        ),
        click.option(
            "--correlate-window",
            type=click.FloatRange(0.0, 60.0),
            default=2.0,
            show_default=True,
            metavar="SECONDS",
            help="How soon after an INVITE reaches a B2BUA its outbound INVITE may leave.",
        ),
        click.option("--explain", is_flag=True, help="Show, per call, the evidence that joins its legs."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _correlation_options(
    no_correlate: bool, headers: tuple[HeaderRule, ...], window: float
) -> CorrelationOptions:
    defaults = CorrelationOptions()
    return CorrelationOptions(enabled=not no_correlate, headers=defaults.headers + headers, window=window)


_skew_option = click.option(
    "--skew",
    multiple=True,
    metavar="FILE[#IFACE]=SECONDS",
    help="FILE's clock (or that of interface IFACE of a pcapng FILE with several) runs SECONDS ahead "
    "of the first capture point's (subtracted from its times), e.g. b.pcap=+0.35 or "
    "probes.pcapng#1=+0.35; FILE as given or its basename (repeatable). Default: estimated from the "
    "messages the capture points share.",
)


def _parse_skew(values: tuple[str, ...]) -> dict[str, float]:
    skews = {}
    for value in values:
        name, sep, seconds = value.rpartition("=")
        try:
            offset = float(seconds)
        except ValueError:
            offset = math.nan
        if not sep or not name or not math.isfinite(offset):
            click.echo(
                f"sipflow: error: --skew {clean(value)!r}: expected FILE=SECONDS, e.g. b.pcap=+0.35", err=True
            )
            raise SystemExit(EXIT_BAD_INPUT)
        skews[name] = offset
    return skews


_color_option = click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour the output: on a terminal only (auto), always (e.g. for less -R) or never.",
)


def _filters(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--call-id", "call_id", metavar="ID", help="Only the call with this Call-ID (any leg)."),
        click.option("--from", "from_", metavar="TEXT", help="From URI, user or display name contains TEXT."),
        click.option("--to", "to", metavar="TEXT", help="To URI, user or display name contains TEXT."),
        click.option(
            "--state",
            multiple=True,
            type=click.Choice([s.value for s in CallState]),
            help="Only calls (with --all, items of any kind) in this state (repeatable).",
        ),
        click.option(
            "--all",
            "all_kinds",
            is_flag=True,
            help="Include registrations, subscriptions, OPTIONS, MESSAGE and other Call-IDs.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format (json: schema 1, see README).",
)
@_filters
@_correlation
@_max_call_ids_option
@_skew_option
@_color_option
@_exit_partial
def calls(
    files: tuple[str, ...],
    fmt: str,
    call_id: str | None,
    from_: str | None,
    to: str | None,
    state: tuple[str, ...],
    all_kinds: bool,
    no_correlate: bool,
    correlate_headers: tuple[HeaderRule, ...],
    correlate_window: float,
    explain: bool,
    skew: tuple[str, ...],
    color: str,
) -> None:
    """List the calls in FILE... (merged by time): start, From, To, state, final status,
    post-dial delay, setup time, duration, messages, retransmissions and Call-ID.

    \b
    Example:
      sipflow calls samples/proxy-call.pcap
      sipflow calls a.pcap --state rejected --format json
    """
    analysis = _load(
        files, _correlation_options(no_correlate, correlate_headers, correlate_window), _parse_skew(skew)
    )
    selected = analysis.select(all_kinds=all_kinds, call_id=call_id, from_=from_, to=to, state=state)
    if fmt == "json":
        # Indented for a person at a terminal, compact (and fast) into a pipe or a file.
        indent = 2 if sys.stdout.isatty() else None
        for piece in json_render.iter_dumps(analysis, selected, indent=indent):
            click.echo(piece, nl=False)
        click.echo()
        return
    if fmt == "csv":
        click.echo(csv_render.dumps(selected), nl=False)
        return
    # On a terminal the table is cut to its width; into a pipe or a file nothing is cut.
    console = _console(color)
    width = console.width if console.is_terminal else None
    lines = calls_table(selected, show_kind=all_kinds, width=width, plain=not console.is_terminal)
    if explain:
        for call in selected:
            if len(call.legs) > 1 or call.related:
                lines.append(Text(f"Call {call.index}:"))
                lines.extend(explain_lines(call))
    lines += [Text(line) for line in _malformed_lines(analysis)]
    lines.append(Text(summary_line(analysis, len(selected)), style="dim"))
    if console.is_terminal:
        console.print(Text("\n").join(lines), soft_wrap=True)
    else:
        click.echo("\n".join(line.plain for line in lines))


def _parse_alias(values: tuple[str, ...]) -> dict[str, str]:
    aliases = {}
    for value in values:
        address, sep, name = value.partition("=")
        if not sep or not address or not name:
            raise click.BadParameter(
                f"{value!r}: expected ADDRESS=NAME, e.g. 10.0.0.5=proxy", param_hint="--alias"
            )
        aliases[address.strip()] = name.strip()
    return aliases


@main.command(short_help="Draw the ladder diagram of calls in the terminal.")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--call", "index", type=int, metavar="N", help="Only call number N (the # of `sipflow calls`).")
@_filters
@click.option(
    "--alias", multiple=True, metavar="ADDR=NAME", help="Name a column: IP or IP:port (repeatable)."
)
@click.option("--by-host", is_flag=True, help="One column per IP address instead of per IP:port.")
@click.option("--plain", is_flag=True, help="ASCII without colour (stable, for golden files and CI logs).")
@click.option("--full", is_flag=True, help="Show each message's full text under its arrow.")
@click.option("--width", type=click.IntRange(40, 1000), help="Line width (default: terminal width, or 80).")
@click.option("--pager/--no-pager", default=None, help="Page long output (default: on a terminal).")
@_correlation
@_max_call_ids_option
@_skew_option
@_color_option
@_exit_partial
def ladder(
    files: tuple[str, ...],
    index: int | None,
    call_id: str | None,
    from_: str | None,
    to: str | None,
    state: tuple[str, ...],
    all_kinds: bool,
    alias: tuple[str, ...],
    by_host: bool,
    plain: bool,
    full: bool,
    width: int | None,
    pager: bool | None,
    no_correlate: bool,
    correlate_headers: tuple[HeaderRule, ...],
    correlate_window: float,
    explain: bool,
    skew: tuple[str, ...],
    color: str,
) -> None:
    """Draw the ladder (sequence) diagram of calls in FILE...: one column per endpoint,
    one arrow per message with time and delta, retransmissions marked, SDP summarised.

    \b
    Example:
      sipflow ladder samples/proxy-call.pcap --call 1
      sipflow ladder a.pcap --call-id 1-2345@10.0.0.1 --alias 10.0.0.5=proxy --plain
    """
    aliases = _parse_alias(alias)
    analysis = _load(
        files, _correlation_options(no_correlate, correlate_headers, correlate_window), _parse_skew(skew)
    )
    selected: list[Call] = analysis.select(
        all_kinds=all_kinds, call_id=call_id, from_=from_, to=to, state=state, index=index
    )
    if not selected:
        _no_call(analysis, all_kinds, index, call_id, from_, to, state)
    if plain:
        w = width or 80
        lines: list[str] = []
        for call in selected:
            layout = build_ladder(call, aliases=aliases, by_host=by_host)
            lines.extend(
                t.plain for t in ladder_lines(layout, width=w, plain=True, full=full, explain=explain)
            )
            lines.append("")
        click.echo("\n".join(lines).rstrip("\n"))
        return
    console = _console(color, width)
    use_pager = pager if pager is not None else console.is_terminal
    views = [
        LadderView(build_ladder(c, aliases=aliases, by_host=by_host), full=full, explain=explain)
        for c in selected
    ]
    if use_pager:
        with console.pager(styles=True):
            for view in views:
                console.print(view)
    else:
        for view in views:
            console.print(view)


EXPORT_FORMATS = ("svg", "png", "pdf", "dot", "mmd", "puml", "html", "json", "pcap", "pcapng")
"""What ``sipflow export`` writes; the format comes from the file's extension or ``--format``."""


def _diagram(fmt: str, layout: Ladder) -> bytes:
    """One call's ladder in a diagram format (the renderers are imported on use: graphviz is
    heavy and only ``export`` needs it)."""
    if fmt == "mmd":
        from sipflow.render.mermaid import ladder_mermaid  # noqa: PLC0415

        return ladder_mermaid(layout).encode()
    if fmt == "puml":
        from sipflow.render.plantuml import ladder_plantuml  # noqa: PLC0415

        return ladder_plantuml(layout).encode()
    from sipflow.render import graphviz  # noqa: PLC0415

    if fmt == "dot":
        return graphviz.ladder_dot(layout).encode()
    if fmt == "html":
        from sipflow.render.html import ladder_html  # noqa: PLC0415

        return ladder_html(layout, graphviz.ladder_svg(layout)).encode()
    return graphviz.render(graphviz.ladder_dot(layout), fmt)


def _write_export(
    analysis: Analysis, calls: Sequence[Call], fmt: str, out: Path, aliases: dict[str, str], by_host: bool
) -> None:
    if fmt == "json":
        with out.open("w", encoding="utf-8") as stream:
            stream.writelines(json_render.iter_dumps(analysis, calls, indent=2, with_flow=True))
            stream.write("\n")
    elif fmt in ("pcap", "pcapng"):
        # pcap when every frame has one link type, else pcapng (tshark and sipflow read both by content)
        from sipflow.capture.writer import write_frames  # noqa: PLC0415

        selection: dict[str, set[int]] = {}
        for call in calls:
            for message in call.messages:
                selection.setdefault(message.file, set()).update(message.frames)
        write_frames(selection, out)
    else:
        (call,) = calls
        out.write_bytes(_diagram(fmt, build_ladder(call, aliases=aliases, by_host=by_host)))


@main.command(short_help="Write calls as SVG/PNG/PDF, DOT, Mermaid, PlantUML, HTML, JSON or pcap.")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(path_type=Path),
    metavar="OUT",
    help="The file to write; with --all, a folder (one file per call).",
)
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), help="Format (default: OUT's extension).")
@click.option("--call", "index", type=int, metavar="N", help="Only call number N (the # of `sipflow calls`).")
@_filters
@click.option(
    "--alias", multiple=True, metavar="ADDR=NAME", help="Name a column: IP or IP:port (repeatable)."
)
@click.option("--by-host", is_flag=True, help="One column per IP address instead of per IP:port.")
@_correlation
@_max_call_ids_option
@_exit_partial
def export(
    files: tuple[str, ...],
    output: Path,
    fmt: str | None,
    index: int | None,
    call_id: str | None,
    from_: str | None,
    to: str | None,
    state: tuple[str, ...],
    all_kinds: bool,
    alias: tuple[str, ...],
    by_host: bool,
    no_correlate: bool,
    correlate_headers: tuple[HeaderRule, ...],
    correlate_window: float,
    explain: bool,
) -> None:
    """Write calls of FILE... as a diagram or data to paste elsewhere: SVG, PNG or PDF
    ladders (Graphviz), Graphviz source (.dot), Mermaid (.mmd), PlantUML (.puml), a
    self-contained HTML page, JSON (schema 1 plus every message), or a pcap of just those
    calls' packets. A diagram holds one call: pick it with --call or --call-id, or give
    --all and a folder to get one file per call.

    \b
    Example:
      sipflow export samples/proxy-call.pcap --call 1 -o call.svg
      sipflow export a.pcap --all -o flows/ --format mmd
    """
    del explain  # the evidence is in the JSON; a diagram shows the links in its header
    aliases = _parse_alias(alias)
    fmt = fmt or output.suffix.lstrip(".").lower()
    if fmt not in EXPORT_FORMATS:
        raise click.BadParameter(
            f"cannot tell the format from {str(output)!r}: "
            f"use one of .{', .'.join(EXPORT_FORMATS)} or --format",
            param_hint="-o/--output",
        )
    analysis = _load(files, _correlation_options(no_correlate, correlate_headers, correlate_window))
    selected = analysis.select(
        all_kinds=all_kinds, call_id=call_id, from_=from_, to=to, state=state, index=index
    )
    if not selected:
        _no_call(analysis, all_kinds, index, call_id, from_, to, state)
    try:
        if all_kinds and index is None and call_id is None:
            output.mkdir(parents=True, exist_ok=True)
            for call in selected:
                _write_export(analysis, [call], fmt, output / f"call-{call.index}.{fmt}", aliases, by_host)
            click.echo(f"sipflow: wrote {len(selected)} files into {output}", err=True)
            return
        if len(selected) > 1 and fmt not in ("json", "pcap", "pcapng"):
            click.echo(
                f"sipflow: error: {len(selected)} calls match and a {fmt} diagram holds one: pick one with "
                "--call N or --call-id ID, or use --all with a folder",
                err=True,
            )
            raise SystemExit(EXIT_BAD_INPUT)
        _write_export(analysis, selected, fmt, output, aliases, by_host)
    except SipflowError as exc:
        click.echo(f"sipflow: error: {clean(str(exc))}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except OSError as exc:
        click.echo(f"sipflow: error: {output}: {exc.strerror or exc}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None


@main.command(short_help="Counts as tshark -z sip,stat, response times, RFC 6076 metrics.")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format (json: the same numbers, status codes as string keys).",
)
@_correlation
@_max_call_ids_option
@_skew_option
@_exit_partial
def stats(
    files: tuple[str, ...],
    fmt: str,
    no_correlate: bool,
    correlate_headers: tuple[HeaderRule, ...],
    correlate_window: float,
    explain: bool,
    skew: tuple[str, ...],
) -> None:
    """Statistics of FILE... (merged by time): requests by method and responses by status code
    (counted as tshark -z sip,stat counts them), retransmissions and response times per method,
    and the RFC 6076 metrics (RRD, SRD, SDD, SDT, SER, SEER, ISA, SCR) with ASR and NER. A call
    whose B2BUA legs are joined counts as one session attempt (--no-correlate: one per Call-ID).

    \b
    Example:
      sipflow stats samples/auth-407.pcap
      sipflow stats a.pcap b.pcap --format json
    """
    del explain
    analysis = _load(
        files, _correlation_options(no_correlate, correlate_headers, correlate_window), _parse_skew(skew)
    )
    result = compute_stats(analysis)
    if fmt == "json":
        document = {"files": list(analysis.files), **stats_dict(result)}
        # Indented for a person at a terminal, compact into a pipe or a file (as `calls`).
        indent = 2 if sys.stdout.isatty() else None
        click.echo(json_module.dumps(document, indent=indent, ensure_ascii=True))
        return
    click.echo("\n".join([*stats_lines(result), *_malformed_lines(analysis)]))


def _check_passed(passed: bool, strict: bool) -> bool:
    """``check`` keeps 0/1/2: a partial read only warns (``_load``), and fails with --strict."""
    return passed and not (strict and click.get_current_context().meta.get(_PARTIAL, False))


@main.command(short_help="Fail a CI build on an incorrect trace: rules and expectations.")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--expect", "expect_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.yaml",
              help="Expectations the calls must meet (see README).")  # fmt: skip
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Rule settings (default: ./sipflow.toml, else [tool.sipflow] in ./pyproject.toml).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "junit", "github"]),
    default="text",
    show_default=True,
    help="Report format (junit: JUnit XML; github: Actions annotations).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), metavar="OUT",
              help="Write the report here instead of stdout.")  # fmt: skip
@click.option("--strict", is_flag=True, help="Warnings fail the check too.")
@_correlation
@_max_call_ids_option
@_color_option
def check(
    files: tuple[str, ...],
    expect_path: Path | None,
    config_path: Path | None,
    fmt: str,
    output: Path | None,
    strict: bool,
    no_correlate: bool,
    correlate_headers: tuple[HeaderRule, ...],
    correlate_window: float,
    explain: bool,
    color: str,
) -> None:
    """Check SIP traces for CI: built-in protocol rules (unanswered INVITEs, un-ACKed 2xx,
    481s, CSeq going backwards, missing headers, wrong Content-Length, slow PDD…) and, with
    --expect, the calls you expect. Exit 0 when everything holds, 1 when something fails,
    2 for bad input or a bad expectations or config file.

    \b
    Example:
      sipflow check capture.pcap --expect calls.yaml --format junit -o report.xml
    """
    del explain
    from sipflow.checks.config import load_config  # noqa: PLC0415
    from sipflow.checks.expect import evaluate, load_expectations  # noqa: PLC0415
    from sipflow.checks.rules import RULES, run_rules  # noqa: PLC0415
    from sipflow.render import report as reports  # noqa: PLC0415

    try:
        config = load_config(config_path)
        expectations = load_expectations(expect_path) if expect_path is not None else None
    except SipflowError as exc:
        click.echo(f"sipflow: error: {clean(str(exc))}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    analysis = _load(files, _correlation_options(no_correlate, correlate_headers, correlate_window))
    findings = run_rules(analysis, config)
    results = evaluate(expectations, analysis) if expectations is not None else []
    report = reports.CheckReport(
        files=analysis.files,
        rules=tuple(rule for rule in RULES if rule.id not in config.disabled),
        findings=tuple(findings),
        results=tuple(results),
        strict=strict,
    )
    if fmt == "json":
        text = json_module.dumps(reports.json_dict(report), indent=2, ensure_ascii=True) + "\n"
    elif fmt == "junit":
        text = reports.junit_xml(report)
    elif fmt == "github":
        text = "".join(line + "\n" for line in reports.github_lines(report))
    else:
        text = ""
    if fmt != "text":
        if output is not None:
            output.write_text(text)
        else:
            click.echo(text, nl=False)
        raise SystemExit(0 if _check_passed(report.passed, strict) else 1)
    ladders = {}
    for result in results:
        if not result.passed and result.call_index is not None:
            (call,) = analysis.select(index=result.call_index)
            layout = build_ladder(call)
            ladders[result.call_index] = [t.plain for t in ladder_lines(layout, width=100, plain=True)]
    styled = reports.text_lines(report, ladders)
    if output is not None:
        output.write_text("".join(line + "\n" for _, line in styled))
    else:
        console = _console(color)
        for style, line in styled:
            console.print(Text(line, style=style or ""), soft_wrap=True)
    raise SystemExit(0 if _check_passed(report.passed, strict) else 1)


if __name__ == "__main__":  # pragma: no cover
    main()


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
