"""The Textual application of ``sipflow browse``: the call list, a call's flow, and exports.

The captures are read by ``sipflow.pipeline.analyze`` in a worker thread; each partial
analysis it hands out (about every second) replaces the list's contents, the selected call
staying selected. Packet text reaches the screen only as ``rich.text.Text`` (never markup),
cleaned of control characters by the renderers it comes from.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import ClassVar, Protocol

from rich.console import JustifyMethod
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, ProgressBar, Static

from sipflow.browse.ladder_view import LadderView, without_retransmissions
from sipflow.browse.listing import OTHER_KINDS, ListView, cells, fit_columns, visible
from sipflow.browse.text import evidence_text, findings_text, keys_text, message_text
from sipflow.checks.finding import Finding
from sipflow.errors import SipflowError
from sipflow.exporting import write_export
from sipflow.media.collector import RtpStream
from sipflow.model.analysis import Analysis
from sipflow.model.call import Call, CallKind
from sipflow.pipeline import AnalysisOptions, analyze
from sipflow.render.call_table import BY_KEY, STATE_STYLES
from sipflow.render.export import DIAGRAM_FORMATS, EXPORT_FORMATS
from sipflow.render.options import LayoutOptions
from sipflow.render.text import clean


class LiveSource(Protocol):
    """A live capture or HEP listener (``sipflow.capture.live``) as the app sees it."""

    def failure(self) -> str | None: ...


MARK = "_mark"
"""The key of the call list's first column, the mark (space) of the calls to write."""

LIST_KEYS: tuple[tuple[str, str], ...] = (
    ("Up/Down", "move in the list"),
    ("Enter", "open the call: its ladder and messages"),
    ("/", "type a filter: number, name, Call-ID, state, any header text"),
    ("Escape", "leave the filter (a second time: clear it)"),
    ("s / S", "sort by the next column / reverse the order"),
    ("1-9", "sort by that column (again: reverse)"),
    ("R", "registrations on/off"),
    ("O", "OPTIONS on/off"),
    ("X", "subscriptions, MESSAGE and other items on/off"),
    ("Space", "mark the call (w then writes the marked calls: pcap or JSON)"),
    ("w", "write the selected call: pcap, SVG, HTML, Mermaid, PlantUML, JSON..."),
    ("?", "this list"),
    ("q", "quit"),
)
CALL_KEYS: tuple[tuple[str, str], ...] = (
    ("Up/Down j/k", "previous / next message"),
    ("PgUp/PgDn", "a page of messages"),
    ("Home/End", "first / last message"),
    ("m", "the message pane on/off"),
    ("r", "retransmissions shown/hidden"),
    ("t", "time of day / seconds since the call began"),
    ("a", "the --alias names / the addresses in the column heads"),
    ("e", "the correlation evidence of the call's legs"),
    ("f", "the call's check findings"),
    ("w", "write the call: pcap, SVG, HTML, Mermaid, PlantUML, JSON..."),
    ("?", "this list"),
    ("Escape / q", "back to the list"),
)


class TextScreen(ModalScreen[None]):
    """A text over the screen (keys, evidence, findings); any of Escape, q, Enter closes it."""

    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > VerticalScroll {
        width: 90%; max-width: 120; height: auto; max-height: 90%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,enter,question_mark", "dismiss", "Close"),
    ]

    def __init__(self, title: str, text: Text) -> None:
        super().__init__()
        self._title = title
        self._text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = self._title
            yield Static(self._text)

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class ExportScreen(ModalScreen[Path | None]):
    """Asks for the file to write; its extension names the format."""

    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical {
        width: 80%; max-width: 90; height: auto; border: round $accent; padding: 0 1;
        background: $surface;
    }
    ExportScreen Static { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, suggestion: str, what: str) -> None:
        super().__init__()
        self._suggestion = suggestion
        self._what = what

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"Write {self._what}"
            yield Input(value=self._suggestion, id="path")
            yield Static(Text(f"the extension says the format: .{', .'.join(EXPORT_FORMATS)}"))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(Path(value).expanduser() if value else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class CallScreen(Screen[None]):
    """One call: its ladder (every leg), the selected message in full beside or under it."""

    DEFAULT_CSS = """
    CallScreen #body { height: 1fr; }
    CallScreen #pane { border-top: solid $accent; height: 40%; padding: 0 1; }
    CallScreen #body.wide { layout: horizontal; }
    CallScreen #body.wide #pane { border-top: none; border-left: solid $accent; height: 1fr; width: 45%; }
    CallScreen #pane.hidden { display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back"),
        Binding("m", "toggle_pane", "Message"),
        Binding("r", "toggle_retransmissions", "Retrans."),
        Binding("t", "toggle_time", "Time"),
        Binding("a", "toggle_aliases", "Aliases"),
        Binding("e", "evidence", "Evidence"),
        Binding("f", "findings", "Findings"),
        Binding("w", "write", "Write"),
        Binding("question_mark", "keys", "Keys"),
    ]

    def __init__(self, call: Call, ladder_options: LayoutOptions, streams: Sequence[RtpStream]) -> None:
        super().__init__()
        self.call = call
        self.ladder_options = ladder_options
        self.streams = streams
        self.full_ladder = ladder_options.ladder(call, streams)
        self.retransmissions = True
        self.relative = False
        self.aliased = True

    def compose(self) -> ComposeResult:
        with Vertical(id="body"):
            yield LadderView(self.full_ladder, id="ladder")
            with VerticalScroll(id="pane"):
                yield Static(Text(""), id="message")
        yield Footer()

    def on_mount(self) -> None:
        self._fit(self.size.width)
        self.query_one(LadderView).focus()

    def on_resize(self) -> None:
        self._fit(self.size.width)

    def _fit(self, width: int) -> None:
        self.query_one("#body").set_class(width >= 150, "wide")

    @on(LadderView.Selected)
    def _selected(self, event: LadderView.Selected) -> None:
        arrow = event.arrow
        self.query_one("#message", Static).update(message_text(arrow) if arrow is not None else Text(""))
        self.query_one("#pane", VerticalScroll).scroll_home(animate=False)

    def _redraw(self) -> None:
        view = self.query_one(LadderView)
        ladder = self.full_ladder if self.retransmissions else without_retransmissions(self.full_ladder)
        since = self.call.messages[0].timestamp if self.relative and self.call.messages else None
        view.show(ladder, since=since, keep=view.arrow)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_toggle_pane(self) -> None:
        self.query_one("#pane").toggle_class("hidden")

    def action_toggle_retransmissions(self) -> None:
        self.retransmissions = not self.retransmissions
        self._redraw()
        self.notify("retransmissions " + ("shown" if self.retransmissions else "hidden"), timeout=2)

    def action_toggle_time(self) -> None:
        self.relative = not self.relative
        self._redraw()

    def action_toggle_aliases(self) -> None:
        if not self.ladder_options.aliases:
            self.notify("no aliases were given (sipflow browse --alias ADDR=NAME)", timeout=3)
            return
        self.aliased = not self.aliased
        options = self.ladder_options if self.aliased else replace(self.ladder_options, aliases=())
        self.full_ladder = options.ladder(self.call, self.streams)
        self._redraw()

    def action_evidence(self) -> None:
        self.app.push_screen(TextScreen("Correlation evidence", evidence_text(self.call)))

    def action_findings(self) -> None:
        app = self.app
        assert isinstance(app, BrowseApp)
        self.app.push_screen(
            TextScreen(f"Check findings of call {self.call.index}", app.findings_of(self.call))
        )

    def action_write(self) -> None:
        app = self.app
        assert isinstance(app, BrowseApp)
        app.write_calls([self.call])

    def action_keys(self) -> None:
        self.app.push_screen(TextScreen("Keys: a call", keys_text(CALL_KEYS)))


class CallListScreen(Screen[None]):
    """The list of calls: filter box, table, counts; Enter opens a call."""

    DEFAULT_CSS = """
    CallListScreen #status { height: 1; padding: 0 1; background: $boost; }
    CallListScreen #filter { display: none; }
    CallListScreen #filter.shown { display: block; }
    CallListScreen #progress { height: 1; padding: 0 1; }
    CallListScreen #progress.done { display: none; }
    CallListScreen DataTable { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "app.quit", "Quit"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "leave_filter", "Clear", show=False),
        Binding("s", "sort_next", "Sort"),
        Binding("S", "sort_reverse", "Reverse", show=False),
        Binding("R", "toggle_kind('registration')", "REGISTER"),
        Binding("O", "toggle_kind('options')", "OPTIONS"),
        Binding("X", "toggle_kind('other')", "Other"),
        Binding("space", "mark", "Mark"),
        Binding("w", "write", "Write"),
        Binding("question_mark", "keys", "Keys"),
        *(Binding(str(n), f"sort_column({n})", show=False) for n in range(1, 10)),
    ]

    def __init__(self, media: bool) -> None:
        super().__init__()
        self.view = ListView(media=media)
        self.shown: list[Call] = []
        self.marked: set[int] = set()
        """The calls marked for writing (space), by index."""
        self._filter_timer: Timer | None = None

    @property
    def browser(self) -> BrowseApp:
        app = self.app
        assert isinstance(app, BrowseApp)
        return app

    def compose(self) -> ComposeResult:
        yield Static(Text(""), id="status")
        yield Input(placeholder="filter: number, name, Call-ID, state, any header text", id="filter")
        yield ProgressBar(id="progress", show_eta=False)
        yield DataTable(cursor_type="row", zebra_stripes=True, id="calls")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        if not self.browser.loading or self.browser.live:
            self.query_one("#progress").add_class("done")  # a live source has no size to fill
        self.refill()

    def on_resize(self) -> None:
        self.refill()

    # --- the list -------------------------------------------------------------------------

    def progress(self, done: int, total: int) -> None:
        self.query_one(ProgressBar).update(total=max(total, 1), progress=done)

    def loaded(self) -> None:
        self.query_one("#progress").add_class("done")
        self.refill()

    def refill(self) -> None:
        """Fill the table again from the app's analysis (the selected call stays selected)."""
        table = self.query_one(DataTable)
        keep = self.selected_call
        app = self.browser
        analysis = app.analysis
        self.shown = visible(analysis.calls, self.view, app.streams) if analysis is not None else []
        keys = fit_columns(self.view.shown_columns(), self.shown, app.streams, self.size.width or 80,
                           chosen=bool(self.view.columns))  # fmt: skip
        table.clear(columns=True)
        # The mark is a column of its own with a fixed width: a row label's width is measured
        # when the table is next idle, so the columns would shift after the list is drawn.
        table.add_column(Text(" "), key=MARK, width=1)
        for key, width in keys.items():
            column = BY_KEY[key]
            marker = ""
            if key == self.view.sort:
                marker = " v" if self.view.descending else " ^"
            justify: JustifyMethod = "right" if column.right else "left"
            table.add_column(Text(column.title + marker, justify=justify), key=key, width=width + len(marker))
        for call in self.shown:
            row = cells(call, list(keys), app.streams.get(call.index, ()))
            texts = [_cell(v, BY_KEY[k].right, STATE_STYLES[call.state] if k == "state" else "", keys[k])
                     for k, v in zip(keys, row, strict=True)]  # fmt: skip
            mark = Text("*" if call.index in self.marked else " ")
            table.add_row(mark, *texts, key=str(call.index))
        if keep is not None:
            index = next((i for i, c in enumerate(self.shown) if c.index == keep.index), None)
            if index is not None:
                table.move_cursor(row=index, animate=False)
        self.status()

    def status(self) -> None:
        app = self.browser
        analysis = app.analysis
        parts: list[str] = []
        if app.error is not None:
            parts.append(f"error: {app.error}")
        elif analysis is None:
            parts.append("reading " + ", ".join(clean(p, 60) for p in app.source_names()) + " ...")
        else:
            total = sum(1 for c in analysis.calls if c.kind in self.view.kinds)
            kinds = ", ".join(sorted(k.value for k in self.view.kinds))
            parts.append(f"{len(self.shown):,} of {total:,} shown ({kinds})")
            parts.append(f"{analysis.summary.calls:,} calls, {analysis.summary.sip_messages:,} SIP messages")
            if self.view.text:
                parts.append(f"filter: {clean(self.view.text, 40)!r}")
            if app.loading:
                parts.append(
                    "capturing: " + ", ".join(clean(n, 40) for n in app.source_names())
                    if app.live
                    else "reading..."
                )
        self.query_one("#status", Static).update(Text("  |  ".join(parts)))

    @property
    def selected_call(self) -> Call | None:
        table = self.query_one(DataTable)
        if not self.shown or table.cursor_row < 0 or table.cursor_row >= len(self.shown):
            return None
        return self.shown[table.cursor_row]

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        call = self.selected_call
        if call is not None:
            app = self.browser
            app.push_screen(CallScreen(call, app.ladder_options, app.streams.get(call.index, ())))

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        if event.column_key.value == MARK:
            return
        self._sort_by(str(event.column_key.value))

    # --- filter ---------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def action_leave_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus:
            self.query_one(DataTable).focus()
            if not box.value:
                box.remove_class("shown")
            return
        if box.value:
            box.value = ""
            self._apply_filter("")
        box.remove_class("shown")

    @on(Input.Changed, "#filter")
    def _typed(self, event: Input.Changed) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        value = event.value
        self._filter_timer = self.set_timer(0.15, lambda: self._apply_filter(value))

    @on(Input.Submitted, "#filter")
    def _entered(self, event: Input.Submitted) -> None:
        self._apply_filter(event.value)
        self.query_one(DataTable).focus()

    def _apply_filter(self, value: str) -> None:
        if value != self.view.text:
            self.view = replace(self.view, text=value)
            self.refill()

    # --- sort and kinds -------------------------------------------------------------------

    def _sort_by(self, key: str) -> None:
        if self.view.sort == key:
            self.view = replace(self.view, descending=not self.view.descending)
        else:
            self.view = replace(self.view, sort=key, descending=False)
        self.refill()

    def action_sort_next(self) -> None:
        keys = self.view.shown_columns()
        now = keys.index(self.view.sort) if self.view.sort in keys else -1
        self.view = replace(self.view, sort=keys[(now + 1) % len(keys)], descending=False)
        self.refill()

    def action_sort_reverse(self) -> None:
        if self.view.sort is None:
            self.view = replace(self.view, sort="index")
        self.view = replace(self.view, descending=not self.view.descending)
        self.refill()

    def action_sort_column(self, n: int) -> None:
        keys = self.view.shown_columns()
        if 1 <= n <= len(keys):
            self._sort_by(keys[n - 1])

    def action_toggle_kind(self, kind: str) -> None:
        group = OTHER_KINDS if kind == "other" else frozenset({CallKind(kind)})
        kinds = self.view.kinds - group if group <= self.view.kinds else self.view.kinds | group
        self.view = replace(self.view, kinds=kinds or frozenset({CallKind.CALL}))
        self.refill()

    def action_keys(self) -> None:
        self.app.push_screen(TextScreen("Keys: the call list", keys_text(LIST_KEYS)))

    def action_mark(self) -> None:
        call = self.selected_call
        if call is None:
            return
        self.marked ^= {call.index}
        table = self.query_one(DataTable)
        row = table.cursor_row
        self.refill()
        table.move_cursor(row=min(row + 1, len(self.shown) - 1), animate=False)

    def action_write(self) -> None:
        """Write the marked calls (in the list's order), else the selected one."""
        analysis = self.browser.analysis
        marked = [c for c in analysis.calls if c.index in self.marked] if analysis is not None else []
        call = self.selected_call
        if marked:
            self.browser.write_calls(marked)
        elif call is not None:
            self.browser.write_calls([call])


class BrowseApp(App[None]):
    """``sipflow browse FILE...``: the calls of the captures, as they are read."""

    TITLE = "sipflow browse"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+c", "quit", "Quit", show=False)]

    def __init__(
        self,
        paths: Sequence[str],
        options: AnalysisOptions | None = None,
        *,
        ladder_options: LayoutOptions | None = None,
        analysis: Analysis | None = None,
        labels: Mapping[str, str] | None = None,
        live: Sequence[LiveSource] = (),
    ) -> None:
        """``analysis``: show this one instead of reading ``paths`` (tests, embedding).
        ``labels``: what to call a path on the screen (``live eth0`` for a capture's pipe);
        ``live``: the live sources among ``paths``, asked why they stopped when one fails."""
        super().__init__()
        self.paths = tuple(paths)
        self.labels = dict(labels or {})
        self.live = tuple(live)
        self.stop = threading.Event()
        """Set when the app ends: the reading stops (a live capture has no end of its own)."""
        self.options = options or AnalysisOptions()
        self.ladder_options = ladder_options or LayoutOptions()
        self.analysis: Analysis | None = analysis
        self.loading = analysis is None
        self.error: str | None = None
        self.streams: dict[int, list[RtpStream]] = {}
        self._findings: dict[int, list[Finding]] | None = None
        self.calls_screen = CallListScreen(self.options.media)

    def on_mount(self) -> None:
        if self.analysis is not None:
            self._show(self.analysis)
        self.push_screen(self.calls_screen)
        if self.loading:
            self._load()

    # --- reading --------------------------------------------------------------------------

    @work(thread=True, exclusive=True)
    def _load(self) -> None:
        def progress(done: int, total: int) -> None:
            self.call_from_thread(self.calls_screen.progress, done, total)

        def partial(analysis: Analysis) -> None:
            self.call_from_thread(self._show, analysis)

        try:
            analysis = analyze(
                self.paths, self.options, progress=progress, partial=partial,
                partial_every=0.5 if self.live else 1.0, stop=self.stop,
            )  # fmt: skip
        except SipflowError as exc:
            message = str(exc)
            for path, label in self.labels.items():
                message = message.replace(path, label)
            said = [f for f in (source.failure() for source in self.live) if f]
            if not self.stop.is_set():
                self.call_from_thread(self._failed, "; ".join([message, *said]))
            return
        if not self.stop.is_set():
            self.call_from_thread(self._loaded, analysis)

    def on_unmount(self) -> None:
        self.stop.set()

    def action_quit(self) -> None:  # type: ignore[override]
        self.stop.set()
        self.exit()

    def source_names(self) -> list[str]:
        """The sources as the screen names them."""
        return [self.labels.get(p, p) for p in self.paths]

    def _failed(self, message: str) -> None:
        self.loading = False
        self.error = clean(message)
        self.calls_screen.loaded()
        self.notify(self.error, severity="error", timeout=30)

    def _loaded(self, analysis: Analysis) -> None:
        self.loading = False
        self._show(analysis)
        self.calls_screen.loaded()
        for warning in analysis.warnings[:3]:
            self.notify(clean(str(warning)), severity="warning", timeout=10)

    def _show(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self._findings = None
        if analysis.media:
            from sipflow.model.media import streams_by_call  # noqa: PLC0415

            self.streams = streams_by_call(analysis.calls, analysis.media)
        if self.calls_screen.is_mounted:
            self.calls_screen.refill()

    # --- findings, writing ----------------------------------------------------------------

    def findings_of(self, call: Call) -> Text:
        """The ``check`` findings of ``call`` (every rule run once over the analysis)."""
        analysis = self.analysis
        if analysis is None:
            return Text("")
        if self._findings is None:
            from sipflow.checks.rules import run_rules  # noqa: PLC0415

            by_call: dict[int, list[Finding]] = {}
            for finding in run_rules(analysis):
                if finding.call_index is not None:
                    by_call.setdefault(finding.call_index, []).append(finding)
            self._findings = by_call
        return findings_text(self._findings.get(call.index, ()))

    def write_calls(self, calls: Sequence[Call]) -> None:
        """Ask for a file, then write ``calls`` to it in the format its extension names."""
        what = f"call {calls[0].index}" if len(calls) == 1 else f"{len(calls)} calls"
        suggestion = f"call-{calls[0].index}.svg" if len(calls) == 1 else "calls.pcap"

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.write(calls, path)

        self.push_screen(ExportScreen(suggestion, what), chosen)

    def write(self, calls: Sequence[Call], path: Path) -> None:
        """Write ``calls`` to ``path`` in the format its extension names; say how it went."""
        analysis = self.analysis
        fmt = path.suffix.lstrip(".").lower()
        if analysis is None:
            return
        if len(calls) > 1 and fmt in DIAGRAM_FORMATS:
            self.notify(
                f"a .{fmt} diagram holds one call: write {len(calls)} as .pcap or .json", severity="error"
            )
            return
        if fmt not in EXPORT_FORMATS:
            name = clean(str(path))
            self.notify(f"cannot tell the format of {name!r}: name it .svg, .pcap, ...", severity="error")
            return
        try:
            write_export(analysis, calls, fmt, path, self.ladder_options)
        except (OSError, SipflowError, ValueError) as exc:
            self.notify(clean(f"cannot write {path}: {exc}"), severity="error", timeout=10)
            return
        self.notify(clean(f"wrote {path}"), timeout=5)


def _cell(value: str, right: bool, style: str, width: int) -> Text:
    """A table cell: cut to ``width`` with an ellipsis, as ``sipflow calls`` cuts it."""
    if len(value) > width:
        value = value[: max(width - 1, 0)] + "…"
    return Text(value, justify="right" if right else "left", style=style, no_wrap=True)
