"""What every renderer says about a call, in the same words: the headline, the facts under
it, leg letters, deltas and arrow texts. Text from packets is cleaned here; each format
escapes it its own way (``esc``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipflow.model.call import Call, CallKind, CallState
from sipflow.render.text import clean, ms, seconds
from sipflow.sip.message import NameAddr

if TYPE_CHECKING:
    from sipflow.render.ladder import Arrow

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


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkNote:
    """One correlation link between two legs, as a heading tells it."""

    a: str
    """Leg letter of one side (``A``)."""
    b: str
    method: str
    """The method, short (``short_method``): sipflow's or the configuration's words."""
    confidence: float
    evidence: tuple[str, ...]
    """Why the legs were linked, each cleaned."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LegNote:
    """One leg, as a heading tells it."""

    letter: str
    call_id: str
    """Cleaned."""
    path: str
    """``caller -> hop -> ...`` of its initial request, or empty."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Heading:
    """What every format says above a call's ladder, taken from the call once: text from
    packets cleaned (each format escapes it its own way), sipflow's own words as they are."""

    index: int
    from_: str
    """``user@host`` of the caller (``address``)."""
    to: str
    state: CallState
    final_status: int | None
    final_reason: str
    """Cleaned, at most 40 characters."""
    kind: CallKind
    facts: tuple[str, ...]
    """PDD, setup, duration, counts (``call_facts``)."""
    call_id: str
    """The call's id, cleaned (its only leg's Call-ID)."""
    legs: tuple[LegNote, ...]
    links: tuple[LinkNote, ...]
    related: tuple[str, ...]
    """Call-IDs of calls this one was transferred to or from, cleaned."""

    @property
    def multi_leg(self) -> bool:
        return len(self.legs) > 1


def heading(call: Call) -> Heading:
    """The heading of ``call``."""
    legs = []
    for i, leg in enumerate(call.legs):
        path = " -> ".join([str(leg.caller)] + [str(b) for _, b in leg.hops]) if leg.hops else ""
        legs.append(LegNote(letter=leg_letter(i), call_id=clean(leg.call_id, 120), path=path))
    links = tuple(
        LinkNote(
            a=leg_letter(link.legs[0]),
            b=leg_letter(link.legs[1]),
            method=short_method(link.method),
            confidence=link.confidence,
            evidence=tuple(clean(e, 200) for e in link.evidence),
        )
        for link in call.correlation
    )
    return Heading(
        index=call.index,
        from_=address(call.from_),
        to=address(call.to),
        state=call.state,
        final_status=call.final_status,
        final_reason=clean(call.final_reason or "", 40),
        kind=call.kind,
        facts=tuple(call_facts(call)),
        call_id=clean(call.id, 120),
        legs=tuple(legs),
        links=links,
        related=tuple(clean(c, 120) for c in call.related),
    )


def call_summary(
    head: Heading | Call, esc: Callable[[str], str] = _same, arrow: str = "->"
) -> tuple[str, list[str]]:
    """A call's headline (``Call 1: alice@a -> bob@b  completed 200 OK``) and the lines under
    it (timings and counts; Call-ID, or per leg its Call-ID and the links between legs), as
    the terminal ladder shows them. Text from packets is passed through ``esc`` (the format's
    escaping); sipflow's own words are not."""
    h = head if isinstance(head, Heading) else heading(head)
    title = f"Call {h.index}: {esc(h.from_)} {arrow} {esc(h.to)}  {h.state.value}"
    if h.final_status is not None:
        title += f" {h.final_status} {esc(h.final_reason)}".rstrip()
    if h.kind.value != "call":
        title += f"  [{h.kind.value}]"
    lines = [", ".join(h.facts)]
    if not h.multi_leg:
        lines.append(f"Call-ID: {esc(h.call_id)}")
    else:
        lines.extend(f"leg {leg.letter}: {esc(leg.call_id)}" for leg in h.legs)
        lines.extend(
            f"{link.a}-{link.b}: {esc(clean(link.method, 40))} {link.confidence:.2f}" for link in h.links
        )
    if h.related:
        lines.append(f"related (transfer): {', '.join(esc(c) for c in h.related)}")
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
    label = cut(clean(arrow.marked), LABEL_LIMIT)
    return f"[{leg_letter(arrow.leg)}] {label}" if multi_leg else label
