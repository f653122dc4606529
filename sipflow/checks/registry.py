"""The registry of ``sipflow check``'s built-in rules: metadata and implementation in one place.

A rule is a function that yields ``Hit`` records, registered by a decorator that carries its
metadata (id, severity, summary, explanation, thresholds, the kinds of item it looks at and its
scope)::

    @REGISTRY.rule("slow-pdd", Severity.WARNING, "A call took longer ...", "Post-dial ...",
                   thresholds={"max_ms": 5000.0}, kinds=INVITE_DIALOG)
    def _slow_pdd(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]: ...

Each module of rules fills a ``Registry`` of its own; ``Registry.include`` gathers them into one
(``sipflow.checks.rules.REGISTRY``), and the order they are gathered in is the order of the
catalogue and of findings within a frame.

A *family* is one function that reports several rules, a hit naming its rule: the parser's
defect codes are one family (``sip.malformed``), found in one pass over the messages and
still enabled, disabled and graded one code at a time. ``Registry.run`` applies every
enabled rule: per item (``Scope.CALL``: ``check(ctx, call, limits)``) or once over the whole
analysis (``Scope.ANALYSIS``: ``check(ctx, limits)``, for what belongs to no item, such as a
payload that could not be parsed).

The settings a run takes are anything shaped like ``checks.config.CheckConfig`` (``Settings``):
this module and the rules do not import the configuration, which imports them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Protocol, TypeVar

from sipflow.checks.finding import Finding, Severity
from sipflow.checks.reason import decode_reason
from sipflow.model.analysis import Analysis
from sipflow.model.call import Call, CallKind
from sipflow.model.dialog import Dialog
from sipflow.model.message import Message
from sipflow.sip.message import SipRequest, SipResponse

__all__ = [
    "INVITE_DIALOG",
    "Context",
    "Hit",
    "Registry",
    "Rule",
    "Scope",
    "Settings",
    "call_name",
    "label",
    "status_of",
]

INVITE_DIALOG: Final = frozenset({CallKind.CALL, CallKind.OTHER})
"""Items that can hold an INVITE dialog or a piece of one: calls, and the other Call-IDs (a BYE
or UPDATE whose INVITE was not captured); not registrations, subscriptions, OPTIONS, MESSAGE."""


class Scope(StrEnum):
    """What one run of a rule's function looks at."""

    CALL = "call"
    """One item (call, registration...): ``check(ctx, call, limits)``, once per item."""
    ANALYSIS = "analysis"
    """The whole analysis: ``check(ctx, limits)``, once; its findings belong to no item."""
    # A third scope, per media stream, comes with the RTP analysis.


@dataclass(frozen=True, slots=True)
class Rule:
    """One built-in rule: what it checks and how loud it is by default."""

    id: str
    """Stable id, used in findings, in ``sipflow.toml`` and on the command line."""
    severity: Severity
    """Default severity (``[check.rules.ID] severity = ...`` changes it)."""
    summary: str
    """What the rule checks, one line."""
    explanation: str
    """What a finding means and its usual causes (one or two sentences)."""
    thresholds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """Tunable limits and their defaults (``[check.rules.ID] name = value``)."""
    kinds: frozenset[CallKind] = frozenset(CallKind)
    """The kinds of item the rule looks at (every kind unless it says otherwise)."""
    scope: Scope = Scope.CALL
    """Whether the rule runs per item or once over the analysis."""
    family: str | None = None
    """The family whose one function reports this rule (``sip.malformed``), or None."""


@dataclass(frozen=True, slots=True)
class Hit:
    """What a check found, before it becomes a ``Finding``."""

    text: str
    messages: tuple[Message, ...]
    """The messages concerned, the most telling first."""
    rule: str | None = None
    """The rule of a family's hit (None: the function's only rule)."""
    frames: tuple[tuple[str, int], ...] = ()
    """(file, frame) where there is no message to name (a payload that could not be parsed)."""


class Settings(Protocol):
    """What a run takes from the configuration (``checks.config.CheckConfig`` is one)."""

    @property
    def disabled(self) -> frozenset[str]: ...

    @property
    def thresholds(self) -> Mapping[str, Mapping[str, float]]: ...

    @property
    def severity(self) -> Mapping[str, Severity]: ...


class Context:
    """Lookups shared by the checks over one analysis."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.transactions = {tx.id: tx for tx in analysis.transactions}
        self.tx_dialogs: dict[int, list[Dialog]] = {}
        self.dialogs: dict[str, list[Dialog]] = {}
        """Call-ID → its dialogs."""
        for dialog in analysis.dialogs:
            self.dialogs.setdefault(dialog.call_id, []).append(dialog)
            for tx_id in dialog.transactions:
                self.tx_dialogs.setdefault(tx_id, []).append(dialog)
        self.end = max((m.timestamp for m in analysis.messages), default=0.0)
        files = {m.file for m in analysis.messages} | {m.file for m in analysis.malformed}
        self.several_files = len(files) > 1
        self.shared: dict[str, object] = {}
        """What a rule computes once for every item (``register-storm``), by rule id."""

    def frames(self, messages: Sequence[Message]) -> str:
        """``frame 7`` or ``frames 7, 9, 11`` (with the file's name when there are several)."""
        return self.frame_list([(m.file, m.frame) for m in messages])

    def frame_list(self, frames: Sequence[tuple[str, int]]) -> str:
        """As ``frames``, for (file, frame) pairs."""
        if not frames:
            return "no frame"
        numbers = [str(frame) for _, frame in frames]
        if len(numbers) > 12:
            numbers = [*numbers[:10], "…", numbers[-1]]
        text = ("frame " if len(frames) == 1 else "frames ") + ", ".join(numbers)
        if self.several_files:
            names = ", ".join(dict.fromkeys(os.path.basename(file) for file, _ in frames))
            text += f" ({names})"
        return text

    def at(self, message: Message) -> str:
        """``INVITE (CSeq 1) at frame 3``."""
        return f"{label(message)} at {self.frames([message])}"


def label(message: Message) -> str:
    """``INVITE (CSeq 1)``, ``180 Ringing (CSeq 1 INVITE)``."""
    sip = message.sip
    cseq = sip.cseq
    if isinstance(sip, SipRequest):
        return f"{sip.method} (CSeq {cseq.seq})" if cseq is not None else sip.method
    text = f"{sip.status} {sip.reason}".rstrip()
    return f"{text} (CSeq {cseq.seq} {cseq.method})" if cseq is not None else text


def status_of(message: Message) -> int | None:
    """The status code of a response; None for a request."""
    sip = message.sip
    return sip.status if isinstance(sip, SipResponse) else None


def call_name(call: Call) -> str:
    """``call 3 (Call-ID abc)``, ``registration 1 (no Call-ID)``."""
    what = "call" if call.kind is CallKind.CALL else call.kind.value
    return f"{what} {call.index} (Call-ID {call.id})" if call.id else f"{what} {call.index} (no Call-ID)"


_F = TypeVar("_F", bound=Callable[..., Iterator[Hit]])


@dataclass(frozen=True, slots=True)
class _Entry:
    """One registered function and the rules it reports."""

    check: Callable[..., Iterator[Hit]]
    rules: tuple[Rule, ...]
    scope: Scope
    kinds: frozenset[CallKind]
    causes: bool
    """Findings carry the decoded Reason header of their messages."""


def _cause(messages: Iterable[Message]) -> str | None:
    for m in messages:
        value = m.sip.headers.get("reason")
        if value:
            return decode_reason(value)
    return None


class Registry:
    """The built-in rules, in the order they were registered (the order their findings sort
    in within a frame), each with the function that finds it."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._rules: dict[str, Rule] = {}
        self._order: dict[str, int] = {}

    def _add(self, entry: _Entry) -> None:
        for r in entry.rules:
            if r.id in self._rules:
                raise ValueError(f"rule {r.id} registered twice")
            self._order[r.id] = len(self._rules)
            self._rules[r.id] = r
        self._entries.append(entry)

    def rule(
        self,
        rule_id: str,
        severity: Severity,
        summary: str,
        explanation: str,
        *,
        thresholds: Mapping[str, float] | None = None,
        kinds: frozenset[CallKind] = frozenset(CallKind),
        scope: Scope = Scope.CALL,
    ) -> Callable[[_F], _F]:
        """Register the decorated function as the rule ``rule_id``."""
        limits = MappingProxyType(dict(thresholds or {}))
        r = Rule(rule_id, severity, summary, explanation, limits, kinds, scope)

        def register(check: _F) -> _F:
            self._add(_Entry(check, (r,), scope, kinds, causes=True))
            return check

        return register

    def family(
        self,
        name: str,
        rules: Sequence[Rule],
        check: Callable[..., Iterator[Hit]],
        *,
        scope: Scope = Scope.CALL,
        kinds: frozenset[CallKind] = frozenset(CallKind),
        causes: bool = False,
    ) -> None:
        """Register ``check`` as the one function reporting ``rules`` (each hit names its rule),
        members of the family ``name``; a family takes no thresholds."""
        members = tuple(replace(r, kinds=kinds, scope=scope, family=name) for r in rules)
        self._add(_Entry(check, members, scope, kinds, causes))

    def include(self, *others: Registry) -> None:
        """Register every function of ``others`` after this registry's own, in their order (the
        rule modules each fill a registry; ``sipflow.checks.rules`` gathers them so)."""
        for other in others:
            for entry in other._entries:
                self._add(entry)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Every rule, in order."""
        return tuple(self._rules.values())

    def get(self, rule_id: str) -> Rule:
        """The rule with this id (``KeyError`` when there is none)."""
        return self._rules[rule_id]

    def run(self, analysis: Analysis, settings: Settings | None = None) -> list[Finding]:
        """Apply every enabled rule to ``analysis``: findings ordered by item (those of no
        item last), then by the first message they name, then by the rule's place."""
        disabled: frozenset[str] = settings.disabled if settings is not None else frozenset()
        ctx = Context(analysis)
        keyed: list[tuple[tuple[int, int, int, int, int], Finding]] = []
        for entry in self._entries:
            active = {r.id: r for r in entry.rules if r.id not in disabled}
            if not active:
                continue
            first_rule = entry.rules[0]
            limits = dict(first_rule.thresholds)
            severity = {r.id: r.severity for r in active.values()}
            if settings is not None:
                limits.update(settings.thresholds.get(first_rule.id, {}))
                severity.update({k: v for k, v in settings.severity.items() if k in active})
            runs: Iterable[tuple[Call | None, Iterator[Hit]]]
            if entry.scope is Scope.ANALYSIS:
                runs = [(None, entry.check(ctx, limits))]
            else:
                runs = ((c, entry.check(ctx, c, limits)) for c in analysis.calls if c.kind in entry.kinds)
            for call, hits in runs:
                for n, hit in enumerate(hits):
                    r = active.get(hit.rule or first_rule.id)
                    if r is None:
                        continue  # a disabled member of a family
                    frames = hit.frames or tuple(dict.fromkeys((m.file, m.frame) for m in hit.messages))
                    finding = Finding(
                        rule=r.id,
                        severity=severity[r.id],
                        message=hit.text if call is None else f"{call_name(call)}: {hit.text}",
                        explanation=r.explanation,
                        call_index=None if call is None else call.index,
                        call_id=None if call is None else call.id,
                        frames=frames,
                        cause=_cause(hit.messages) if entry.causes else None,
                    )
                    first = min((m.index for m in hit.messages), default=-1)
                    where = (0, call.index) if call is not None else (1, 0)
                    keyed.append(((*where, first, self._order[r.id], n), finding))
        keyed.sort(key=lambda item: item[0])
        return [finding for _, finding in keyed]
