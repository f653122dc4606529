"""Unit tests of ``sipflow.sip.sdp``: parse_sdp, find_sdp (multipart too) and summarize."""

from __future__ import annotations

import pytest

from sipflow.errors import ParseError
from sipflow.sip import find_sdp, parse_message, parse_sdp, summarize

OFFER = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844527 IN IP4 atlanta.example.com\r\n"
    b"s=-\r\n"
    b"c=IN IP4 10.0.0.1\r\n"
    b"t=0 0\r\n"
    b"a=sendonly\r\n"
    b"m=audio 4000 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"m=video 0 RTP/AVP 31\r\n"
    b"m=audio 5000/2 RTP/SAVP 96 18\r\n"
    b"c=IN IP6 2001:db8::5\r\n"
    b"a=rtpmap:96 opus/48000/2\r\n"
    b"a=recvonly\r\n"
    b"m=image 6000 udptl t38\r\n"
    b"c=IN IP4 224.2.1.1/127/3\r\n"
)


def test_parse_sdp_fields() -> None:
    sd = parse_sdp(OFFER)
    assert sd.origin is not None
    assert (sd.origin.username, sd.origin.session_id, sd.origin.session_version) == (
        "alice",
        "2890844526",
        "2890844527",
    )
    assert (sd.origin.nettype, sd.origin.addrtype, sd.origin.address) == ("IN", "IP4", "atlanta.example.com")
    assert sd.connection == "10.0.0.1"
    assert sd.direction == "sendonly"
    audio, video, audio2, image = sd.media
    assert (audio.kind, audio.port, audio.transport, audio.connection) == (
        "audio",
        4000,
        "RTP/AVP",
        "10.0.0.1",
    )
    assert [(c.payload_type, c.name, c.clock_rate, c.channels) for c in audio.codecs] == [
        ("0", "PCMU", 8000, 1),
        ("8", "PCMA", 8000, 1),
        ("101", "telephone-event", 8000, None),
    ]
    # Session-level direction applies where the media says nothing (RFC 3264 §5.1).
    assert audio.direction == "sendonly"
    assert video.port == 0
    assert [c.name for c in video.codecs] == ["H261"]
    # Media-level c= and direction override the session ones.
    assert (audio2.connection, audio2.direction, audio2.port, audio2.port_count) == (
        "2001:db8::5",
        "recvonly",
        5000,
        2,
    )
    assert [(c.name, c.clock_rate, c.channels) for c in audio2.codecs] == [
        ("opus", 48000, 2),
        ("G729", 8000, 1),
    ]
    # Static payload names apply to RTP profiles only.
    assert image.connection == "224.2.1.1"
    assert [(c.payload_type, c.name) for c in image.codecs] == [("t38", None)]
    assert sd.defects == ()


def test_summarize() -> None:
    assert summarize(parse_sdp(OFFER)) == (
        "audio 10.0.0.1:4000 PCMU,PCMA,telephone-event sendonly; "
        "video 10.0.0.1:0 H261 rejected; "
        "audio [2001:db8::5]:5000 opus,G729 recvonly; "
        "image 224.2.1.1:6000 t38 sendonly"
    )
    assert summarize(parse_sdp(b"v=0\r\n")) == "no media"
    assert summarize(parse_sdp(b"v=0\nm=audio 9 RTP/AVP 0\n")) == "audio ?:9 PCMU sendrecv"


def test_lenient_lines() -> None:
    sd = parse_sdp(b"v=0\nm=audio x RTP/AVP 0\nm=audio 1 RTP/AVP 0\njunk\no=short\nc=IN\na=rtpmap:\n")
    assert len(sd.media) == 1
    assert len(sd.defects) == 5


@pytest.mark.parametrize(
    "body",
    [b"", b"hello world", b'<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n', b"\x00\xff\x10", b"s=-\r\n"],
)
def test_not_sdp_raises(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_sdp(body)


def _message(content_type: bytes, body: bytes) -> bytes:
    return (
        b"INVITE sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
        b"Max-Forwards: 70\r\n"
        b"To: <sip:bob@example.com>\r\n"
        b"From: <sip:alice@example.com>;tag=1\r\n"
        b"Call-ID: c1\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Content-Type: " + content_type + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def test_find_sdp_plain() -> None:
    message = parse_message(_message(b"application/sdp", OFFER))
    sd = find_sdp(message)
    assert sd is not None and sd.connection == "10.0.0.1"
    assert find_sdp(parse_message(_message(b"text/plain", b"hi"))) is None
    assert find_sdp(parse_message(_message(b"application/sdp", b""))) is None


def test_find_sdp_in_multipart_mixed() -> None:
    body = (
        b"--unique-boundary-1\r\n"
        b"Content-Type: application/resource-lists+xml\r\n"
        b"Content-Disposition: recipient-list\r\n"
        b"\r\n"
        b"<list/>\r\n"
        b"--unique-boundary-1\r\n"
        b"Content-Type: application/sdp\r\n"
        b"\r\n" + OFFER + b"\r\n"
        b"--unique-boundary-1--\r\n"
    )
    message = parse_message(_message(b'multipart/mixed;boundary="unique-boundary-1"', body))
    sd = find_sdp(message)
    assert sd is not None
    assert len(sd.media) == 4


def test_find_sdp_in_nested_multipart_alternative_with_binary_and_base64() -> None:
    inner = (
        b"--inner\n"
        b"Content-Type: application/octet-stream\n"
        b"\n"
        b"\x00\x01\x02--inner-not-a-delimiter\xff\n"
        b"--inner\n"
        b"Content-Type: application/sdp\n"
        b"Content-Transfer-Encoding: base64\n"
        b"\n"
        b"dj0wDQpjPUlOIElQNCAxOTIuMC4yLjcNCm09YXVkaW8gODAwMCBSVFAvQVZQIDAgOA0K\n"
        b"--inner--\n"
    )
    body = (
        b"preamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
        + inner
        + b"--outer--"
    )
    message = parse_message(_message(b"multipart/mixed; boundary=outer", body))
    sd = find_sdp(message)
    assert sd is not None
    assert summarize(sd) == "audio 192.0.2.7:8000 PCMU,PCMA sendrecv"


def test_find_sdp_in_multipart_without_sdp_or_boundary() -> None:
    assert find_sdp(parse_message(_message(b"multipart/mixed", b"--x\r\n\r\nv=0\r\n--x--"))) is None
    assert (
        find_sdp(parse_message(_message(b"multipart/mixed;boundary=x", b"--x\r\n\r\nhello\r\n--x--"))) is None
    )
