"""The ladder (sequence diagram) of a call, as renderer-neutral layout.

Columns are endpoints in order of first appearance (so a proxied call reads caller → proxy
→ callee); rows are messages in capture order. Terminal, SVG and text renderers draw this,
and read nothing else: the layout carries every text a renderer shows (the heading, each
arrow's time, marks, first line, raw lines, leg and SDP summary), so no renderer reaches into
the model (``Ladder.call`` and ``Arrow.message`` are there for other consumers), and the rows'
heights (``Ladder.geometry``) let a scrolling view draw only the rows it shows.

Given the call's RTP streams (``build_ladder(call, media=...)``), the ladder also has a bar per
stream (``MediaBar``, as sngrep's RTP rows): between the columns of its two media endpoints, as
a row among the arrows at the time of its first packet (``Ladder.entries`` has both kinds of
rows in drawing order), and a note per DTMF digit (``DtmfNote``: RFC 4733 telephone events of
its streams, SIP INFO digits of its messages) on the sender's column at the digit's time.
Without media, a ladder has no bars and no notes, and every format draws what it drew before.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from sipflow.capture.types import Endpoint
from sipflow.media.collector import RtpStream
from sipflow.media.dtmf import INFO, DtmfDigit
from sipflow.media.quality import primary_codec
from sipflow.model.call import Call
from sipflow.model.media import call_dtmf, described_addresses
from sipflow.model.message import MatchedBy, Message
from sipflow.render.summary import Heading, heading
from sipflow.render.text import clean, clean_lines
from sipflow.sip.message import SipRequest
from sipflow.sip.sdp import summarize

LABEL_LIMIT = 60
"""Longest method/reason text kept on an arrow (packet text can be anything)."""
CODEC_LIMIT = 20
"""Longest codec name kept on a media bar (it comes from SDP: packet text)."""


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
    transport: str = ""
    """The hop's transport: ``UDP``, ``TCP``, ``TLS``, ``SCTP``, ``WS``, ``WSS``."""

    @property
    def where(self) -> str:
        """The transport and frame shown beside the arrow: ``UDP #17``, ``TLS #2:17``."""
        return f"{self.transport} #{self.frame}" if self.transport else f"#{self.frame}"

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


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaBar:
    """One RTP stream of the call, drawn as a bar from the column of its source to that of its
    destination, as a row among the arrows at the time of its first packet."""

    stream: RtpStream = field(repr=False)
    """The stream (for other consumers: renderers read the fields below)."""
    src: int
    """Column index of the stream's source (the column of its host, see ``build_ladder``)."""
    dst: int
    label: str
    """``RTP PCMA 548 pkts 0.0% lost`` (``3 dup`` when packets came twice), cleaned."""
    row: int
    """Where the bar goes among the arrows: just before ``Ladder.arrows[row]`` (``row ==
    len(arrows)``: after the last); bars of the same row are in order of their first packet."""
    first_time: float
    """Capture time of the stream's first packet, seconds since the epoch."""
    last_time: float
    first_frame: int
    """Frame numbers of the stream's first and last packets."""
    last_frame: int
    delta: float = 0.0
    """Seconds from the row before the bar (a message's time, or another bar's first packet) to
    its first packet; 0 when it comes first."""

    @property
    def duration(self) -> float:
        """Seconds from the first packet to the last."""
        return max(self.last_time - self.first_time, 0.0)

    @property
    def span(self) -> str:
        """How long the stream lasts and where it ends: ``24.1 s, until #3892``."""
        return f"{self.duration:.1f} s, until #{self.last_frame}"

    @property
    def text(self) -> str:
        """The label followed by the span: ``RTP PCMA 548 pkts 0.0% lost (24.1 s, until #3892)``."""
        return f"{self.label} ({self.span})"

    def height(self, *, full: bool = False) -> int:
        """Text lines the terminal ladder draws for this row: the time and label line, the bar."""
        return 2


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfNote:
    """One DTMF digit of the call, as a note on the column of its sender at the time of its
    first packet (of its INFO request)."""

    digit: DtmfDigit = field(repr=False)
    """The digit (for other consumers: renderers read the fields below)."""
    col: int
    """Column index of the sender: the stream's source, or the INFO request's."""
    label: str
    """``DTMF 5 (RFC 4733, 280 ms)`` or ``DTMF 7 (SIP INFO, 160 ms)``, cleaned."""
    row: int
    """Where the note goes among the arrows, as ``MediaBar.row``."""
    first_time: float
    """Capture time of the digit's first packet (its INFO request), seconds since the epoch."""
    first_frame: int
    delta: float = 0.0
    """Seconds from the row before the note to the digit."""

    def height(self, *, full: bool = False) -> int:
        """Text lines the terminal ladder draws for this row: one."""
        return 1


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
    bars: tuple[MediaBar, ...] = ()
    """The call's RTP streams, in order of their first packet (none unless media was given)."""
    notes: tuple[DtmfNote, ...] = ()
    """The call's DTMF digits, in time order (none unless media was given)."""

    @property
    def entries(self) -> tuple[Arrow | MediaBar | DtmfNote, ...]:
        """Every row in drawing order: the arrows, each bar and note before the arrow its
        ``row`` names, bars and notes of one row in time order (just ``arrows`` when there are
        neither)."""
        if not self.bars and not self.notes:
            return self.arrows
        extras: list[MediaBar | DtmfNote] = sorted(
            [*self.bars, *self.notes], key=lambda e: (e.row, e.first_time, e.first_frame)
        )
        out: list[Arrow | MediaBar | DtmfNote] = []
        k = 0
        for i, arrow in enumerate(self.arrows):
            while k < len(extras) and extras[k].row <= i:
                out.append(extras[k])
                k += 1
            out.append(arrow)
        out.extend(extras[k:])
        return tuple(out)

    def geometry(self, *, full: bool = False) -> Geometry:
        """The rows' positions as the terminal ladder draws them (``Arrow.height``,
        ``MediaBar.height``, ``DtmfNote.height``), by position in ``entries``."""
        heights = [entry.height(full=full) for entry in self.entries]
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


def bar_label(stream: RtpStream) -> str:
    """``RTP PCMA 548 pkts 0.0% lost``: the stream's voice codec (``primary_codec``), its
    packets, and its loss (RFC 3550 A.3: of the expected packets) or its duplicates, cleaned."""
    figures = stream.figures
    parts = ["RTP"]
    primary = primary_codec(figures.payload_types, stream.codecs)
    if primary is not None:
        parts.append(clean(primary[1], CODEC_LIMIT))
    parts.append(f"{figures.packets} pkt" if figures.packets == 1 else f"{figures.packets} pkts")
    if figures.lost < 0:
        parts.append(f"{-figures.lost} dup")
    elif figures.lost_pct is not None:
        parts.append(f"{figures.lost_pct:.1f}% lost")
    return " ".join(parts)


def build_ladder(
    call: Call,
    *,
    aliases: Mapping[str, str] | None = None,
    by_host: bool = False,
    media: Sequence[RtpStream] = (),
) -> Ladder:
    """Lay out ``call``: ``aliases`` maps ``ip`` or ``ip:port`` to a name; ``by_host`` makes one
    column per IP address instead of one per IP:port.

    ``media``: the call's RTP streams (``streams_by_call(calls, streams).get(call.index, ())``),
    each drawn as a bar, and the call's DTMF digits (``call_dtmf``) as notes. A media endpoint
    is drawn on the column of its host (SIP and RTP use other ports of the same machine); of
    several columns of that host, on the one of the UA whose SDP described the endpoint, else
    the first; a host without a column gets one, right of the others. A digit's note goes on
    its sender's column: its stream's source, its INFO request's."""
    aliases = aliases or {}
    leg_of = {m.index: i for i, leg in enumerate(call.legs) for m in leg.messages}
    columns: dict[str, Column] = {}
    positions: dict[str, int] = {}
    hosts: dict[str, list[int]] = {}  # host → the columns on it, in order

    # A B2BUA's two sides (often two ports) are one column: the host the legs meet at.
    meeting = {leg.caller.host for leg in call.legs[1:]} & {leg.callee.host for leg in call.legs}

    def col(endpoint: Endpoint) -> int:
        key = _column_key(endpoint, by_host or endpoint.host in meeting)
        if key not in columns:
            columns[key] = Column(key=key, title=clean(_title(key, endpoint, aliases), 40), address=key)
            positions[key] = len(positions)
            hosts.setdefault(endpoint.host, []).append(positions[key])
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
                transport=message.transport.value,
            )
        )
        previous = message.timestamp
    bars: tuple[MediaBar, ...] = ()
    notes: tuple[DtmfNote, ...] = ()
    if media:
        bars, notes = _media_rows(call, media, arrows, col, hosts)
    return Ladder(
        call=call,
        columns=tuple(columns.values()),
        arrows=tuple(arrows),
        heading=heading(call),
        bars=bars,
        notes=notes,
    )


def note_label(digit: DtmfDigit) -> str:
    """``DTMF 5 (RFC 4733, 280 ms)``: the digit, how it was sent, its duration when known."""
    how = "SIP INFO" if digit.source == INFO else "RFC 4733"
    duration = "" if digit.duration_ms is None else f", {digit.duration_ms:.0f} ms"
    return f"DTMF {clean(digit.digit, 8)} ({how}{duration})"


def _media_rows(
    call: Call,
    media: Sequence[RtpStream],
    arrows: Sequence[Arrow],
    col: Callable[[Endpoint], int],
    hosts: Mapping[str, list[int]],
) -> tuple[tuple[MediaBar, ...], tuple[DtmfNote, ...]]:
    # RFC 3264 §5: an m= line (with its c= address) says where its sender receives media; with
    # symmetric RTP (RFC 4961) also where it sends from. So the UA that sent the description of
    # an address is the column to draw that address on, when several columns share its host.
    described: dict[tuple[str, int], Endpoint] = {}
    for key, message in described_addresses(call):
        described.setdefault(key, message.src)

    def media_col(endpoint: Endpoint) -> int:
        on_host = hosts.get(endpoint.host)
        if not on_host:
            return col(endpoint)  # a new column, right of the others
        sender = described.get((endpoint.host, endpoint.port))
        if sender is not None and sender.host == endpoint.host:
            preferred = col(sender)
            if preferred in on_host:
                return preferred
        return on_host[0]

    # Every bar and note first without its place; then, in time order, its row and delta.
    unplaced: list[MediaBar | DtmfNote] = [
        MediaBar(
            stream=stream,
            src=media_col(stream.src),
            dst=media_col(stream.dst),
            label=bar_label(stream),
            row=0,
            first_time=stream.first_time,
            last_time=stream.last_time,
            first_frame=stream.first_frame,
            last_frame=stream.last_frame,
        )
        for stream in media
    ]
    senders = {id(d): media_col(s.src) for s in media for d in s.dtmf}
    infos = {(m.frame, m.timestamp): m.src for m in call.messages}
    for digit in call_dtmf(call, media):
        sender = senders.get(id(digit))
        if sender is None:
            info_src = infos.get((digit.frame, digit.time))
            if info_src is None:
                continue
            sender = col(info_src)
        unplaced.append(
            DtmfNote(
                digit=digit,
                col=sender,
                label=note_label(digit),
                row=0,
                first_time=digit.time,
                first_frame=digit.frame,
            )
        )

    times = [arrow.timestamp for arrow in arrows]
    bars: list[MediaBar] = []
    notes: list[DtmfNote] = []
    last_row, last_time = -1, 0.0
    for entry in sorted(unplaced, key=lambda e: (e.first_time, e.first_frame)):
        when = entry.first_time
        row = bisect.bisect_right(times, when)
        if row == last_row:
            previous: float | None = last_time
        else:
            previous = times[row - 1] if row else None
        placed = replace(entry, row=row, delta=0.0 if previous is None else when - previous)
        if isinstance(placed, MediaBar):
            bars.append(placed)
        else:
            notes.append(placed)
        last_row, last_time = row, when
    return tuple(bars), tuple(notes)
