"""Expectations: the calls a trace should hold, written in YAML, checked against an analysis.

```yaml
calls:
  - name: alice calls bob and hangs up
    match: {from: alice, to: bob}          # or call-id: ..., or header: {X-Test-Id: "42"}
    outcome: completed                     # a call state, or a list of them
    status: 200                            # the final status the caller saw
    flow: [INVITE, 100?, 180*, 200, ACK, BYE, 200]
    max_pdd_ms: 2000
    max_setup_ms: 5000
    count: 1                               # how many calls match (default: exactly one)
count: {calls: 3, completed: 3}            # totals: calls, and calls per state
```

The *flow* of a call is what its caller saw: the messages of the caller's leg sent or
received by the caller, retransmissions left out, each as its method (requests) or status
code (responses). A flow pattern lists tokens: a method (``INVITE``), a status (``180``) or a
class (``1xx``, ``18x``), each optionally followed by ``?`` (optional), ``*`` (any number) or
``+`` (at least one); the whole flow must match.

``load_expectations`` validates the file (unknown keys, bad flow tokens, bad states...) and
raises ``ExpectationError`` with the line; ``evaluate`` gives one ``ExpectationResult`` per
call expectation, and one for ``count``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import yaml  # type: ignore[import-untyped,unused-ignore]

from sipflow.capture.types import SIP_METHODS
from sipflow.checks.finding import Finding, Severity
from sipflow.checks.reason import decode_reason
from sipflow.errors import SipflowError
from sipflow.model.analysis import Analysis
from sipflow.model.call import KIND_STATES, Call, CallKind, CallState
from sipflow.model.caller import caller_flow, caller_view
from sipflow.model.message import Message
from sipflow.sip.message import SipRequest

__all__ = [
    "CallExpectation",
    "CallMatch",
    "ExpectationError",
    "ExpectationResult",
    "Expectations",
    "FlowPattern",
    "FlowToken",
    "call_flow",
    "evaluate",
    "load_expectations",
    "parse_expectations",
]


class ExpectationError(SipflowError):
    """An expectations file that cannot be used: unreadable, not YAML, or not valid.

    ``file`` names the file and ``line`` the 1-based line of the problem, where known.
    """

    def __init__(self, reason: str, *, file: str | None = None, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = self.file or "<expectations>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.reason}"


# ------------------------------------------------------------------------------------- flow

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


def _flow_label(message: Message) -> str:
    sip = message.sip
    return sip.method if isinstance(sip, SipRequest) else str(sip.status)


def call_flow(call: Call) -> list[Message]:
    """The caller's view of a call: what the caller of its first leg sent and received
    (``caller_flow``)."""
    return caller_flow(call.legs[0])


# ---------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True, kw_only=True)
class CallMatch:
    """Which calls an expectation is about: every condition must hold."""

    from_: str | None = None
    """Substring of the caller's From URI, user or display name (case-insensitive)."""
    to: str | None = None
    call_id: str | None = None
    """Exact Call-ID of any leg."""
    headers: tuple[tuple[str, str], ...] = ()
    """Header fields the caller's initial INVITE carries, with these exact values."""

    def describe(self) -> str:
        parts = []
        if self.from_ is not None:
            parts.append(f"from {self.from_!r}")
        if self.to is not None:
            parts.append(f"to {self.to!r}")
        if self.call_id is not None:
            parts.append(f"Call-ID {self.call_id!r}")
        parts.extend(f"{name}: {value!r}" for name, value in self.headers)
        return ", ".join(parts) if parts else "any call"

    def select(self, analysis: Analysis) -> list[Call]:
        calls = analysis.select(from_=self.from_, to=self.to, call_id=self.call_id)
        calls = [c for c in calls if c.kind is CallKind.CALL]
        if self.headers:
            calls = [c for c in calls if self._headers_match(c)]
        return calls

    def _headers_match(self, call: Call) -> bool:
        for tx in caller_view(call.legs[0]).initial:  # every hop's initial INVITE, re-INVITEs not
            request = tx.request
            if request is None or tx.method != "INVITE" or request.sip.to_tag is not None:
                continue
            headers = request.sip.headers
            if all(value in (v.strip() for v in headers.get_all(name)) for name, value in self.headers):
                return True
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class CallExpectation:
    """One entry of ``calls:``."""

    name: str
    line: int | None = None
    """Line of the entry in its file."""
    match: CallMatch = field(default_factory=CallMatch)
    outcome: tuple[CallState, ...] = ()
    """Acceptable states (empty: any)."""
    status: int | None = None
    """The final status the caller saw."""
    flow: FlowPattern | None = None
    max_pdd_ms: float | None = None
    max_setup_ms: float | None = None
    count: int | None = None
    """How many calls must match; None: exactly one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectations:
    """A validated expectations file."""

    file: str | None
    calls: tuple[CallExpectation, ...] = ()
    count: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """``calls`` and/or call states → how many the trace must hold."""
    count_line: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectationResult:
    """What became of one expectation."""

    name: str
    passed: bool
    expected: str
    """What the expectation asked for, in words."""
    actual: str
    """What the trace shows, in the same words."""
    call_index: int | None
    """The call it was checked against, when there was exactly one."""
    findings: tuple[Finding, ...]
    """For a failed expectation: one ``expect:<name>`` finding (severity ERROR) per failure."""


# ---------------------------------------------------------------------------- loading

_CALL_KEYS: Final = ("name", "match", "outcome", "status", "flow", "max_pdd_ms", "max_setup_ms", "count")
_MATCH_KEYS: Final = ("from", "to", "call-id", "header")
_TOP_KEYS: Final = ("calls", "count")
_STATES: Final = tuple(s.value for s in KIND_STATES[CallKind.CALL])
"""Expectations are about calls: the states a call can take."""


def _load_yaml_scalar(node: Any) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


class _Loader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
    """SafeLoader whose plain scalars may hold ``?`` inside ``[...]``, as YAML 1.2 allows.

    PyYAML (YAML 1.1) ends a plain scalar at ``?`` in flow context, so the natural
    ``flow: [INVITE, 100?, 180*, 200]`` would not parse. Only ``,[]{}`` and ``": "`` end one
    here; the rest is PyYAML's ``Scanner.scan_plain`` unchanged.
    """

    def scan_plain(self) -> Any:
        chunks: list[str] = []
        start_mark = self.get_mark()
        end_mark = start_mark
        indent = self.indent + 1
        spaces: list[str] = []
        blank = "\0 \t\r\n\x85\u2028\u2029"
        while True:
            length = 0
            if self.peek() == "#":
                break
            while True:
                ch = self.peek(length)
                if (
                    ch in blank
                    or (ch == ":" and self.peek(length + 1) in blank + (",[]{}" if self.flow_level else ""))
                    or (self.flow_level and ch in ",[]{}")
                ):
                    break
                length += 1
            if length == 0:
                break
            self.allow_simple_key = False
            chunks.extend(spaces)
            chunks.append(self.prefix(length))
            self.forward(length)
            end_mark = self.get_mark()
            spaces = self.scan_plain_spaces(indent, start_mark) or []
            if not spaces or self.peek() == "#" or (not self.flow_level and self.column < indent):
                break
        return yaml.ScalarToken("".join(chunks), True, start_mark, end_mark)


class _Reader:
    """Walks the composed YAML node tree, so every error knows its line."""

    def __init__(self, file: str | None) -> None:
        self.file = file

    def error(self, node: Any, reason: str) -> ExpectationError:
        line = node.start_mark.line + 1 if node is not None and node.start_mark is not None else None
        return ExpectationError(reason, file=self.file, line=line)

    def mapping(self, node: Any, what: str, known: Sequence[str]) -> dict[str, tuple[Any, Any]]:
        """key → (key node, value node); unknown and repeated keys are errors."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        out: dict[str, tuple[Any, Any]] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node, f"a key of {what}")
            if not isinstance(key, str):
                raise self.error(key_node, f"a key of {what} must be a string, not {key!r}")
            if key not in known:
                raise self.error(key_node, f"unknown key {key!r} in {what} (known: {', '.join(known)})")
            if key in out:
                raise self.error(key_node, f"key {key!r} repeated in {what}")
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node: Any, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, f"{what} must be a single value")
        return _load_yaml_scalar(node)

    def text(self, node: Any, what: str) -> str:
        value = self.scalar(node, what)
        if value is None or isinstance(value, bool | list | dict):
            raise self.error(node, f"{what} must be a string")
        return str(value)

    def number(self, node: Any, what: str) -> float:
        value = self.scalar(node, what)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.error(node, f"{what} must be a number >= 0, not {value!r}")
        return float(value)

    def integer(self, node: Any, what: str, low: int = 0, high: int | None = None) -> int:
        value = self.scalar(node, what)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < low
            or (high is not None and value > high)
        ):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise self.error(node, f"{what} must be a whole number {bound}, not {value!r}")
        return value

    def flow(self, node: Any) -> FlowPattern:
        items: list[tuple[Any, str]] = []
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                items.append((item, self.text(item, "a flow token")))
        else:
            text = self.text(node, "flow")
            items.extend((node, part) for part in re.split(r"[\s,]+", text.strip()) if part)
        if not items:
            raise self.error(node, "flow is empty")
        tokens = []
        for item, text in items:
            try:
                tokens.append(FlowToken.parse(text))
            except ValueError as exc:
                raise self.error(item, str(exc)) from None
        return FlowPattern(tokens=tuple(tokens))

    def outcome(self, node: Any) -> tuple[CallState, ...]:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        if not items:
            raise self.error(node, "outcome is empty")
        states = []
        for item in items:
            value = self.text(item, "outcome")
            if value not in _STATES:
                raise self.error(item, f"unknown outcome {value!r} (call states: {', '.join(_STATES)})")
            states.append(CallState(value))
        return tuple(states)

    def match(self, node: Any) -> CallMatch:
        keys = self.mapping(node, "match", _MATCH_KEYS)
        headers: list[tuple[str, str]] = []
        if "header" in keys:
            header_node = keys["header"][1]
            if not isinstance(header_node, yaml.MappingNode) or not header_node.value:
                raise self.error(header_node, "match.header must be a mapping of header names to values")
            for name_node, value_node in header_node.value:
                name = self.text(name_node, "a header name")
                if not re.fullmatch(r"[A-Za-z0-9!%*_+`'~.-]+", name):
                    raise self.error(name_node, f"{name!r} is not a header name")
                headers.append((name, self.text(value_node, f"the value of header {name}")))

        def opt(key: str) -> str | None:
            return self.text(keys[key][1], f"match.{key}") if key in keys else None

        return CallMatch(from_=opt("from"), to=opt("to"), call_id=opt("call-id"), headers=tuple(headers))

    def call(self, node: Any, number: int) -> CallExpectation:
        keys = self.mapping(node, f"call expectation {number}", _CALL_KEYS)
        name = self.text(keys["name"][1], "name") if "name" in keys else f"calls[{number}]"

        def get(key: str) -> Any:
            return keys[key][1] if key in keys else None

        return CallExpectation(
            name=name,
            line=node.start_mark.line + 1,
            match=self.match(get("match")) if "match" in keys else CallMatch(),
            outcome=self.outcome(get("outcome")) if "outcome" in keys else (),
            status=self.integer(get("status"), "status", 100, 699) if "status" in keys else None,
            flow=self.flow(get("flow")) if "flow" in keys else None,
            max_pdd_ms=self.number(get("max_pdd_ms"), "max_pdd_ms") if "max_pdd_ms" in keys else None,
            max_setup_ms=self.number(get("max_setup_ms"), "max_setup_ms") if "max_setup_ms" in keys else None,
            count=self.integer(get("count"), "count") if "count" in keys else None,
        )

    def document(self, root: Any) -> Expectations:
        if root is None:
            raise ExpectationError("the file is empty", file=self.file, line=1)
        keys = self.mapping(root, "the expectations file", _TOP_KEYS)
        calls: list[CallExpectation] = []
        if "calls" in keys:
            node = keys["calls"][1]
            if not isinstance(node, yaml.SequenceNode):
                raise self.error(node, "calls must be a list of call expectations")
            names: dict[str, int] = {}
            for number, item in enumerate(node.value, start=1):
                expectation = self.call(item, number)
                if expectation.name in names:
                    raise self.error(
                        item,
                        f"name {expectation.name!r} already used by call expectation "
                        f"{names[expectation.name]}",
                    )
                names[expectation.name] = number
                calls.append(expectation)
        count: dict[str, int] = {}
        count_line = None
        if "count" in keys:
            node = keys["count"][1]
            count_line = node.start_mark.line + 1
            for key, (_, value_node) in self.mapping(node, "count", ("calls", *_STATES)).items():
                count[key] = self.integer(value_node, f"count.{key}")
        if not calls and not count:
            raise self.error(root, "nothing to check: give calls, count or both")
        return Expectations(
            file=self.file, calls=tuple(calls), count=MappingProxyType(count), count_line=count_line
        )


def parse_expectations(text: str, *, file: str | None = None) -> Expectations:
    """Validate expectations given as YAML text (``file`` names it in errors)."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(p for p in (exc.context, exc.problem) if p) or "not valid YAML"
        raise ExpectationError(f"not valid YAML: {reason}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ExpectationError(f"not valid YAML: {exc}", file=file) from None
    return _Reader(file).document(root)


def load_expectations(path: str | os.PathLike[str]) -> Expectations:
    """Read and validate an expectations file; ``ExpectationError`` (with the line) when bad."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ExpectationError(f"cannot read: {exc.strerror or exc}", file=name) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ExpectationError("not UTF-8 text", file=name, line=line) from None
    return parse_expectations(text, file=name)


# --------------------------------------------------------------------------- evaluation

_EXPLAIN: Final = {
    "match": "The expectation names calls by From/To, Call-ID or header; the trace does not hold "
    "the number of such calls it asks for (a call missing, or more calls than expected).",
    "outcome": "The call ended in another state than expected (see the final response and its Reason).",
    "status": "The caller saw another final response than expected.",
    "flow": "The messages the caller sent and received differ from the expected flow.",
    "pdd": "The call took longer to ring (first 18x, or the answer if it never rang) than allowed.",
    "setup": "The call took longer to be answered (2xx) than allowed.",
    "count": "The trace holds another number of calls than expected.",
}


def _frames(messages: Iterable[Message]) -> tuple[tuple[str, int], ...]:
    return tuple(dict.fromkeys((m.file, m.frame) for m in messages))


def _frame_list(messages: Sequence[Message]) -> str:
    if not messages:
        return ""
    return (" at frame " if len(messages) == 1 else " at frames ") + ", ".join(str(m.frame) for m in messages)


def _call_name(call: Call) -> str:
    return f"call {call.index} (Call-ID {call.id})"


def _brief(call: Call) -> str:
    src = call.from_.uri.raw if call.from_ is not None else "?"
    dst = call.to.uri.raw if call.to is not None else "?"
    return f"call {call.index} {src} -> {dst} {call.state.value}"


def _final_message(call: Call) -> Message | None:
    """The final response the caller received to its INVITE: that of the attempt that decided
    the call (the answered one, else the last: ``caller_view``), the one ``Call.final_status``
    reports."""
    decisive = caller_view(call.legs[0]).decisive
    return decisive.final if decisive is not None else None


def _reason_of(call: Call) -> str | None:
    for m in call_flow(call):
        value = m.sip.headers.get("reason")
        if value and not m.retransmission:
            return decode_reason(value)
    return None


def _ms(value: float | None) -> str:
    return "none" if value is None else f"{value:.0f} ms"


class _Failure:
    __slots__ = ("actual", "expected", "kind", "messages")

    def __init__(self, kind: str, expected: str, actual: str, messages: Sequence[Message] = ()) -> None:
        self.kind = kind
        self.expected = expected
        self.actual = actual
        self.messages = tuple(messages)


def _check_call(expectation: CallExpectation, call: Call) -> tuple[list[str], list[str], list[_Failure]]:
    """(expected parts, actual parts, failures) of one call against one expectation."""
    expected: list[str] = []
    actual: list[str] = []
    failures: list[_Failure] = []
    final = _final_message(call)
    at_final = [final] if final is not None else []
    if expectation.outcome:
        want = " or ".join(s.value for s in expectation.outcome)
        got = call.state.value
        if call.final_status is not None:
            got += f" {call.final_status} {call.final_reason or ''}".rstrip()
        cause = _reason_of(call)
        if cause:
            got += f" (Reason: {cause})"
        expected.append(f"outcome {want}")
        actual.append(f"outcome {got}")
        if call.state not in expectation.outcome:
            failures.append(_Failure("outcome", f"outcome {want}", got + _frame_list(at_final), at_final))
    if expectation.status is not None:
        expected.append(f"status {expectation.status}")
        actual.append(f"status {call.final_status if call.final_status is not None else 'none'}")
        if call.final_status != expectation.status:
            got = f"{call.final_status} {call.final_reason or ''}".rstrip() if call.final_status else "none"
            failures.append(
                _Failure("status", f"status {expectation.status}", got + _frame_list(at_final), at_final)
            )
    if expectation.flow is not None:
        messages = call_flow(call)
        labels = [_flow_label(m) for m in messages]
        shown = " ".join(labels) or "(no messages)"
        expected.append(f"flow {expectation.flow}")
        actual.append(f"flow {shown}")
        result = expectation.flow.match(labels)
        if not result.ok:
            wanted = " or ".join(result.expected) if result.expected else "the end of the flow"
            if result.position < len(messages):
                at = messages[result.position]
                where = (
                    f"message {result.position + 1} ({labels[result.position]} at frame {at.frame}) "
                    f"where {wanted} was expected"
                )
                concerned: list[Message] = [at]
            else:
                where = f"the flow ends where {wanted} was expected"
                concerned = messages[-1:]
            failures.append(_Failure("flow", f"flow {expectation.flow}", f"flow {shown}: {where}", concerned))
    if expectation.max_pdd_ms is not None:
        limit = expectation.max_pdd_ms
        value = call.pdd_ms if call.pdd_ms is not None else call.setup_ms
        what = "PDD" if call.pdd_ms is not None or call.setup_ms is None else "PDD (no 18x; time to answer)"
        expected.append(f"PDD <= {limit:g} ms")
        actual.append(f"{what} {_ms(value)}")
        if value is None or value > limit:
            got = f"{what} {_ms(value)}" if value is not None else "the call never rang nor was answered"
            failures.append(_Failure("pdd", f"PDD <= {limit:g} ms", got, _timing_messages(call, setup=False)))
    if expectation.max_setup_ms is not None:
        limit = expectation.max_setup_ms
        expected.append(f"setup <= {limit:g} ms")
        actual.append(f"setup {_ms(call.setup_ms)}")
        if call.setup_ms is None or call.setup_ms > limit:
            got = (
                f"setup {_ms(call.setup_ms)}" if call.setup_ms is not None else "the call was never answered"
            )
            failures.append(
                _Failure("setup", f"setup <= {limit:g} ms", got, _timing_messages(call, setup=True))
            )
    return expected, actual, failures


def _timing_messages(call: Call, *, setup: bool) -> list[Message]:
    """The messages a PDD (or, with ``setup``, a setup time) is measured between: the caller's
    first INVITE and its first 18x (its 2xx), as ``Call.pdd_ms`` and ``setup_ms`` measure them."""
    view = caller_view(call.legs[0])
    end = view.answer if setup else view.first_provisional
    return [m for m in (view.first_request, end) if m is not None]


def _finding(name: str, call: Call | None, failure: _Failure) -> Finding:
    subject = _call_name(call) if call is not None else "the trace"
    return Finding(
        rule=f"expect:{name}",
        severity=Severity.ERROR,
        message=f"{subject}: expected {failure.expected}; got {failure.actual}",
        explanation=_EXPLAIN[failure.kind],
        call_index=call.index if call is not None else None,
        call_id=call.id if call is not None else None,
        frames=_frames(failure.messages),
        cause=_reason_of(call) if call is not None and failure.kind in ("outcome", "status") else None,
    )


def _evaluate_call(expectation: CallExpectation, analysis: Analysis) -> ExpectationResult:
    name = expectation.name
    matched = expectation.match.select(analysis)
    described = expectation.match.describe()
    want_count = 1 if expectation.count is None else expectation.count
    findings: list[Finding] = []
    expected_parts: list[str] = []
    actual_parts: list[str] = []

    if len(matched) != want_count:
        if expectation.count is None:
            expected_count = f"exactly one call matching {described}"
        else:
            expected_count = f"{_count_of(want_count, 'calls')} matching {described}"
        if not matched:
            others = [c for c in analysis.calls if c.kind is CallKind.CALL]
            listed = "; ".join(_brief(c) for c in others[:8]) + (" …" if len(others) > 8 else "")
            actual_count = "no call matches" + (
                f" (the trace has: {listed})" if others else " (the trace has no call)"
            )
        else:
            listed = "; ".join(_brief(c) for c in matched[:8]) + (" …" if len(matched) > 8 else "")
            actual_count = f"{_count_of(len(matched), 'calls')} match: {listed}"
        failure = _Failure("match", expected_count, actual_count)
        findings.append(_finding(name, None, failure))
        expected_parts.append(expected_count)
        actual_parts.append(actual_count)
        if expectation.count is None:
            # Which call to check is unknown: say what was expected of it and stop.
            expected_parts.extend(_check_call(expectation, matched[0])[0] if matched else [])
            return ExpectationResult(
                name=name,
                passed=False,
                expected="; ".join(expected_parts),
                actual="; ".join(actual_parts),
                call_index=None,
                findings=tuple(findings),
            )
    elif expectation.count is not None:
        expected_parts.append(f"{_count_of(want_count, 'calls')} matching {described}")
        actual_parts.append(f"{len(matched)} match")

    for call in matched:
        expected, actual, failures = _check_call(expectation, call)
        if call is matched[0]:
            expected_parts.extend(expected)
        if len(matched) == 1:
            actual_parts.append(f"call {call.index}")
            actual_parts.extend(actual)
        elif failures:
            actual_parts.append(f"call {call.index}: " + ", ".join(f.actual for f in failures))
        findings.extend(_finding(name, call, f) for f in failures)
    return ExpectationResult(
        name=name,
        passed=not findings,
        expected="; ".join(expected_parts) or f"calls matching {described}",
        actual="; ".join(actual_parts),
        call_index=matched[0].index if len(matched) == 1 else None,
        findings=tuple(findings),
    )


def _count_of(n: int, key: str) -> str:
    noun = "call" if n == 1 else "calls"
    return f"{n} {noun}" if key == "calls" else f"{n} {key} {noun}"


def _evaluate_count(count: Mapping[str, int], analysis: Analysis) -> ExpectationResult:
    calls = [c for c in analysis.calls if c.kind is CallKind.CALL]
    expected_parts: list[str] = []
    actual_parts: list[str] = []
    findings: list[Finding] = []
    for key, want in count.items():
        got = len(calls) if key == "calls" else sum(1 for c in calls if c.state.value == key)
        expected_parts.append(_count_of(want, key))
        actual_parts.append(_count_of(got, key))
        if got != want:
            failure = _Failure("count", _count_of(want, key), _count_of(got, key))
            findings.append(_finding("count", None, failure))
    return ExpectationResult(
        name="count",
        passed=not findings,
        expected=", ".join(expected_parts),
        actual=", ".join(actual_parts),
        call_index=None,
        findings=tuple(findings),
    )


def evaluate(expectations: Expectations, analysis: Analysis) -> list[ExpectationResult]:
    """One result per call expectation, in file order, then one for ``count`` if given."""
    results = [_evaluate_call(e, analysis) for e in expectations.calls]
    if expectations.count:
        results.append(_evaluate_count(expectations.count, analysis))
    return results
