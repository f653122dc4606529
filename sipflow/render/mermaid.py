"""The ladder as a Mermaid ``sequenceDiagram`` (rendered by GitHub and GitLab markdown).

Packet text is untrusted: it reaches the diagram only through ``_text``, which leaves a short
list of harmless characters as they are and writes every other one as a Mermaid entity code
(``#59;`` for ``;``). Mermaid turns those codes into HTML entities after parsing, so no packet
text can end a statement (``;``, newline), start a comment (``#``, ``%%``), a directive
(``%%{``), markup (``<``, ``&``) or KaTeX (``$$``). Participants get ids ``P0``, ``P1``…
and their address only as a description.

The wording of a call's headline is shared with the other text formats (``call_summary``).
"""

from __future__ import annotations

import string

from sipflow.render.ladder import Arrow, DtmfNote, Ladder, MediaBar
from sipflow.render.summary import NOTE_LIMIT, arrow_text, call_summary, cut, delta
from sipflow.render.text import clean, clock

_SAFE = frozenset(string.ascii_letters + string.digits + " .,:_@+-/()[]=!?*~|'^")
"""Characters written as they are; any other ASCII character becomes an entity code."""


# --- Mermaid ---------------------------------------------------------------------------------


def _text(text: str) -> str:
    """Packet text for any Mermaid text position (title, description, message, note)."""
    out = "".join(
        c if c in _SAFE or (ord(c) > 0x7F and c.isprintable()) else f"#{ord(c)};" for c in clean(text)
    )
    # Mermaid strips the last ";" of a line matching /style.*:\S*#.*;/ (and classDef) before it
    # parses: that would cut an entity code, so those words never appear whole.
    return out.replace("style", "styl#101;").replace("classDef", "classDe#102;")


def _participants(first: int, last: int) -> str:
    lo, hi = sorted((first, last))
    return f"P{lo}" if lo == hi else f"P{lo},P{hi}"


def ladder_mermaid(ladder: Ladder) -> str:
    """The ladder as a Mermaid ``sequenceDiagram``: participants in column order (``P0`` as
    alias and address), one arrow per message (``->>``; ``-->>`` for a retransmission) labelled
    ``time +delta [leg] label #frame``, a note under each SDP offer or answer, and a note
    over the two columns of each RTP stream (``Ladder.bars``) where its first packet falls:
    ``time ⇒ RTP PCMA 548 pkts 0.0% lost (24.1 s, until #3892) #frame`` (``⇒``: from the
    left column to the right one, ``⇐`` the other way), and a note right of the sender of each
    DTMF digit (``Ladder.notes``): ``time DTMF 5 (RFC 4733, 280 ms) #frame``."""
    head = ladder.heading
    multi_leg = head.multi_leg
    title, details = call_summary(head, _text, "→")
    out = ["sequenceDiagram", f"    title {title}"]
    for i, column in enumerate(ladder.columns):
        name = column.title if column.title == column.address else f"{column.title} ({column.address})"
        out.append(f"    participant P{i} as {_text(name)}")
    if ladder.columns:
        out.append(f"    Note over {_participants(0, len(ladder.columns) - 1)}: " + "<br/>".join(details))
    for entry in ladder.entries:
        if isinstance(entry, MediaBar):
            out.append(_bar(entry))
            continue
        if isinstance(entry, DtmfNote):
            text = f"{clock(entry.first_time)} {_text(entry.label)} #35;{entry.first_frame}"
            out.append(f"    Note right of P{entry.col}: {text}")
            continue
        arrow: Arrow = entry
        stroke = "-->>" if arrow.retransmission else "->>"
        label = (
            f"{clock(arrow.timestamp)} {delta(arrow.delta)} "
            f"{_text(arrow_text(arrow, multi_leg=multi_leg))} #35;{_text(arrow.frame)}"
        )
        out.append(f"    P{arrow.src}{stroke}P{arrow.dst}: {label}")
        if arrow.sdp:
            out.append(
                f"    Note over {_participants(arrow.src, arrow.dst)}: {_text(cut(arrow.sdp, NOTE_LIMIT))}"
            )
    return "\n".join(out) + "\n"


def _bar(bar: MediaBar) -> str:
    way = "⇒" if bar.src <= bar.dst else "⇐"
    text = f"{clock(bar.first_time)} {way} {_text(bar.text)} #35;{bar.first_frame}"
    return f"    Note over {_participants(bar.src, bar.dst)}: {text}"
