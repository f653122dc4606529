"""``digest_sdp`` (what correlation reads of an SDP body) equals what ``parse_sdp`` says."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipflow.capture.reader import CaptureReader
from sipflow.correlate.facts import Sharing
from sipflow.errors import ParseError
from sipflow.sip import sdp as sdp_module
from sipflow.sip.parse import parse_message
from sipflow.sip.sdp import SdpDigest, SessionDescription, digest_sdp, find_sdp, find_sdp_digest, parse_sdp
from tests.conftest import sample_captures, shared_captures


def _expected_from(sd: SessionDescription) -> SdpDigest:
    """What correlation used to derive from the full parse (``_media``, ``_addresses``)."""
    return SdpDigest(
        origin=sd.origin,
        media=frozenset((m.connection or sd.connection or "", m.port) for m in sd.media if m.port),
        addresses=frozenset(m.connection or sd.connection or "" for m in sd.media) - {""},
    )


def _expected(body: bytes) -> SdpDigest | None:
    try:
        return _expected_from(parse_sdp(body))
    except ParseError:
        return None


def _digest(body: bytes) -> SdpDigest | None:
    try:
        return digest_sdp(body)
    except ParseError:
        return None


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_digest_agrees_with_the_parse_on_captures(path: Path) -> None:
    with CaptureReader(path) as reader:
        for packet in reader:
            try:
                sip = parse_message(packet.payload)
            except ParseError:
                continue
            full = find_sdp(sip)
            digest = find_sdp_digest(sip)
            assert (full is None) == (digest is None)
            if full is not None:
                assert digest == _expected_from(full)


def _digests_in(path: Path) -> list[SdpDigest]:
    """The digest of every message of ``path`` that carries SDP, in order."""
    digests = []
    with CaptureReader(path) as reader:
        for packet in reader:
            try:
                digest = find_sdp_digest(parse_message(packet.payload))
            except ParseError:
                continue
            if digest is not None:
                digests.append(digest)
    return digests


@pytest.mark.parametrize("path", sample_captures(), ids=lambda p: p.name)
def test_digest_pickles_to_an_equal_one(path: Path) -> None:
    """``SdpDigest.__reduce__`` (flat, for the shard workers' correlation facts) gives it back whole."""
    digests = _digests_in(path)
    digests.append(SdpDigest(origin=None, media=frozenset({("", 4000)}), addresses=frozenset()))
    back = pickle.loads(pickle.dumps(digests, pickle.HIGHEST_PROTOCOL))
    assert back == digests
    assert [type(d.origin) for d in back] == [type(d.origin) for d in digests]


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_sharing_keeps_every_digest_equal_and_shares_its_repeated_values(path: Path) -> None:
    """``correlate.facts.Sharing`` (applied to the facts a shard worker pickles) changes no
    digest's value, and equal names and address sets come out as one object, so a pickle of
    many legs' digests writes each once."""
    digests = _digests_in(path)
    sharing = Sharing()
    shared = [sharing.digest(d) for d in digests]
    assert shared == digests
    assert sharing.digest(None) is None
    seen: dict[object, object] = {}
    for d in shared:
        assert d is not None
        assert seen.setdefault(d.addresses, d.addresses) is d.addresses
        if d.origin is not None:
            for value in (d.origin.username, d.origin.nettype, d.origin.addrtype, d.origin.address):
                assert seen.setdefault(value, value) is value
    back = pickle.loads(pickle.dumps(shared, pickle.HIGHEST_PROTOCOL))
    assert back == digests
    # Of an answer, what correlation reads: its addresses, one object for equal ones.
    answers = [sharing.answer(d) for d in digests]
    for d, answer in zip(digests, answers, strict=True):
        assert answer is not None and d is not None and answer.addresses == d.addresses
        assert answer is sharing.answer(d)
    assert sharing.answer(None) is None


_LINES = st.sampled_from(
    [
        "v=0",
        "v=1",
        "o=- 1 2 IN IP4 10.0.0.1",
        "o=bad line",
        "o=a b c d e f g",
        "s=-",
        "c=IN IP4 10.0.0.2",
        "c=IN IP4 224.2.1.1/127/3",
        "c=IN IP6 2001:db8::1",
        "c=IN",
        "c = IN IP4 10.0.0.3",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 8 101",
        "m=audio 0 RTP/AVP 0",
        "m=video 5000/2 RTP/AVP 96",
        "m=audio x RTP/AVP 0",
        "m=audio 123456 RTP/AVP 0",
        "m=audio 4002",
        "m=image 6000 udptl t38",
        "a=rtpmap:101 telephone-event/8000",
        "a=sendonly",
        "a=inactive",
        "junk line",
        "",
        "  ",
    ]
)


@given(st.lists(_LINES, max_size=12), st.sampled_from(["\r\n", "\n"]))
def test_digest_agrees_with_the_parse_on_generated_bodies(lines: list[str], eol: str) -> None:
    body = eol.join(lines).encode()
    assert _digest(body) == _expected(body)


# The compiled digest (sipflow/sip/_sdp.c) against its Python reference -------------------------


def _outcome(read: Callable[[bytes], SdpDigest], body: bytes) -> object:
    try:
        return read(body)
    except ParseError as exc:
        return ("ParseError", exc.reason, exc.offset)


def _both(body: bytes) -> None:
    if sdp_module._digest_read is None:
        if os.environ.get("SIPFLOW_REQUIRE_COMPILED") and not os.environ.get("SIPFLOW_PURE_PYTHON"):
            pytest.fail(
                "the compiled SDP digest is required here (SIPFLOW_REQUIRE_COMPILED) but was not built"
            )
        pytest.skip("the C extension was not built (no compiler at install time)")
    assert _outcome(digest_sdp, body) == _outcome(sdp_module._digest_sdp, body)


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_compiled_digest_agrees_on_captures(path: Path) -> None:
    with CaptureReader(path) as reader:
        for packet in reader:
            try:
                sip = parse_message(packet.payload)
            except ParseError:
                continue
            if sip.body:
                _both(sip.body)


_PIECES = st.sampled_from(
    ["v", "o", "c", "m", "s", "a", "=", " ", "\t", "\r", "\n", "\r\n", "/", "0", "4000", "123456", "IN",
     "IP4", "10.0.0.1", "RTP/AVP", "x", "- 1 2", "\x0b", "\x1c", "\x85", "é", "\u3000", "\x7f", "\x00"]
)  # fmt: skip


@given(
    st.lists(_LINES, max_size=12),
    st.sampled_from(["\r\n", "\n", "\r\r\n", "\n\n"]),
    st.text(" \t\r\n", max_size=3),
)
def test_compiled_digest_agrees_on_generated_bodies(lines: list[str], eol: str, lead: str) -> None:
    _both((lead + eol.join(lines)).encode())


@given(st.lists(_PIECES, max_size=40))
def test_compiled_digest_agrees_on_pieces(pieces: list[str]) -> None:
    _both("".join(pieces).encode())


@given(st.binary(max_size=200))
def test_compiled_digest_agrees_on_any_bytes(body: bytes) -> None:
    _both(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \r\n\t",
        b"v=0\r\no=a b c d e f\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 1.2.3.4/24\r\no=x y z u v w\r\n",
        b"v=0\nc=IN IP4 9.9.9.9\nm=audio 4000 RTP/AVP 0\nm=audio x RTP/AVP 0\nc=IN IP4 8.8.8.8\n",
        b"v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN\r\n",
        b"v=0\r\nc=IN IP4 /x\r\nm=audio 4000 RTP/AVP\r\n",
        b"\r\n  \r\nv \t=0\r\nm\t= audio 00000 RTP/AVP 0\r\n",
        b"x v=0\r\nv=0\r\n",
        b"V=0\r\nm=audio 1 RTP/AVP 0",
        b"s=-\r\n",
        b"v=0\r\no=\xc3\xa9 1 2 IN IP4 1.1.1.1\r\n",
    ],
)
def test_compiled_digest_agrees_on_edges(body: bytes) -> None:
    _both(body)
