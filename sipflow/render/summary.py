"""What every renderer says about a call, in the same words: the headline, the facts under
it, leg letters, deltas and arrow texts. Text from packets is cleaned here; each format
escapes it its own way (``esc``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sipflow.model.call import Call, CallKind
from sipflow.render.ladder import Arrow
from sipflow.render.text import clean, ms, seconds
from sipflow.sip.message import NameAddr

LABEL_LIMIT = 80
"""Longest packet-derived text on an arrow (the ladder's label with its body note)."""
NOTE_LIMIT = 120
"""Longest SDP summary in a note."""

_SHORT_METHOD = {"b2bua-heuristic": "heuristic", "p-charging-vector": "PCV", "session-id": "Session-ID"}


def short_method(method: str) -> str:
    """A correlation method as tables and headers show it (``X-CID``, ``heuristic``)."""
    return _SHORT_METHOD.get(method, method.removeprefix("header:"))


def call_facts(call: Call) -> list[str]:
    """PDD, setup, duration, counts: the line under a call's headline, as parts."""
    facts = []
    if call.pdd_ms is not None:
        facts.append(f"PDD {ms(call.pdd_ms)}")
    if call.setup_ms is not None:
        facts.append(f"setup {ms(call.setup_ms)}")
    if call.duration_s is not None:
        facts.append(f"duration {seconds(call.duration_s)}")
    if call.expires_s is not None:
        facts.append(f"expires {call.expires_s} s")
    count = len(call.messages)
    facts.append(f"{count} message" + ("" if count == 1 else "s"))
    if call.retransmissions:
        facts.append(f"{call.retransmissions} retransmission" + ("" if call.retransmissions == 1 else "s"))
    if len(call.legs) > 1:
        facts.append(f"{len(call.legs)} legs")
    return facts


KIND_WORDS: dict[CallKind, tuple[str, str]] = {
    CallKind.CALL: ("call", "calls"),
    CallKind.REGISTRATION: ("registration", "registrations"),
    CallKind.SUBSCRIPTION: ("subscription", "subscriptions"),
    CallKind.OPTIONS: ("OPTIONS", "OPTIONS"),
    CallKind.MESSAGE: ("MESSAGE", "MESSAGEs"),
    CallKind.OTHER: ("other", "others"),
}
"""Each kind of item in words, singular and plural (``1 registration``, ``2 OPTIONS``)."""


def kind_count(kind: CallKind, n: int) -> str:
    """``1 registration``, ``2 OPTIONS``."""
    singular, plural = KIND_WORDS[kind]
    return f"{n} {singular if n == 1 else plural}"


def kinds_summary(calls: Iterable[Call]) -> str:
    """How many items of each kind, in the order of ``CallKind``: ``1 registration, 2 OPTIONS``."""
    counts = dict.fromkeys(CallKind, 0)
    for call in calls:
        counts[call.kind] += 1
    return ", ".join(kind_count(kind, n) for kind, n in counts.items() if n)


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
    lines = [", ".join(call_facts(call))]
    if len(call.legs) == 1:
        lines.append(f"Call-ID: {esc(clean(call.id, 120))}")
    else:
        lines.extend(
            f"leg {leg_letter(i)}: {esc(clean(leg.call_id, 120))}" for i, leg in enumerate(call.legs)
        )
        for link in call.correlation:
            a, b = (leg_letter(i) for i in link.legs)
            lines.append(f"{a}-{b}: {esc(clean(short_method(link.method), 40))} {link.confidence:.2f}")
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


def marked(arrow: Arrow) -> str:
    """The arrow's label followed by its marks: ``487 Request Terminated (matched by CSeq)``."""
    return arrow.label + "".join(f" ({mark})" for mark in arrow.marks)


def arrow_text(arrow: Arrow, *, multi_leg: bool) -> str:
    """The packet-derived part of an arrow's label, marks included, cut to ``LABEL_LIMIT``."""
    label = cut(clean(marked(arrow)), LABEL_LIMIT)
    return f"[{leg_letter(arrow.leg)}] {label}" if multi_leg else label
