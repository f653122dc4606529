"""The ladder (sequence diagram) of a call, as renderer-neutral layout.

Columns are endpoints in order of first appearance (so a proxied call reads caller → proxy
→ callee); rows are messages in capture order. Terminal, SVG and text renderers draw this,
and read nothing else: the layout carries every text a renderer shows (the heading, each
arrow's time, marks, first line, raw lines, leg and SDP summary), so no renderer reaches into
the model (``Ladder.call`` and ``Arrow.message`` are there for other consumers), and the rows'
heights (``Ladder.geometry``) let a scrolling view draw only the rows it shows.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sipflow.capture.types import Endpoint
from sipflow.model.call import Call
from sipflow.model.message import MatchedBy, Message
from sipflow.render.summary import Heading, heading
from sipflow.render.text import clean, clean_lines
from sipflow.sip.message import SipRequest
from sipflow.sip.sdp import summarize

LABEL_LIMIT = 60
"""Longest method/reason text kept on an arrow (packet text can be anything)."""


class ArrowClass(StrEnum):
    """The colour classes of arrows."""

    REQUEST = "request"
    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "failure"
    """3xx–6xx."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    key: str
    """What the column stands for: ``ip:port``, or the IP with ``by_host``."""
    title: str
    """The alias if one was given, else ``key``."""
    address: str
    """``key`` again, for renderers that show both alias and address."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrow:
    message: Message
    src: int
    """Column index of the sender."""
    dst: int
    label: str
    """Method (with ``(SDP)`` when it carries a body) or ``status reason``, cleaned."""
    cls: ArrowClass
    delta: float
    """Seconds since the previous row (0 for the first)."""
    sdp: str | None
    """One-line SDP summary of an offer or answer, cleaned."""
    leg: int
    """Index of the leg (in ``Call.legs``) the message belongs to."""
    frame: str
    """Where to find the message: its frame number, prefixed with the file's number (``2:17``)
    when the call spans several files."""
    marks: tuple[str, ...] = ()
    """What is odd about the message, shown after its label in parentheses, in this order:
    ``retransmission``, ``truncated`` (the capture cut it short), ``matched by CSeq`` (its
    Via is missing or names no transaction, ``MatchedBy.CSEQ``)."""
    timestamp: float = 0.0
    """Capture time of the message, seconds since the epoch."""
    retransmission: bool = False
    """The message repeats an earlier one of its transaction (drawn dashed or dimmed)."""
    call_id: str = ""
    """The message's Call-ID as captured (not cleaned)."""
    raw: bytes = field(default=b"", repr=False)
    """The message as captured (not cleaned: ``first_line`` and ``raw_lines`` are)."""

    @property
    def marked(self) -> str:
        """The label followed by the marks: ``487 Request Terminated (matched by CSeq)``."""
        return self.label + "".join(f" ({mark})" for mark in self.marks)

    @property
    def first_line(self) -> str:
        """The request or status line as captured (decoded, not cleaned: each format makes it
        safe its own way)."""
        return self.raw.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")

    @property
    def raw_lines(self) -> list[str]:
        """The message as display lines, each cleaned, without trailing empty lines."""
        lines = clean_lines(self.raw)
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def height(self, *, full: bool = False) -> int:
        """Text lines the terminal ladder draws for this row: the time and label line, the
        arrow line, the SDP note when there is one, and with ``full`` the raw lines."""
        return 2 + (1 if self.sdp else 0) + (len(self.raw_lines) if full else 0)


@dataclass(frozen=True, slots=True)
class Geometry:
    """Where each row of a ladder starts, in text lines from the first row (``tops``), and
    how many lines all rows take; ``rows`` finds the rows a window of lines shows."""

    tops: tuple[int, ...]
    total: int

    def rows(self, first: int, count: int) -> range:
        """The rows with a line in ``[first, first + count)``."""
        if count <= 0 or first >= self.total or first + count <= 0:
            return range(0)
        start = max(bisect.bisect_right(self.tops, first) - 1, 0)
        stop = bisect.bisect_left(self.tops, first + count)
        return range(start, max(stop, start))


@dataclass(frozen=True, slots=True, kw_only=True)
class Ladder:
    call: Call
    columns: tuple[Column, ...]
    arrows: tuple[Arrow, ...]
    heading: Heading
    """What the formats say above the ladder (the call's headline, facts, legs and links)."""

    def geometry(self, *, full: bool = False) -> Geometry:
        """The rows' positions as the terminal ladder draws them (``Arrow.height``)."""
        heights = [a.height(full=full) for a in self.arrows]
        tops = tuple(itertools.accumulate(heights, initial=0))
        return Geometry(tops=tops[:-1], total=tops[-1])


def _classify(message: Message) -> ArrowClass:
    sip = message.sip
    if isinstance(sip, SipRequest):
        return ArrowClass.REQUEST
    if sip.status < 200:
        return ArrowClass.PROVISIONAL
    if sip.status < 300:
        return ArrowClass.SUCCESS
    return ArrowClass.FAILURE


def _marks(message: Message) -> tuple[str, ...]:
    marks = []
    if message.retransmission:
        marks.append("retransmission")
    if message.truncated:
        marks.append("truncated")
    if message.matched_by is MatchedBy.CSEQ:
        marks.append("matched by CSeq")
    return tuple(marks)


def _column_key(endpoint: Endpoint, by_host: bool) -> str:
    return endpoint.host if by_host else str(endpoint)


def _title(key: str, endpoint: Endpoint, aliases: Mapping[str, str]) -> str:
    for candidate in (key, str(endpoint), endpoint.host):
        if candidate in aliases:
            return aliases[candidate]
    return key


def build_ladder(call: Call, *, aliases: Mapping[str, str] | None = None, by_host: bool = False) -> Ladder:
    """Lay out ``call``: ``aliases`` maps ``ip`` or ``ip:port`` to a name; ``by_host`` makes one
    column per IP address instead of one per IP:port."""
    aliases = aliases or {}
    leg_of = {m.index: i for i, leg in enumerate(call.legs) for m in leg.messages}
    columns: dict[str, Column] = {}
    positions: dict[str, int] = {}

    # A B2BUA's two sides (often two ports) are one column: the host the legs meet at.
    meeting = {leg.caller.host for leg in call.legs[1:]} & {leg.callee.host for leg in call.legs}

    def col(endpoint: Endpoint) -> int:
        key = _column_key(endpoint, by_host or endpoint.host in meeting)
        if key not in columns:
            columns[key] = Column(key=key, title=clean(_title(key, endpoint, aliases), 40), address=key)
            positions[key] = len(positions)
        return positions[key]

    files = list(dict.fromkeys(m.file for m in call.messages))
    roles = {index: role for leg in call.legs for index, role in leg.negotiation.roles.items()}
    arrows: list[Arrow] = []
    previous: float | None = None
    for message in call.messages:
        src, dst = col(message.src), col(message.dst)
        sdp = None
        body_note = ""
        if message.sip.body:
            negotiated = roles.get(message.index)
            if negotiated is not None:
                role, description = negotiated
                sdp = clean(summarize(description), 200)
                body_note = f" (SDP {role.value})"
            elif message.sip.content_type:
                body_note = f" ({clean(message.sip.content_type, 30)})"
        arrows.append(
            Arrow(
                message=message,
                src=src,
                dst=dst,
                label=clean(message.label, LABEL_LIMIT) + body_note,
                cls=_classify(message),
                delta=0.0 if previous is None else message.timestamp - previous,
                sdp=sdp,
                leg=leg_of.get(message.index, 0),
                frame=(f"{files.index(message.file) + 1}:" if len(files) > 1 else "") + str(message.frame),
                marks=_marks(message),
                timestamp=message.timestamp,
                retransmission=message.retransmission,
                call_id=message.sip.call_id or "",
                raw=message.sip.raw,
            )
        )
        previous = message.timestamp
    return Ladder(call=call, columns=tuple(columns.values()), arrows=tuple(arrows), heading=heading(call))
