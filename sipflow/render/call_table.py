"""The ``sipflow calls`` table: its columns, which of them fit the terminal, and its order.

Every column has a key (``--columns``, ``--sort``), a title, how to fill a cell and how to sort
by it. Without ``--columns``, the table shows the default columns and, on a terminal narrower
than them, drops the least needed first (Call-ID first: it is the longest and the JSON has it)
and then cuts From and To; the columns a user names are never dropped, only cut. Into a pipe or
a file nothing is dropped or cut. Written by hand rather than with ``rich.table``: it is linear
in the rows (a capture can hold tens of thousands of calls).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from rich.text import Text

from sipflow.media.collector import RtpStream
from sipflow.media.quality import quality
from sipflow.model.call import Call, CallState
from sipflow.render.summary import address, short_method
from sipflow.render.text import clean, clock, ms, seconds

STATE_STYLES: Final[Mapping[CallState, str]] = {
    CallState.SETUP: "yellow",
    CallState.RINGING: "yellow",
    CallState.IN_CALL: "green",
    CallState.COMPLETED: "green",
    CallState.CANCELLED: "magenta",
    CallState.REJECTED: "red",
    CallState.FAILED: "bold red",
    CallState.REGISTERED: "green",
    CallState.UNREGISTERED: "cyan",
    CallState.CHALLENGED: "yellow",
    CallState.ANSWERED: "green",
    CallState.ACTIVE: "green",
    CallState.TERMINATED: "cyan",
    CallState.DELIVERED: "green",
    CallState.ACCEPTED: "green",
    CallState.PENDING: "yellow",
}

MIN_SHRUNK = 12
"""Narrowest a cut column (From, To, Call-ID) gets."""

_Streams = Sequence[RtpStream]


def legs_summary(call: Call) -> str:
    """``2 X-CID 0.99``: how many legs, and the weakest evidence that holds them together."""
    if len(call.legs) == 1:
        return ""
    weakest = min(call.correlation, key=lambda link: link.confidence, default=None)
    if weakest is None:
        return str(len(call.legs))
    return f"{len(call.legs)} {short_method(weakest.method)} {weakest.confidence:.2f}"


def _codecs(streams: _Streams) -> str:
    named: dict[str, str] = {}
    for s in streams:
        for c in s.codecs:
            named.setdefault(c.lower(), c)  # encoding names are case-insensitive (RFC 4855 §3)
    return clean(",".join(named.values()), 30)


def _worst_loss(streams: _Streams) -> float | None:
    losses = [s.figures.lost_pct for s in streams if s.figures.lost_pct is not None]
    return max(losses) if losses else None


def _max_jitter(streams: _Streams) -> float | None:
    jitters = [s.figures.max_jitter_ms for s in streams if s.figures.max_jitter_ms is not None]
    return max(jitters) if jitters else None


def _lowest_mos(streams: _Streams) -> float | None:
    scores = [q.mos for q in (quality(s.figures, s.codecs) for s in streams) if q is not None]
    return min(scores) if scores else None


def _transports(call: Call) -> str:
    """The transports of the call's hops, in order of first use: ``UDP``, ``UDP,TLS``."""
    return ",".join(dict.fromkeys(m.transport.value for m in call.messages))


def _number(value: float | None, text: Callable[[float], str]) -> str:
    return "" if value is None else text(value)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the table."""

    key: str
    """Its name for ``--columns`` and ``--sort``."""
    title: str
    cell: Callable[[Call, _Streams], str]
    sort: Callable[[Call, _Streams], object]
    """The value rows sort by (None: after every other value, either direction)."""
    right: bool = False
    shrink: bool = False
    """May be cut (with an ellipsis) when the table is wider than the terminal."""
    media: bool = False
    """Needs the RTP measured (``calls --media``)."""


COLUMNS: Final[tuple[Column, ...]] = (
    Column("index", "#", lambda c, s: str(c.index), lambda c, s: c.index, right=True),
    Column("start", "Start (UTC)", lambda c, s: clock(c.start), lambda c, s: c.start),
    Column("kind", "Kind", lambda c, s: c.kind.value, lambda c, s: c.kind.value),
    Column("from", "From", lambda c, s: address(c.from_), lambda c, s: address(c.from_), shrink=True),
    Column("to", "To", lambda c, s: address(c.to), lambda c, s: address(c.to), shrink=True),
    Column("src", "Source", lambda c, s: str(c.messages[0].src), lambda c, s: str(c.messages[0].src)),
    Column("dst", "Destination", lambda c, s: str(c.messages[0].dst), lambda c, s: str(c.messages[0].dst)),
    Column("transport", "Transport", lambda c, s: _transports(c), lambda c, s: _transports(c)),
    Column("state", "State", lambda c, s: c.state.value, lambda c, s: c.state.value),
    Column(
        "code", "Code", lambda c, s: _number(c.final_status, str), lambda c, s: c.final_status, right=True
    ),
    Column("pdd", "PDD", lambda c, s: ms(c.pdd_ms), lambda c, s: c.pdd_ms, right=True),
    Column("setup", "Setup", lambda c, s: ms(c.setup_ms), lambda c, s: c.setup_ms, right=True),
    Column("duration", "Dur.", lambda c, s: seconds(c.duration_s), lambda c, s: c.duration_s, right=True),
    Column("msgs", "Msgs", lambda c, s: str(len(c.messages)), lambda c, s: len(c.messages), right=True),
    Column(
        "retr", "Retr", lambda c, s: str(c.retransmissions or ""), lambda c, s: c.retransmissions, right=True
    ),
    Column("legs", "Legs", lambda c, s: legs_summary(c), lambda c, s: len(c.legs)),
    Column("rtp", "RTP", lambda c, s: str(len(s)), lambda c, s: len(s), right=True, media=True),
    Column("codec", "Codec", lambda c, s: _codecs(s), lambda c, s: _codecs(s), media=True),
    Column(
        "loss",
        "Loss",
        lambda c, s: _number(_worst_loss(s), lambda v: f"{v:.1f}%"),
        lambda c, s: _worst_loss(s),
        right=True,
        media=True,
    ),
    Column(
        "jitter",
        "Jitter",
        lambda c, s: _number(_max_jitter(s), lambda v: f"{v:.1f} ms"),
        lambda c, s: _max_jitter(s),
        right=True,
        media=True,
    ),
    Column(
        "mos",
        "MOS",
        lambda c, s: _number(_lowest_mos(s), lambda v: f"{v:.2f}"),
        lambda c, s: _lowest_mos(s),
        right=True,
        media=True,
    ),
    Column(
        "call-id",
        "Call-ID",
        lambda c, s: " ".join(clean(i, 200) for i in c.call_ids),
        lambda c, s: c.call_ids[0] if c.call_ids else "",
        shrink=True,
    ),
)
"""Every column, in the order the table shows them."""

BY_KEY: Final[Mapping[str, Column]] = {column.key: column for column in COLUMNS}

DEFAULT: Final = tuple(c.key for c in COLUMNS if c.key != "kind" and not c.media)
"""The columns shown without ``--columns`` (``kind`` with ``--all``, the media ones with
``--media``, each in its place)."""

FIT_STEPS: Final[tuple[tuple[str, str | int], ...]] = (
    ("drop", "call-id"),
    ("cut", 20),
    *(("drop", key) for key in ("transport", "dst", "src", "retr", "legs", "msgs", "setup", "jitter")),
    *(("drop", key) for key in ("codec", "rtp")),
    ("cut", 14),
    *(("drop", key) for key in ("pdd", "kind", "duration", "code", "loss", "mos")),
)
"""How a default table is fitted to a narrow terminal, step by step until it fits: a default
column dropped, or From and To cut to at most so many characters. ``#``, Start, From, To and
State always stay; what is still too wide after the last step is cut further (From, To and
Call-ID down to ``MIN_SHRUNK``) and then cropped."""


def default_columns(*, show_kind: bool, media: bool) -> tuple[str, ...]:
    """The keys of the default table, in order."""
    return tuple(
        c.key for c in COLUMNS if (c.key in DEFAULT or (c.key == "kind" and show_kind) or (c.media and media))
    )


def parse_columns(text: str, *, media: bool) -> tuple[str, ...]:
    """``--columns`` (``from,to,state,pdd``) as keys; raises ``ValueError`` with a one-line
    message for an unknown name, a repeated one, or a media column without ``--media``."""
    keys = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    if not keys:
        raise ValueError("no column named")
    for key in keys:
        if key not in BY_KEY:
            raise ValueError(f"unknown column {clean(key, 40)!r}: choose from {', '.join(BY_KEY)}")
        if BY_KEY[key].media and not media:
            raise ValueError(f"column {key!r} needs --media")
    if len(set(keys)) != len(keys):
        raise ValueError("a column is named twice")
    return keys


def parse_sort(text: str, *, media: bool) -> tuple[str, bool]:
    """``--sort`` (``pdd``, ``-duration``: a leading ``-`` for descending) as (key, descending)."""
    descending = text.startswith("-")
    (key,) = parse_columns(text.removeprefix("-"), media=media)
    return key, descending


def sort_calls(
    calls: Sequence[Call], key: str, *, descending: bool = False, media: Mapping[int, _Streams] | None = None
) -> list[Call]:
    """The calls ordered by column ``key`` (stable: equal values keep capture order); calls
    without a value (no PDD, no MOS) come last in both directions."""
    column = BY_KEY[key]
    streams = media or {}
    valued: list[tuple[object, Call]] = []
    missing: list[Call] = []
    for call in calls:
        value = column.sort(call, streams.get(call.index, ()))
        if value is None:
            missing.append(call)
        else:
            valued.append((value, call))
    valued.sort(key=lambda pair: pair[0], reverse=descending)  # type: ignore[arg-type, return-value]
    return [call for _, call in valued] + missing


def _spans_days(calls: Sequence[Call]) -> bool:
    days = {datetime.fromtimestamp(c.start, UTC).date() for c in calls}
    return len(days) > 1


def _fit(keys: list[str], widths: dict[str, int], width: int, *, chosen: bool) -> None:
    """Drop (unless the user ``chosen`` them) and cut columns until the table fits ``width``."""

    def excess() -> int:
        return sum(widths[k] for k in keys) + 2 * (len(keys) - 1) - width

    def cut(key: str, floor: int) -> None:
        while excess() > 0 and key in keys and widths[key] > floor:
            widths[key] -= 1

    if not chosen:
        for step, arg in FIT_STEPS:
            if excess() <= 0:
                return
            if step == "cut":
                for name in ("from", "to"):
                    cut(name, int(arg))
            elif arg in keys:
                keys.remove(str(arg))
    while excess() > 0:
        cuttable = [k for k in keys if BY_KEY[k].shrink and widths[k] > MIN_SHRUNK]
        if not cuttable:
            return
        widest = max(cuttable, key=lambda k: widths[k])
        widths[widest] -= 1


def fit_widths(
    calls: Sequence[Call],
    keys: Sequence[str],
    width: int,
    *,
    chosen: bool = False,
    media: Mapping[int, _Streams] | None = None,
) -> dict[str, int]:
    """The columns of ``keys`` that ``calls_table`` keeps in ``width``, each with its width
    (From and To cut, default columns dropped: see ``FIT_STEPS``), for a table drawn elsewhere
    with two characters between columns."""
    streams = media or {}
    kept = list(keys)
    widths = {k: len(BY_KEY[k].title) for k in kept}
    for call in calls:
        found = streams.get(call.index, ())
        for k in kept:
            widths[k] = max(widths[k], len(BY_KEY[k].cell(call, found)))
    _fit(kept, widths, width, chosen=chosen)
    return {k: widths[k] for k in kept}


def _cell(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        text = text[: max(width - 1, 0)] + "…"
    return text.rjust(width) if right else text.ljust(width)


def calls_table(
    calls: Sequence[Call],
    *,
    show_kind: bool = False,
    width: int | None = None,
    plain: bool = False,
    media: Mapping[int, _Streams] | None = None,
    columns: Sequence[str] | None = None,
) -> list[Text]:
    """The ``sipflow calls`` table as lines. ``columns``: the keys to show (``parse_columns``),
    else the default ones (``default_columns``); ``width``: fit the terminal (see the module);
    ``media``: the streams by call index, for the media columns (streams, codecs, the worst
    stream's loss, the highest jitter, the lowest MOS). Start shows the date too when the calls
    span more than one day (UTC)."""
    chosen = columns is not None
    keys = (
        list(columns)
        if columns is not None
        else list(default_columns(show_kind=show_kind, media=media is not None))
    )
    streams = media or {}
    dated = _spans_days(calls)
    rows: list[dict[str, str]] = []
    for call in calls:
        found = streams.get(call.index, ())
        row = {k: BY_KEY[k].cell(call, found) for k in keys}
        if dated and "start" in row:
            row["start"] = datetime.fromtimestamp(call.start, UTC).strftime("%Y-%m-%d ") + row["start"]
        rows.append(row)
    widths = {k: max([len(BY_KEY[k].title)] + [len(r[k]) for r in rows]) for k in keys}
    if width is not None:
        _fit(keys, widths, width, chosen=chosen)
    out: list[Text] = []
    head = Text(no_wrap=True, overflow="crop")
    titles = "  ".join(_cell(BY_KEY[k].title, widths[k], BY_KEY[k].right) for k in keys)
    head.append(titles.rstrip(), "" if plain else "bold")
    out.append(head)
    for call, row in zip(calls, rows, strict=True):
        line = Text(no_wrap=True, overflow="crop")
        for i, k in enumerate(keys):
            if i:
                line.append("  ")
            text = _cell(row[k], widths[k], BY_KEY[k].right)
            if i == len(keys) - 1:
                text = text.rstrip()
            line.append(text, None if plain or k != "state" else STATE_STYLES[call.state])
        line.rstrip()
        out.append(line)
    return out
