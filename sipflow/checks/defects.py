"""Parser defects as findings: the ``sip.malformed`` family of ``sipflow check``'s rules.

Each kind of defect the parser reports (``sipflow.sip.defects``) is one rule whose id is the
defect's code (``sip.malformed.date``): a finding per defect of each message, naming its frame
and quoting the offending text (the start line or the header field, ``repr``-escaped so no
control character reaches a report), severity ``warning`` by default. A payload that looked
like SIP but could not be parsed at all is ``sip.malformed.message``. Each code can be
disabled or graded on its own, or the whole family at once (``sip.malformed``).

Two protocol rules already report some kinds, with their own wording, for the same messages:
``missing-header`` the missing mandatory header fields and Max-Forwards, and
``content-length-mismatch`` a Content-Length that is unusable or longer than the body
(``COVERED``). Those kinds are theirs, not rules of this family, so no defect is reported
twice. Like those rules, the family leaves out retransmissions (the same message again) and
messages the capture cut short (what the cut leaves, a missing empty line or a half header
field, is the capture's doing, not the sender's).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Final

from sipflow.checks.finding import Severity
from sipflow.checks.registry import Context, Hit, Rule
from sipflow.model.call import Call
from sipflow.model.message import Message
from sipflow.sip import defects as d
from sipflow.sip.defects import KINDS, NAMED, START_LINE, Defect

__all__ = ["COVERED", "FAMILY", "MALFORMED_RULE", "MESSAGE_RULES", "malformed_payloads", "message_defects"]

FAMILY: Final = "sip.malformed"
"""The family's name: in ``disable`` or ``[check.rules."sip.malformed"]``, every code at once."""

COVERED: Final[Mapping[str, str]] = MappingProxyType(
    {
        d.HeaderMissing.code: "missing-header",
        d.MaxForwardsMissing.code: "missing-header",
        d.ContentLengthNotNumber.code: "content-length-mismatch",
        d.ContentLengthNegative.code: "content-length-mismatch",
        d.ContentLengthOverlarge.code: "content-length-mismatch",
        d.ContentLengthMismatch.code: "content-length-mismatch",
    }
)
"""Defect code → the protocol rule that reports it instead of this family."""

_CONSEQUENCE: Final = (
    "sipflow read the message anyway; a strict peer rejects it (400 Bad Request) and a lenient one "
    "may read it otherwise than its sender meant. Usual causes: a hand-written scenario, a buggy "
    "UA or a header manipulation in a proxy, SBC or ALG."
)


def _rule(kind: type[Defect], consequence: str = _CONSEQUENCE) -> Rule:
    explanation = f"{kind.summary[:-1]} ({kind.reference}). {consequence}"
    return Rule(kind.code, Severity.WARNING, kind.summary, explanation)


MESSAGE_RULES: Final[tuple[Rule, ...]] = tuple(
    _rule(kind) for code, kind in KINDS.items() if code not in COVERED and kind is not d.Unparseable
)
"""One rule per kind of defect a parsed message can show, in the order of ``sip.defects``."""

MALFORMED_RULE: Final = _rule(
    d.Unparseable,
    "Nothing of it reached the call model: its call may look incomplete. Usual causes: a sender "
    "that is not SIP on a SIP port, a corrupt or cut datagram, a broken TCP stream.",
)
"""The rule of payloads that looked like SIP but could not be parsed (``Analysis.malformed``)."""

_EXCERPT: Final = 100
"""Longest piece of packet text quoted in a finding."""
_LINES: Final = 3
"""Most header field lines quoted for one defect."""
_NAMED_RE: Final = re.compile(r"(?:Several )?([A-Za-z][A-Za-z-]*)")
"""The header field a ``NAMED`` defect's sentence starts with ("Via sent-by has…" → Via)."""


def _start_line(message: Message) -> str:
    raw = message.sip.raw
    end = raw.find(b"\n", 0, 4 * _EXCERPT)
    line = raw[: end if end >= 0 else 4 * _EXCERPT].decode("utf-8", "replace")
    return line.removesuffix("\r")


def offending_text(message: Message, defect: str) -> tuple[str, ...]:
    """The pieces of ``message`` that ``defect`` is about: its start line, or the header fields
    it concerns (``name: value``, a few at most), each cut short; () where the sentence says all."""
    where = d.kind_of(defect).where
    if where is None:
        return ()
    if where == START_LINE:
        return (_start_line(message)[:_EXCERPT],)
    if where == NAMED:
        m = _NAMED_RE.match(defect)
        if m is None:
            return ()
        where = m[1]
    values = message.sip.headers.get_all(where)
    pieces = [f"{where}: {value}"[:_EXCERPT] for value in values[:_LINES]]
    if len(values) > _LINES:
        pieces.append(f"… {len(values) - _LINES} more")
    return tuple(pieces)


def _quoted(pieces: tuple[str, ...]) -> str:
    return " (in " + ", ".join(repr(p) for p in pieces) + ")" if pieces else ""


def message_defects(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    """A hit per defect of each message of ``call`` (retransmissions and messages the capture
    cut short left out), named by its code."""
    for leg in call.legs:
        for m in leg.messages:
            if m.retransmission or m.truncated:
                continue
            found = m.sip.defects
            if not found:
                continue
            for defect in found:
                code = d.kind_of(defect).code
                if code in COVERED:
                    continue
                text = f"{ctx.at(m)} from {m.src}: {defect}{_quoted(offending_text(m, defect))}"
                yield Hit(text, (m,), rule=code)


def malformed_payloads(ctx: Context, limits: Mapping[str, float]) -> Iterator[Hit]:
    """A hit per payload of the analysis that looked like SIP but could not be parsed."""
    for item in ctx.analysis.malformed:
        frames = ((item.file, item.frame),)
        text = f"{ctx.frame_list(frames)} from {item.src} to {item.dst} ({item.transport}): {item.reason}"
        if item.truncated:
            text += " (the capture cut it short)"
        yield Hit(text, (), rule=MALFORMED_RULE.id, frames=frames)
