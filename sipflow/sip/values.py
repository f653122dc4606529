"""The small pieces header field values are made of (RFC 3261 §7.3.1, §19.1.1, §25.1), sans-I/O.

Comma-separated value lists (commas inside quotes or ``<>`` do not split, §7.3.1),
``*( SEMI generic-param )`` and ``uri-parameters`` lists (§25.1, §19.1.1), the content of a
quoted string (quoted-pairs, §25.1), digit strings turned into bounded ``int`` values, and one
shared object for each often repeated small value. The parsers of ``sipflow.sip.address``,
``sipflow.sip.fields`` and ``sipflow.sip.envelope`` are built on these.
"""

from __future__ import annotations

import re
from typing import Final, TypeVar

from sipflow.sip import defects as d
from sipflow.sip import grammar as g
from sipflow.sip.defects import Defect

__all__ = ["split_header_values"]

Params = tuple[tuple[str, str | None], ...]

_MAX_INT_DIGITS: Final = 1000
"""Longest digit string turned into an ``int`` (Python refuses beyond 4300 digits)."""
_ELEMENT_RE: Final = re.compile(r'(?:"(?:[^"\\]|\\.)*"?|<[^>]*>?|[^,"<]+)*', re.DOTALL)
"""One comma-separated header value: commas inside quotes or ``<>`` do not split (§7.3.1)."""
_SIMPLE_PARAMS_RE: Final = re.compile(rf"(?:;{g.TOKEN}(?:=[^\s;,\"]*)?)+")
"""Parameters without blanks or quoted strings: split on ``;`` and ``=`` directly."""


def _to_int(digits: str) -> int | None:
    """``int(digits)`` for a digit string of sane length, else None (overlarge)."""
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else None


def _unquote(inner: str) -> str:
    """Resolve the quoted-pairs of a quoted string's content (RFC 3261 §25.1)."""
    return g.QUOTED_PAIR_RE.sub(r"\1", inner) if "\\" in inner else inner


def _split_values(value: str) -> list[str]:
    """Split a header value on commas outside quotes and ``<>``; empty elements are kept."""
    if '"' not in value and "<" not in value:
        return [part.strip() for part in value.split(",")]
    out: list[str] = []
    pos = 0
    n = len(value)
    match = _ELEMENT_RE.match
    while True:
        m = match(value, pos)
        assert m is not None  # the pattern matches the empty string
        out.append(m.group().strip())
        pos = m.end()
        if pos >= n:
            return out
        pos += 1  # the comma


def _generic_params(text: str, sink: list[Defect] | None, what: str) -> Params:
    """``*( SEMI generic-param )`` (RFC 3261 §25.1): names lower-cased, values as written.

    Quoted values keep their quotes. A stray ``;`` (an empty parameter) or text that is not a
    parameter is recorded in ``sink``.
    """
    if not text or text.isspace():
        return ()
    if _SIMPLE_PARAMS_RE.fullmatch(text) is not None:
        return _simple_params(text)
    out: list[tuple[str, str | None]] = []
    pos = 0
    n = len(text)
    match = g.GENERIC_PARAM_RE.match
    while pos < n:
        m = match(text, pos)
        if m is not None:
            out.append((m[1].lower(), m[2]))
            pos = m.end()
            continue
        rest = text[pos:].lstrip(" \t")
        if not rest:
            break
        if rest[0] == ";":
            if sink is not None:
                sink.append(d.EmptyParameter(f"{what} has an empty parameter."))
            pos = n - len(rest) + 1
            continue
        if sink is not None:
            sink.append(d.BadParameters(f"{what} has malformed parameters: {rest[:40]!r}."))
        break
    return tuple(out)


_SHARED: dict[object, object] = {}
_SHARED_MAX: Final = 4096
_T = TypeVar("_T", str, int)


def _shared(value: _T) -> _T:
    """One object for an often repeated small value (a host, a transport, a parameter name,
    a port): a capture's messages keep references to it instead of copies of their own."""
    known = _SHARED.get(value)
    if known is None:
        if len(_SHARED) < _SHARED_MAX:
            _SHARED[value] = value
        return value
    return known  # type: ignore[return-value]


def _simple_params(text: str) -> Params:
    """Split parameters already matched by ``_SIMPLE_PARAMS_RE`` (no blanks, no quotes)."""
    out: list[tuple[str, str | None]] = []
    for part in text[1:].split(";"):
        name, eq, value = part.partition("=")
        out.append((_shared(name.lower()), value if eq else None))
    return tuple(out)


def _uri_params(text: str) -> Params:
    """``*( ";" uri-parameter )`` (RFC 3261 §19.1.1): names lower-cased, values as written."""
    out: list[tuple[str, str | None]] = []
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        name = name.strip()
        if name:
            out.append((name.lower(), value.strip() if eq else None))
    return tuple(out)


def split_header_values(value: str) -> list[str]:
    """Split a header value on the commas that separate values (RFC 3261 §7.3.1).

    Commas inside quoted strings or ``<>`` do not split; values are stripped and empty ones
    dropped.
    """
    return [part for part in _split_values(value) if part]
