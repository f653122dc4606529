"""The compiled header lookup (``sipflow/sip/_fields.c``) finds what the pattern of the Python
lookup finds, on any bytes: ``Headers.get``, ``get_all`` and ``collect`` of a plain section
answer the same both ways."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipflow.capture.reader import CaptureReader
from sipflow.errors import ParseError
from sipflow.sip import message as message_module
from sipflow.sip.message import Headers
from sipflow.sip.parse import parse_message

from .conftest import RFC4475, sample_captures, shared_captures

_FIND = message_module._find

if _FIND is None:
    if os.environ.get("SIPFLOW_REQUIRE_COMPILED") and not os.environ.get("SIPFLOW_PURE_PYTHON"):
        pytest.fail(
            "the compiled header lookup is required here (SIPFLOW_REQUIRE_COMPILED) but was not built"
        )
    pytest.skip("the C extension was not built (no compiler at install time)", allow_module_level=True)

_ASKED = ["Via", "v", "Call-ID", "i", "To", "t", "From", "Contact", "Content-Type", "c", "CSeq", "X-CID",
          "Subject", "Max-Forwards", "Session-ID", "P-Charging-Vector", "Supported", "nothing"]  # fmt: skip
_SETS = [("Via",), ("To", "From"), ("X-CID", "Session-ID", "P-Charging-Vector", "Call-ID"), ("c", "l", "Via")]


@contextmanager
def _python_lookup() -> Iterator[None]:
    message_module._find = None
    try:
        yield
    finally:
        message_module._find = _FIND


def _answers(headers: Headers) -> list[object]:
    out: list[object] = []
    for name in _ASKED:
        out += [headers.get(name), headers.get_all(name)]
    out += [headers.collect(names) for names in _SETS]
    return out


def _same(headers: Headers) -> None:
    compiled = _answers(headers)
    with _python_lookup():
        assert compiled == _answers(headers)


def _messages(path: Path) -> Iterator[bytes]:
    with CaptureReader(path) as reader:
        for packet in reader:
            yield packet.payload


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_compiled_lookup_agrees_on_captures(path: Path) -> None:
    for payload in _messages(path):
        try:
            headers = parse_message(payload).headers
        except ParseError:
            continue
        _same(headers)
        _same(Headers(headers.data, headers.start, headers.end, True))  # plain or not: same search


def test_compiled_lookup_agrees_on_rfc4475() -> None:
    paths = sorted(RFC4475.glob("*.dat"))
    if not paths:
        pytest.skip(f"no RFC 4475 messages in {RFC4475}")
    for path in paths:
        data = path.read_bytes()
        _same(Headers(data, 0, len(data), True))
        start = data.find(b"\n") + 1
        _same(Headers(data, start, len(data), True))


_piece = st.sampled_from(
    [b"Via", b"vIA", b"v", b"V", b"To", b"t", b"T", b"tO", b"From", b"f", b"Call-ID", b"i", b"c",
     b"content-TYPE", b"x-cid", b"X-Cid", b"Session-Id", b"Supported", b"k", b"\xe2\x84\xaa", b":", b"::",
     b" ", b"\t", b"\x0b", b"\x0c", b"\r", b"\n", b"\r\n", b"\x1c", b"\x1f", b"\x00", b"value", b"a b",
     b"\xc3\xa9", b"\xff", b"\xc3", b";tag=1", b"<sip:a@b>"]
)  # fmt: skip


@given(st.lists(_piece, max_size=40).map(b"".join), st.integers(-2, 60), st.integers(-2, 80))
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
def test_compiled_lookup_agrees_on_any_section(data: bytes, start: int, end: int) -> None:
    _same(Headers(data, start, end, True))


@given(st.binary(max_size=120), st.integers(0, 40))
@settings(max_examples=500)
def test_compiled_lookup_agrees_on_any_bytes(data: bytes, start: int) -> None:
    _same(Headers(data, start, len(data), True))
