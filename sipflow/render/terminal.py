"""Terminal renderers (rich): the calls table, the ladder and the summary.

Packet text only ever goes into ``rich.text.Text`` objects (never into markup strings), and
it was cleaned of control characters by the layout (``sipflow.render.text.clean``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from sipflow.model.call import Call
from sipflow.render.call_table import STATE_STYLES
from sipflow.render.ladder import Arrow, ArrowClass, DtmfNote, Ladder, MediaBar
from sipflow.render.summary import Heading, call_summary, delta, heading, leg_letter
from sipflow.render.text import clock

STYLES: dict[ArrowClass, str] = {
    ArrowClass.REQUEST: "bold cyan",
    ArrowClass.PROVISIONAL: "yellow",
    ArrowClass.SUCCESS: "green",
    ArrowClass.FAILURE: "bold red",
}

BAR_STYLE = "magenta"
"""RTP bars (``MediaBar``) and DTMF notes (``DtmfNote``): apart from every arrow class."""

LEG_STYLES = ("bold blue", "bold magenta", "bold cyan", "bold yellow", "bold green")
"""Leg letters take these colours in turn on a terminal."""

MARGIN = 22
"""Width of the left margin: ``HH:MM:SS.mmm +ddd.ddd `` ."""
MIN_GAP, MAX_GAP = 12, 36


@dataclass(frozen=True, slots=True)
class _Glyphs:
    life: str
    line: str
    dashed: str
    right: str
    left: str
    loop: str
    bar: str
    """The stroke of an RTP bar."""
    note: str
    """The mark of a DTMF note on its sender's lifeline."""
    more: str
    """Ends a text cut at the edge of the line: nothing is dropped without a mark."""


UNICODE = _Glyphs(life="│", line="─", dashed="┄", right="▶", left="◀", loop="↺", bar="═", note="◆", more="…")
ASCII = _Glyphs(life="|", line="-", dashed=".", right=">", left="<", loop="@", bar="=", note="*", more="...")


class _Canvas:
    """One output line as a list of characters with a style per character."""

    def __init__(self, width: int) -> None:
        self.chars = [" "] * width
        self.styles: list[str] = [""] * width

    def put(self, x: int, text: str, style: str = "") -> None:
        for i, ch in enumerate(text):
            if 0 <= x + i < len(self.chars):
                self.chars[x + i] = ch
                self.styles[x + i] = style

    def put_cut(self, x: int, text: str, style: str, more: str) -> None:
        """``put``, with a text that would run past the line's end cut and ended with ``more``."""
        room = len(self.chars) - x
        if len(text) > room:
            text = text[: max(room - len(more), 0)] + more
        self.put(x, text, style)

    def text(self, plain: bool) -> Text:
        line = "".join(self.chars).rstrip()
        out = Text(no_wrap=True, overflow="crop")
        if plain:
            out.append(line)
            return out
        start = 0
        for i in range(1, len(line) + 1):
            if i == len(line) or self.styles[i] != self.styles[start]:
                out.append(line[start:i], style=self.styles[start] or None)
                start = i
        return out


def ladder_lines(
    ladder: Ladder,
    *,
    width: int = 80,
    plain: bool = False,
    full: bool = False,
    explain: bool = False,
    rows: Iterable[int] | None = None,
    since: float | None = None,
) -> list[Text]:
    """The ladder as lines of at most ``width`` characters (wider only when too many
    columns cannot fit). ``plain``: ASCII, no styles (stable for golden files and CI logs).
    ``rows``: only these rows of ``ladder.entries`` (the arrows, and the RTP bars among them;
    e.g. ``ladder.geometry(full=full).rows(top, height)``, what a scrolling view shows), after
    the heading and the column heads. ``since``: each arrow's time in seconds after this
    moment (the call's first message, say) instead of the time of day."""
    g = ASCII if plain else UNICODE
    n = max(len(ladder.columns), 1)
    titles = [c.title for c in ladder.columns]
    title_w = max((len(t) for t in titles), default=1)
    half = (title_w + 1) // 2
    legend = False
    gap = (width - MARGIN - 2 * half - 1) // (n - 1) if n > 1 else 0
    if n > 1 and gap < max(MIN_GAP, title_w + 2):
        legend = True
        half = 1
        gap = max((width - MARGIN - 3) // (n - 1), MIN_GAP)
    gap = min(gap, MAX_GAP)
    xs = [MARGIN + half + i * gap for i in range(n)]
    total = max(width, xs[-1] + half + 2)
    lines: list[Text] = []
    dim = "" if plain else "dim"

    h = ladder.heading
    lines.extend(call_header(h, plain=plain, explain=explain))
    if legend:
        for i, col in enumerate(ladder.columns):
            name = leg_letter(i)
            extra = f"  {col.address}" if col.title != col.address else ""
            lines.append(Text(f"  {name} = {col.title}{extra}", no_wrap=True, overflow="crop"))
    head = _Canvas(total)
    head.put(0, "time (UTC)    delta" if since is None else "time (s)      delta")
    for i, x in enumerate(xs):
        label = leg_letter(i) if legend else titles[i]
        head.put(x - len(label) // 2, label, "bold")
    lines.append(head.text(plain))
    lifelines = _Canvas(total)
    for x in xs:
        lifelines.put(x, g.life, dim)
    lines.append(lifelines.text(plain))

    entries = ladder.entries
    for arrow in entries if rows is None else [entries[i] for i in rows]:
        if isinstance(arrow, MediaBar):
            lines.extend(_bar_lines(arrow, xs, total, g, plain, dim))
            continue
        if isinstance(arrow, DtmfNote):
            lines.append(_note_line(arrow, xs, total, g, plain, dim))
            continue
        lines.extend(_arrow_lines(arrow, xs, total, g, plain, dim, h.multi_leg, since))
        if full:
            for raw_line in arrow.raw_lines:
                row = _Canvas(total)
                for x in xs:
                    row.put(x, g.life, dim)
                row.put_cut(MARGIN, "  " + raw_line, dim, g.more)
                lines.append(row.text(plain))
    return lines


def _elapsed(seconds: float) -> str:
    """Seconds since the start, in the 12 characters of the time of day (``12.345``)."""
    if seconds < 1e7:
        return f"{seconds:.3f}"
    return f"{seconds:.0f}"


def _arrow_lines(
    arrow: Arrow,
    xs: Sequence[int],
    total: int,
    g: _Glyphs,
    plain: bool,
    dim: str,
    multi_leg: bool,
    since: float | None = None,
) -> list[Text]:
    style = STYLES[arrow.cls]
    if arrow.retransmission:
        style = "dim " + style
    x1, x2 = xs[arrow.src], xs[arrow.dst]
    left = min(x1, x2)
    label = arrow.marked

    top = _Canvas(total)
    for x in xs:
        top.put(x, g.life, dim)
    top.put(0, clock(arrow.timestamp) if since is None else _elapsed(arrow.timestamp - since))
    top.put(13, delta(arrow.delta), dim)
    top.put_cut(left + 2, label, style, g.more)

    body = _Canvas(total)
    for x in xs:
        body.put(x, g.life, dim)
    where = arrow.where
    body.put(MARGIN - 2 - len(where), where, dim)
    if multi_leg:
        body.put(0, f"leg {leg_letter(arrow.leg)}", "" if plain else LEG_STYLES[arrow.leg % len(LEG_STYLES)])
    stroke = g.dashed if arrow.retransmission else g.line
    if x1 == x2:
        body.put(x1 + 1, g.line + g.loop, style)
    elif x1 < x2:
        body.put(x1 + 1, stroke * (x2 - x1 - 2) + g.right, style)
    else:
        body.put(x2 + 1, g.left + stroke * (x1 - x2 - 2), style)
    out = [top.text(plain), body.text(plain)]
    if arrow.sdp:
        note = _Canvas(total)
        for x in xs:
            note.put(x, g.life, dim)
        # Shift a long note left (over other lifelines) rather than crop it.
        note.put_cut(max(min(left + 2, total - len(arrow.sdp)), MARGIN), arrow.sdp, dim, g.more)
        out.append(note.text(plain))
    return out


def _bar_lines(bar: MediaBar, xs: Sequence[int], total: int, g: _Glyphs, plain: bool, dim: str) -> list[Text]:
    """An RTP bar: the first packet's time, the label and span; then the frame of the first
    packet and a double line with the stream's direction."""
    style = "" if plain else BAR_STYLE
    x1, x2 = xs[bar.src], xs[bar.dst]

    top = _Canvas(total)
    for x in xs:
        top.put(x, g.life, dim)
    top.put(0, clock(bar.first_time))
    top.put(13, delta(bar.delta), dim)
    text = bar.text
    # Shifted left (over other lifelines) rather than cropped, as an SDP note.
    top.put_cut(max(min(min(x1, x2) + 2, total - len(text)), MARGIN), text, style, g.more)

    body = _Canvas(total)
    for x in xs:
        body.put(x, g.life, dim)
    frame = f"#{bar.first_frame}"
    body.put(MARGIN - 2 - len(frame), frame, dim)
    if x1 == x2:
        body.put(x1 + 1, g.bar + g.loop, style)
    elif x1 < x2:
        body.put(x1 + 1, g.bar * (x2 - x1 - 2) + g.right, style)
    else:
        body.put(x2 + 1, g.left + g.bar * (x1 - x2 - 2), style)
    return [top.text(plain), body.text(plain)]


def _note_line(note: DtmfNote, xs: Sequence[int], total: int, g: _Glyphs, plain: bool, dim: str) -> Text:
    """A DTMF digit: its time, then on its sender's lifeline a mark and the label with the
    frame: ``│ * DTMF 5 (RFC 4733, 280 ms) #488``."""
    line = _Canvas(total)
    for x in xs:
        line.put(x, g.life, dim)
    line.put(0, clock(note.first_time))
    line.put(13, delta(note.delta), dim)
    text = f"{note.label} #{note.first_frame}"
    x = xs[note.col]
    line.put(x, g.note, "" if plain else BAR_STYLE)
    line.put_cut(max(min(x + 2, total - len(text)), MARGIN), text, "" if plain else BAR_STYLE, g.more)
    return line.text(plain)


def call_header(head: Heading | Call, *, plain: bool = False, explain: bool = False) -> list[Text]:
    """A call's headline: who called whom, outcome, timings, Call-ID(s)."""
    h = head if isinstance(head, Heading) else heading(head)
    state_style = "" if plain else STATE_STYLES[h.state]
    line = Text(no_wrap=False)
    line.append(f"Call {h.index}: ", "" if plain else "bold")
    line.append(f"{h.from_} -> {h.to}")
    line.append("  ")
    line.append(h.state.value, state_style)
    if h.final_status is not None:
        line.append(f" {h.final_status} {h.final_reason}".rstrip(), state_style)
    if h.kind.value != "call":
        line.append(f"  [{h.kind.value}]")
    _, lines = call_summary(h)  # the same words as the other formats
    out = [line]
    if explain and (h.multi_leg or h.related):
        out.append(Text("  " + lines[0]))
        out.extend(_explain(h))
    else:
        out.extend(Text("  " + text, no_wrap=True, overflow="crop") for text in lines)
    out.append(Text(""))
    return out


class LadderView:
    """A rich renderable of a ladder; reads the width and ASCII-only flag from the console."""

    def __init__(
        self, ladder: Ladder, *, full: bool = False, plain: bool = False, explain: bool = False
    ) -> None:
        self.ladder = ladder
        self.full = full
        self.plain = plain
        self.explain = explain

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from ladder_lines(
            self.ladder,
            width=options.max_width,
            plain=self.plain or options.ascii_only,
            full=self.full,
            explain=self.explain,
        )


def explain_lines(call: Call) -> list[Text]:
    """Per leg its Call-ID, and per link the evidence (``--explain``)."""
    return _explain(heading(call))


def _explain(h: Heading) -> list[Text]:
    out = [Text(f"  leg {n.letter}: {n.call_id}  {n.path}", no_wrap=True, overflow="crop") for n in h.legs]
    for link in h.links:
        out.append(Text(f"  {link.a}-{link.b}: {link.method}, confidence {link.confidence:.2f}"))
        out.extend(Text(f"      - {e}") for e in link.evidence)
    out.extend(Text(f"  related (transfer): {other}") for other in h.related)
    return out
