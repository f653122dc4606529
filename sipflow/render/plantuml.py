"""The ladder as a PlantUML sequence diagram (``@startuml`` … ``@enduml``).

Packet text is untrusted: it reaches the diagram only through ``_text``, which writes any
character outside a short harmless list as a numeric entity (``&#34;``, or ``<U+003C>`` for
``<``, ``>``, ``$`` and ``\\``), which PlantUML shows as the character. So no packet text can
start markup (``<img:…>``, ``<color>``, ``[[link]]``, ``**bold**``, ``--strike--``), a
preprocessor call (``%getenv()``, ``$var``, ``!include``), a comment (``'``, ``/'``) or a line
break (``\\n``). The output is plain ASCII, whatever the reader's default charset.
"""

from __future__ import annotations

import re
import string

from sipflow.render.ladder import Arrow, ArrowClass, DtmfNote, Ladder, MediaBar
from sipflow.render.summary import NOTE_LIMIT, arrow_text, call_summary, cut, delta
from sipflow.render.text import clean, clock

COLORS: dict[ArrowClass, str] = {
    ArrowClass.REQUEST: "#0277bd",
    ArrowClass.PROVISIONAL: "#ef6c00",
    ArrowClass.SUCCESS: "#2e7d32",
    ArrowClass.FAILURE: "#c62828",
}
"""Arrow colour by class (the terminal's cyan, yellow, green, red, darkened for paper)."""
BAR_COLOR = "#8e3b96"
"""RTP bars: the terminal's magenta, darkened for paper."""

_SAFE = frozenset(string.ascii_letters + string.digits + " .,:;@+-/()[]=?*_|")
_DOUBLED = re.compile(r"([-*/_=\[\]|])\1+")
"""Creole markup is a doubled character (``--strike--``, ``[[link]]``): runs are encoded."""


def _entity(c: str) -> str:
    # PlantUML decodes &#NN; first, then <U+XXXX> (once, left to right). So "<" is <U+003C>, or
    # "&#60;U+0041>" would become "A"; and 1.2020 puts a decoded &#NN; into a regex
    # replacement, where "$" and "\\" break it. <U+XXXX> also covers code points above U+FFFF.
    if c in "<>$\\" or ord(c) > 0xFFFF:
        return f"<U+{ord(c):04X}>"
    return f"&#{ord(c)};"


def _text(text: str) -> str:
    """Packet text for a PlantUML label, note, participant name or title line."""
    text = clean(text)
    pieces: list[str] = []
    pos = 0
    for match in _DOUBLED.finditer(text):
        pieces.append(_plain(text[pos : match.start()]))
        pieces.append("".join(_entity(c) for c in match.group(0)))
        pos = match.end()
    pieces.append(_plain(text[pos:]))
    return "".join(pieces)


def _plain(text: str) -> str:
    return "".join(c if c in _SAFE else _entity(c) for c in text)


def ladder_plantuml(ladder: Ladder) -> str:
    """The ladder as PlantUML: participants in column order (quoted address, alias above it),
    one arrow per message coloured by class (``-[#2e7d32]>``; dashed ``-[#…]->`` for a
    retransmission) labelled ``time +delta [leg] label #frame``, a note over each SDP offer or
    answer; the call's headline, timings and Call-IDs as the title. Each RTP stream
    (``Ladder.bars``) is a bold arrow (``-[#8e3b96,bold]>``) where its first packet falls,
    labelled ``time RTP PCMA 548 pkts 0.0% lost (24.1 s, until #3892) #frame``; each DTMF digit
    (``Ladder.notes``) a hexagonal note over its sender: ``time DTMF 5 (RFC 4733, 280 ms) #frame``."""
    head = ladder.heading
    multi_leg = head.multi_leg
    title, details = call_summary(head, _text)
    out = ["@startuml", "title", title, *details, "end title"]
    for i, column in enumerate(ladder.columns):
        name = _text(column.title)
        if column.title != column.address:
            name += "\\n" + _text(column.address)
        out.append(f'participant "{name}" as P{i}')
    for entry in ladder.entries:
        if isinstance(entry, MediaBar):
            label = f"{clock(entry.first_time)} {_text(entry.text)} #{entry.first_frame}"
            out.append(f"P{entry.src} -[{BAR_COLOR},bold]> P{entry.dst} : {label}")
            continue
        if isinstance(entry, DtmfNote):
            label = f"{clock(entry.first_time)} {_text(entry.label)} #{entry.first_frame}"
            out.append(f"hnote over P{entry.col} {BAR_COLOR} : {label}")
            continue
        arrow: Arrow = entry
        color = COLORS[arrow.cls]
        stroke = f"-[{color}]->" if arrow.retransmission else f"-[{color}]>"
        label = (
            f"{clock(arrow.timestamp)} {delta(arrow.delta)} "
            f"{_text(arrow_text(arrow, multi_leg=multi_leg))} #{_text(arrow.frame)}"
        )
        out.append(f"P{arrow.src} {stroke} P{arrow.dst} : {label}")
        if arrow.sdp:
            lo, hi = sorted((arrow.src, arrow.dst))
            over = f"P{lo}" if lo == hi else f"P{lo}, P{hi}"
            out.append(f"note over {over} : {_text(cut(arrow.sdp, NOTE_LIMIT))}")
    out.append("@enduml")
    return "\n".join(out) + "\n"
