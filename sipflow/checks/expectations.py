"""Expectations files: the calls a trace should hold, written in YAML, read and validated.

```yaml
calls:
  - name: alice calls bob and hangs up
    match: {from: alice, to: bob}          # or call-id: ..., or header: {X-Test-Id: "42"}
    outcome: completed                     # a call state, or a list of them
    status: 200                            # the final status the caller saw
    flow: [INVITE, 100?, 180*, 200, ACK, BYE, 200]
    max_pdd_ms: 2000
    max_setup_ms: 5000
    media: two-way                         # RTP both ways (or one-way, none); max_loss_pct: 1
    count: 1                               # how many calls match (default: exactly one)
count: {calls: 3, completed: 3}            # totals: calls, and calls per state
```

``load_expectations`` (a file) and ``parse_expectations`` (YAML text) validate the document
(unknown keys, bad flow tokens, bad states...) into ``Expectations`` and raise
``ExpectationError`` with the line; flow patterns are ``sipflow.checks.flow``'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import yaml  # type: ignore[import-untyped,unused-ignore]

from sipflow.checks.flow import FlowPattern, FlowToken
from sipflow.errors import SipflowError
from sipflow.model.analysis import Analysis
from sipflow.model.call import KIND_STATES, Call, CallKind, CallState
from sipflow.model.caller import caller_view

__all__ = [
    "CallExpectation",
    "CallMatch",
    "ExpectationError",
    "Expectations",
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
    media: str | None = None
    """``two-way``, ``one-way`` or ``none``: the RTP the call must have (``MEDIA_DIRECTIONS``)."""
    max_loss_pct: float | None = None
    """The most any of the call's RTP streams may lose, per cent of its expected packets."""


MEDIA_DIRECTIONS: Final = ("two-way", "one-way", "none")


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectations:
    """A validated expectations file."""

    file: str | None
    calls: tuple[CallExpectation, ...] = ()
    count: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """``calls`` and/or call states → how many the trace must hold."""
    count_line: int | None = None

    @property
    def needs_media(self) -> bool:
        """Whether an expectation is about the RTP (the analysis must measure it)."""
        return any(c.media is not None or c.max_loss_pct is not None for c in self.calls)


# ---------------------------------------------------------------------------- loading

_CALL_KEYS: Final = (
    "name", "match", "outcome", "status", "flow", "max_pdd_ms", "max_setup_ms", "count",
    "media", "max_loss_pct",
)  # fmt: skip
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
            media=self.media(get("media")) if "media" in keys else None,
            max_loss_pct=self.number(get("max_loss_pct"), "max_loss_pct") if "max_loss_pct" in keys else None,
        )

    def media(self, node: Any) -> str:
        value = self.text(node, "media")
        if value not in MEDIA_DIRECTIONS:
            raise self.error(node, f"media must be one of {', '.join(MEDIA_DIRECTIONS)}, not {value!r}")
        return value

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
