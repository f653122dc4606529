"""What the call list of ``sipflow browse`` shows: which items, in which order, as plain data.

The list shows the items of the kinds switched on (calls by default; registrations, OPTIONS
pings and the other kinds on request), narrowed by the text typed into the filter box: an
item stays when the text (case-insensitive) is in one of its cells (number, From, To, state,
status, Call-IDs...) or anywhere in one of its messages (any header, the SDP), and sorted by
one of the table's columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sipflow.media.collector import RtpStream
from sipflow.model.call import Call, CallKind
from sipflow.render.call_table import BY_KEY, default_columns, fit_widths, sort_calls
from sipflow.render.text import clean

OTHER_KINDS: frozenset[CallKind] = frozenset({CallKind.SUBSCRIPTION, CallKind.MESSAGE, CallKind.OTHER})
"""The kinds one toggle shows together (subscriptions, MESSAGE, anything else)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ListView:
    """The list's settings: kinds shown, filter text, sort column and direction."""

    kinds: frozenset[CallKind] = frozenset({CallKind.CALL})
    text: str = ""
    sort: str | None = None
    """A column key of ``sipflow.render.call_table``; None: capture order."""
    descending: bool = False
    media: bool = False
    """The RTP was measured: the media columns are shown."""
    columns: tuple[str, ...] = field(default=())
    """Column keys; empty: the table's default for ``media``, with ``kind`` when more kinds
    than calls are shown."""

    def shown_columns(self) -> tuple[str, ...]:
        if self.columns:
            return self.columns
        return default_columns(show_kind=self.kinds != frozenset({CallKind.CALL}), media=self.media)


def fit_columns(
    keys: Sequence[str],
    calls: Sequence[Call],
    media: Mapping[int, Sequence[RtpStream]],
    width: int,
    *,
    chosen: bool = False,
) -> dict[str, int]:
    """The columns of ``keys`` that fit ``width`` (a table's cell padding, the mark column
    and the scroll bar taken off), with their widths, as ``sipflow calls`` fits its table to a
    terminal."""
    return fit_widths(calls, keys, max(width - 7, 20), chosen=chosen, media=media)


def cells(call: Call, keys: Sequence[str], streams: Sequence[RtpStream] = ()) -> list[str]:
    """The call's cells for the columns ``keys``, cleaned of control characters."""
    return [clean(BY_KEY[key].cell(call, streams)) for key in keys]


def matches(call: Call, text: str, streams: Sequence[RtpStream] = ()) -> bool:
    """Whether ``text`` (case-insensitive) is in one of the call's cells or messages."""
    needle = text.strip().lower()
    if not needle:
        return True
    for key in BY_KEY:
        column = BY_KEY[key]
        if column.media and not streams:
            continue
        if needle in column.cell(call, streams).lower():
            return True
    if any(needle in call_id.lower() for call_id in call.call_ids):
        return True
    raw = needle.encode("utf-8", "replace")
    return any(raw in message.sip.raw.lower() for message in call.messages)


def visible(
    calls: Iterable[Call], view: ListView, media: Mapping[int, Sequence[RtpStream]] | None = None
) -> list[Call]:
    """The items the list shows, in its order."""
    streams = media or {}
    out = [
        call
        for call in calls
        if call.kind in view.kinds and matches(call, view.text, streams.get(call.index, ()))
    ]
    if view.sort is not None:
        out = sort_calls(out, view.sort, descending=view.descending, media=streams)
    return out
