"""Flow patterns: the messages a call's caller saw, and the patterns an expectation writes for them.

The *flow* of a call is what its caller saw: the messages of the caller's leg sent or
received by the caller, retransmissions left out, each as its method (requests) or status
code (responses). A flow pattern lists tokens: a method (``INVITE``), a status (``180``) or a
class (``1xx``, ``18x``), each optionally followed by ``?`` (optional), ``*`` (any number) or
``+`` (at least one); the whole flow must match (``FlowPattern.match``, a small NFA).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sipflow.capture.types import SIP_METHODS
from sipflow.model.call import Call
from sipflow.model.caller import caller_flow
from sipflow.model.message import Message
from sipflow.sip.message import SipRequest

__all__ = ["METHODS", "FlowMatch", "FlowPattern", "FlowToken", "call_flow", "flow_label"]

METHODS: Final = frozenset(SIP_METHODS)
"""Methods a flow pattern may name (RFC 3261 and the IANA "Methods" registry)."""

_TOKEN_RE: Final = re.compile(
    r"(?P<atom>[A-Za-z][A-Za-z0-9_-]*|[1-6][0-9]{2}|[1-6][xX]{2}|[1-6][0-9][xX])(?P<q>[?*+]?)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowToken:
    """One token of a flow pattern: a method, a status code or a status class, quantified."""

    text: str
    """As written (``180*``)."""
    atom: str
    """``INVITE``, ``180``, ``1xx`` or ``18x`` (the class's x lower-cased)."""
    quantifier: str = ""
    """``""`` (exactly once), ``?``, ``*`` or ``+``."""

    def matches(self, label: str) -> bool:
        if not self.atom[0].isdigit():
            return label == self.atom
        if len(label) != 3 or not label.isdigit():
            return False
        return all(p in ("x", c) for p, c in zip(self.atom, label, strict=True))

    @staticmethod
    def parse(text: str) -> FlowToken:
        """Raises ``ValueError`` saying what is wrong with ``text``."""
        m = _TOKEN_RE.fullmatch(text.strip())
        if m is None:
            raise ValueError(
                f"bad flow token {text!r}: expected a method (INVITE), a status (180) or a class "
                "(1xx, 18x), optionally followed by ?, * or +"
            )
        atom, quantifier = m["atom"], m["q"]
        if atom[0].isalpha():
            if atom not in METHODS:
                hint = f" (methods are upper case: {atom.upper()})" if atom.upper() in METHODS else ""
                raise ValueError(f"bad flow token {text!r}: unknown method {atom!r}{hint}")
        else:
            atom = atom.lower()
        return FlowToken(text=text.strip(), atom=atom, quantifier=quantifier)


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowMatch:
    """How a flow compares with a pattern."""

    ok: bool
    position: int
    """Where the flow left the pattern: the index of the first label that does not fit, or
    the flow's length when the flow ended too early."""
    expected: tuple[str, ...]
    """The tokens that would have fitted there."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowPattern:
    """A sequence of quantified tokens, matched against a whole flow (a small NFA)."""

    tokens: tuple[FlowToken, ...]

    def __str__(self) -> str:
        return " ".join(t.text for t in self.tokens)

    def _items(self) -> list[tuple[FlowToken, bool, bool]]:
        """(token, may repeat, may be skipped); ``X+`` becomes ``X X*``."""
        items: list[tuple[FlowToken, bool, bool]] = []
        for t in self.tokens:
            if t.quantifier == "+":
                items.append((t, False, False))
                items.append((t, True, True))
            else:
                items.append((t, t.quantifier == "*", t.quantifier in ("?", "*")))
        return items

    def match(self, labels: Sequence[str]) -> FlowMatch:
        items = self._items()
        end = len(items)

        def closure(states: set[int]) -> set[int]:
            todo = list(states)
            while todo:
                j = todo.pop()
                if j < end and items[j][2] and j + 1 not in states:
                    states.add(j + 1)
                    todo.append(j + 1)
            return states

        def expected(states: set[int]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(items[j][0].atom for j in sorted(states) if j < end))

        states = closure({0})
        for i, label in enumerate(labels):
            following = {
                j if items[j][1] else j + 1 for j in states if j < end and items[j][0].matches(label)
            }
            if not following:
                return FlowMatch(ok=False, position=i, expected=expected(states))
            states = closure(following)
        if end in states:
            return FlowMatch(ok=True, position=len(labels), expected=())
        return FlowMatch(ok=False, position=len(labels), expected=expected(states))


def flow_label(message: Message) -> str:
    """How a message appears in a flow: its method, or its status code."""
    sip = message.sip
    return sip.method if isinstance(sip, SipRequest) else str(sip.status)


def call_flow(call: Call) -> list[Message]:
    """The caller's view of a call: what the caller of its first leg sent and received
    (``caller_flow``)."""
    return caller_flow(call.legs[0])
