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
from collections.abc import Callable

from sipflow.model.call import Call
from sipflow.render.ladder import Arrow, Ladder
from sipflow.render.text import clean, clock, ms, seconds
from sipflow.sip.message import NameAddr

LABEL_LIMIT = 80
"""Longest packet-derived text on an arrow (the ladder's label with its body note)."""
NOTE_LIMIT = 120
"""Longest SDP summary in a note."""

_SAFE = frozenset(string.ascii_letters + string.digits + " .,:_@+-/()[]=!?*~|'^")
"""Characters written as they are; any other ASCII character becomes an entity code."""
_SHORT_METHOD = {"b2bua-heuristic": "heuristic", "p-charging-vector": "PCV", "session-id": "Session-ID"}


# --- the headline, shared by the text formats -----------------------------------------------


def address(addr: NameAddr | None) -> str:
    """``user@host`` of a From/To (scheme and parameters dropped), cleaned."""
    if addr is None:
        return ""
    uri = addr.uri
    text = uri.raw
    if uri.host is not None:
        text = f"{uri.user}@{uri.host}" if uri.user else uri.host
    return clean(text, 60)


def leg_letter(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"Z{i - 25}"


def _same(text: str) -> str:
    return text


def call_summary(call: Call, esc: Callable[[str], str] = _same, arrow: str = "->") -> tuple[str, list[str]]:
    """A call's headline (``Call 1: alice@a -> bob@b  completed 200 OK``) and the lines under
    it (timings and counts; Call-ID, or per leg its Call-ID and the links between legs), as
    the terminal ladder shows them. Text from packets is cleaned and passed through ``esc``
    (the format's escaping); sipflow's own words are not."""
    title = f"Call {call.index}: {esc(address(call.from_))} {arrow} {esc(address(call.to))}  "
    title += call.state.value
    if call.final_status is not None:
        title += f" {call.final_status} {esc(clean(call.final_reason or '', 40))}".rstrip()
    if call.kind.value != "call":
        title += f"  [{call.kind.value}]"
    facts = []
    if call.pdd_ms is not None:
        facts.append(f"PDD {ms(call.pdd_ms)}")
    if call.setup_ms is not None:
        facts.append(f"setup {ms(call.setup_ms)}")
    if call.duration_s is not None:
        facts.append(f"duration {seconds(call.duration_s)}")
    count = len(call.messages)
    facts.append(f"{count} message" + ("" if count == 1 else "s"))
    if call.retransmissions:
        facts.append(f"{call.retransmissions} retransmission" + ("" if call.retransmissions == 1 else "s"))
    if len(call.legs) > 1:
        facts.append(f"{len(call.legs)} legs")
    lines = [", ".join(facts)]
    if len(call.legs) == 1:
        lines.append(f"Call-ID: {esc(clean(call.id, 120))}")
    else:
        lines.extend(
            f"leg {leg_letter(i)}: {esc(clean(leg.call_id, 120))}" for i, leg in enumerate(call.legs)
        )
        for link in call.correlation:
            a, b = (leg_letter(i) for i in link.legs)
            method = _SHORT_METHOD.get(link.method, link.method.removeprefix("header:"))
            lines.append(f"{a}-{b}: {esc(clean(method, 40))} {link.confidence:.2f}")
    if call.related:
        lines.append(f"related (transfer): {', '.join(esc(clean(c, 120)) for c in call.related)}")
    return title, lines


def delta(value: float) -> str:
    """Seconds since the previous message, as the terminal ladder writes them."""
    if value < 100:
        return f"+{value:.3f}"
    if value < 100_000:
        return f"+{value:.1f}"
    return f"+{value:.0f}"


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def arrow_text(arrow: Arrow, *, multi_leg: bool) -> str:
    """The packet-derived part of an arrow's label, marks included, cut to ``LABEL_LIMIT``."""
    label = arrow.label
    if arrow.message.retransmission:
        label += " (retransmission)"
    if arrow.message.truncated:
        label += " (truncated)"
    label = cut(clean(label), LABEL_LIMIT)
    return f"[{leg_letter(arrow.leg)}] {label}" if multi_leg else label


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
    ``time +delta [leg] label #frame``, a note under each SDP offer or answer."""
    call = ladder.call
    multi_leg = len(call.legs) > 1
    title, details = call_summary(call, _text, "→")
    out = ["sequenceDiagram", f"    title {title}"]
    for i, column in enumerate(ladder.columns):
        name = column.title if column.title == column.address else f"{column.title} ({column.address})"
        out.append(f"    participant P{i} as {_text(name)}")
    if ladder.columns:
        out.append(f"    Note over {_participants(0, len(ladder.columns) - 1)}: " + "<br/>".join(details))
    for arrow in ladder.arrows:
        stroke = "-->>" if arrow.message.retransmission else "->>"
        label = (
            f"{clock(arrow.message.timestamp)} {delta(arrow.delta)} "
            f"{_text(arrow_text(arrow, multi_leg=multi_leg))} #35;{_text(arrow.frame)}"
        )
        out.append(f"    P{arrow.src}{stroke}P{arrow.dst}: {label}")
        if arrow.sdp:
            out.append(
                f"    Note over {_participants(arrow.src, arrow.dst)}: {_text(cut(arrow.sdp, NOTE_LIMIT))}"
            )
    return "\n".join(out) + "\n"
