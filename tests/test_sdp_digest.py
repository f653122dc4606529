"""``digest_sdp`` (what correlation reads of an SDP body) equals what ``parse_sdp`` says."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipflow.capture.reader import CaptureReader
from sipflow.errors import ParseError
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
