"""Unit tests of ``sipflow.sip.parse``: messages built from literals, fed whole and with extras."""

from __future__ import annotations

import pytest

from sipflow.errors import ParseError
from sipflow.sip import (
    Headers,
    SipRequest,
    SipResponse,
    parse_message,
    parse_name_addr,
    parse_name_addrs,
    parse_uri,
    parse_via_values,
    split_header_values,
)

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.101:5060;transport=udp>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 20\r\n"
    b"\r\n"
    b"v=0\r\ns=-\r\nt=0 0\r\nm\r\n"
)

RESPONSE = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;received=192.0.2.101\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b'From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def test_request_whole() -> None:
    message = parse_message(INVITE)
    assert isinstance(message, SipRequest)
    assert message.is_request
    assert (message.method, message.uri, message.version) == (
        "INVITE",
        "sip:bob@biloxi.example.com",
        "SIP/2.0",
    )
    assert message.first_line == "INVITE sip:bob@biloxi.example.com SIP/2.0"
    assert message.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert message.cseq is not None
    assert (message.cseq.seq, message.cseq.method) == (314159, "INVITE")
    assert message.from_ is not None and message.to is not None
    assert message.from_.display_name == "Alice Liddell"
    assert message.from_.tag == "1928301774"
    assert message.from_.uri.user == "alice"
    assert message.to.display_name == "Bob"
    assert message.to.tag is None
    via = message.top_via
    assert via is not None
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "UDP",
        "pc33.atlanta.example.com",
        5060,
    )
    assert via.branch == "z9hG4bK776asdhds"
    assert via.param("rport") == ""
    assert via.rfc3261_branch
    assert message.content_length == 20
    assert message.body == b"v=0\r\ns=-\r\nt=0 0\r\nm\r\n"
    assert message.content_type == "application/sdp"
    assert message.raw == INVITE
    assert message.trailing == b""
    assert message.defects == ()


def test_response_whole() -> None:
    message = parse_message(RESPONSE)
    assert isinstance(message, SipResponse)
    assert not message.is_request
    assert (message.status, message.reason) == (180, "Ringing")
    assert message.to is not None and message.to.tag == "a6c85cf"
    assert message.top_via is not None and message.top_via.param("received") == "192.0.2.101"
    assert message.body == b""
    assert message.defects == ()


def test_trailing_data_after_content_length() -> None:
    message = parse_message(RESPONSE + b"garbage after the message")
    assert message.body == b""
    assert message.trailing == b"garbage after the message"
    assert message.raw == RESPONSE
    assert message.defects == ()


def test_leading_crlf_is_skipped() -> None:
    # RFC 3261 §7.5: CRLFs before the start line are ignored (keep-alives on streams).
    message = parse_message(b"\r\n\r\n" + RESPONSE)
    assert isinstance(message, SipResponse)
    assert message.raw == RESPONSE
    assert message.defects == ()


def test_fed_byte_by_byte_prefixes_never_crash() -> None:
    for end in range(len(INVITE) + 1):
        try:
            message = parse_message(INVITE[:end])
        except ParseError:
            continue
        assert message.raw + message.trailing == INVITE[:end].lstrip(b"\r\n")


def test_truncated_body_is_kept() -> None:
    message = parse_message(INVITE[:-5])
    assert message.body == INVITE[INVITE.index(b"\r\n\r\n") + 4 : -5]
    assert any(defect.startswith("Content-Length 20 exceeds the 15 bytes") for defect in message.defects)


def test_no_content_length_takes_the_rest_of_the_datagram() -> None:
    data = RESPONSE.replace(b"Content-Length: 0\r\n", b"") + b"body bytes"
    message = parse_message(data)
    assert message.content_length is None
    assert message.body == b"body bytes"
    assert message.defects == ()


def test_compact_forms() -> None:
    data = (
        b"BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
        b"v: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n"
        b"f: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
        b"t: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
        b"i: 3848276298220188511@atlanta.example.com\r\n"
        b"CSeq: 1 BYE\r\n"
        b"Max-Forwards: 70\r\n"
        b"m: <sip:alice@client.atlanta.example.com>\r\n"
        b"c: text/plain\r\n"
        b"l: 5\r\n"
        b"\r\n"
        b"hello"
    )
    message = parse_message(data)
    assert message.call_id == "3848276298220188511@atlanta.example.com"
    assert message.from_ is not None and message.from_.tag == "9fxced76sl"
    assert message.to is not None and message.to.tag == "8321234356"
    assert message.top_via is not None and message.top_via.transport == "TCP"
    assert message.content_length == 5
    assert message.body == b"hello"
    assert message.content_type == "text/plain"
    assert message.headers.get("Contact") == "<sip:alice@client.atlanta.example.com>"
    assert message.headers.get("M") == message.headers.get("contact")
    assert [name for name, _ in message.headers][:3] == ["v", "f", "t"]
    assert message.defects == ()


def test_folded_lines_and_case_insensitive_names() -> None:
    data = RESPONSE.replace(
        b"CSeq: 314159 INVITE\r\n",
        b"cSEQ:\r\n   314159\r\n\tINVITE\r\nSubject: I know you're there,\r\n pick up the phone\r\n",
    )
    message = parse_message(data)
    assert message.cseq is not None and (message.cseq.seq, message.cseq.method) == (314159, "INVITE")
    assert message.headers.get("s") == "I know you're there, pick up the phone"
    assert message.headers.get("cseq") == "314159 INVITE"
    assert message.defects == ()


def test_bare_lf_is_tolerated_and_noted() -> None:
    message = parse_message(RESPONSE.replace(b"\r\n", b"\n"))
    assert isinstance(message, SipResponse)
    assert message.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert message.to is not None and message.to.tag == "a6c85cf"
    assert message.defects == ("Lines end in bare LF instead of CRLF.",)


def test_mixed_line_ends_find_the_first_empty_line() -> None:
    data = RESPONSE.replace(b"Content-Length: 0\r\n\r\n", b"Content-Length: 4\n\nbody\r\n\r\nX")
    message = parse_message(data)
    assert message.body == b"body"
    assert message.trailing == b"\r\n\r\nX"


def test_multi_value_via_across_lines_and_in_one_line() -> None:
    data = RESPONSE.replace(
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;received=192.0.2.101\r\n",
        b"Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1, "
        b"SIP/2.0/TCP p2.example.com:5070;branch=z9hG4bK2\r\n"
        b"v: SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bK3;RECEIVED=2001:db8::10\r\n"
        b"Via: SIP/2.0/UDP p4.example.com;branch=z9hG4bK4\r\n",
    )
    message = parse_message(data)
    assert [via.branch for via in message.vias] == ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3", "z9hG4bK4"]
    assert [via.sent_by for via in message.vias] == [
        "p1.example.com",
        "p2.example.com:5070",
        "[2001:db8::9]:5061",
        "p4.example.com",
    ]
    assert message.vias[2].host == "2001:db8::9"
    assert message.vias[2].param("received") == "2001:db8::10"
    assert message.defects == ()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no data"),
        (b"\r\n\r\n", "only line breaks"),
        (b"\x00\x00\x00\x00", "no end of the header section"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "no SIP start line"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "no SIP start line"),
        (b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h", "no end of the header section"),
        (b"SIP/2.0 OK\r\n\r\n", "malformed Status-Line"),
    ],
)
def test_no_usable_message_raises(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(data)
    assert reason in info.value.reason
    assert info.value.offset is not None


def test_missing_empty_line_at_the_end_is_a_defect() -> None:
    message = parse_message(RESPONSE[:-2])
    assert "No empty line ends the header section." in message.defects
    assert message.content_length == 0


@pytest.mark.parametrize(
    ("old", "new", "defect"),
    [
        (b"Content-Length: 0", b"Content-Length: zero", "Content-Length is not a number: 'zero'."),
        (b"CSeq: 314159 INVITE", b"CSeq: INVITE", "CSeq is malformed: 'INVITE'."),
        (b"SIP/2.0 180", b"SIP/2.0 1800", "Status code 1800 is not three digits."),
        (b"SIP/2.0 180", b"SIP/2.0 099", "Status code 99 is outside 100-699."),
        (b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com", b"Call-ID:", "Call-ID is empty."),
        (b"Bob <sip:", b"Bob <sap", "To has no URI scheme: 'sapbob@biloxi.example.com'."),
        (b"To: Bob", b"Bad Name: Bob", "Header name 'Bad Name' is not a token."),
        (b"To: Bob", b"garbage\r\nTo: Bob", "Header line has no colon: 'garbage'."),
    ],
)
def test_recoverable_problems_are_defects(old: bytes, new: bytes, defect: str) -> None:
    message = parse_message(RESPONSE.replace(old, new, 1))
    assert defect in message.defects


def test_request_line_variants() -> None:
    message = parse_message(
        INVITE.replace(b"INVITE sip:bob@biloxi.example.com", b"INVITE  sip:bob@biloxi.example.com")
    )
    assert isinstance(message, SipRequest) and message.uri == "sip:bob@biloxi.example.com"
    assert message.defects == ("Request-Line elements are separated by more than one SP.",)
    message = parse_message(INVITE.replace(b"SIP/2.0\r\n", b"sip/2.0\r\n", 1))
    assert message.defects == ()


def test_duplicate_single_value_headers() -> None:
    data = RESPONSE.replace(b"CSeq: 314159 INVITE\r\n", b"CSeq: 314159 INVITE\r\nCSeq: 314160 INVITE\r\n")
    message = parse_message(data)
    assert message.cseq is not None and message.cseq.seq == 314159
    assert message.defects == ("Several CSeq header fields.",)


def test_utf8_and_invalid_octets() -> None:
    data = RESPONSE.replace(b"Bob <sip:", "\u00c9milie <sip:".encode()).replace(b"Ringing", b"Ring\xffing")
    message = parse_message(data)
    assert isinstance(message, SipResponse)
    assert message.reason == "Ring\ufffding"
    assert message.to is not None and message.to.display_name == "\u00c9milie"
    assert b"\xff" in message.raw


# --- Helpers ------------------------------------------------------------------------------------


def test_parse_name_addr_forms() -> None:
    na = parse_name_addr('"Doe, \\"J\\"" <sip:j.doe@example.com;transport=tcp>;TAG=abc;Expires=60')
    assert na.display_name == 'Doe, "J"'
    assert na.uri.params == (("transport", "tcp"),)
    assert na.tag == "abc"
    assert na.param("expires") == "60"
    bare = parse_name_addr("sip:j.doe@example.com;tag=xyz")
    assert bare.display_name is None
    assert bare.tag == "xyz"
    assert bare.uri.params == ()
    tokens = parse_name_addr("John  Doe<sip:j@example.com>")
    assert tokens.display_name == "John  Doe"
    assert parse_name_addr('<sip:a@b>;p="x;y,z"').param("p") == '"x;y,z"'
    with pytest.raises(ParseError):
        parse_name_addr("no uri here")


def test_parse_name_addrs_lists() -> None:
    values = parse_name_addrs(
        '"Last, First" <sip:a@example.com>;q=0.7, <sip:b@example.com;lr>,sip:c@example.com'
    )
    assert [value.uri.user for value in values] == ["a", "b", "c"]
    assert values[0].display_name == "Last, First"
    assert values[1].uri.param("lr") == ""
    (star,) = parse_name_addrs(" * ")
    assert star.is_wildcard
    assert not values[0].is_wildcard
    assert parse_name_addrs("") == []


@pytest.mark.parametrize(
    ("text", "scheme", "user", "host", "port", "params"),
    [
        ("sip:alice@atlanta.com", "sip", "alice", "atlanta.com", None, ()),
        (
            "SIPS:alice:secret@atlanta.com:5061;Transport=TCP",
            "sips",
            "alice",
            "atlanta.com",
            5061,
            (("transport", "TCP"),),
        ),
        ("sip:[2001:db8::1]:5060;lr", "sip", None, "2001:db8::1", 5060, (("lr", None),)),
        (
            "sip:user;par=u%40example.net@example.com",
            "sip",
            "user;par=u%40example.net",
            "example.com",
            None,
            (),
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip",
            "alice",
            "atlanta.com",
            None,
            (),
        ),
        ("sip:192.0.2.4", "sip", None, "192.0.2.4", None, ()),
        (
            "tel:+1-201-555-0123;phone-context=x",
            "tel",
            "+1-201-555-0123",
            None,
            None,
            (("phone-context", "x"),),
        ),
        ("urn:service:sos", "urn", None, None, None, ()),
    ],
)
def test_parse_uri(
    text: str,
    scheme: str,
    user: str | None,
    host: str | None,
    port: int | None,
    params: tuple[tuple[str, str | None], ...],
) -> None:
    uri = parse_uri(text)
    assert (uri.scheme, uri.user, uri.host, uri.port, uri.params) == (scheme, user, host, port, params)
    assert str(uri) == text


def test_parse_uri_without_scheme_raises() -> None:
    with pytest.raises(ParseError):
        parse_uri("alice@atlanta.com")


def test_parse_via_values() -> None:
    vias = parse_via_values(
        "SIP / 2.0 / udp  h1.example.com : 5060 ; BRANCH = z9hG4bKx ; rport=1234, "
        "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKy"
    )
    assert [(v.transport, v.host, v.port, v.branch) for v in vias] == [
        ("UDP", "h1.example.com", 5060, "z9hG4bKx"),
        ("WSS", "df7jal23ls0d.invalid", None, "z9hG4bKy"),
    ]
    assert vias[0].param("rport") == "1234"
    assert parse_via_values("garbage") == []


def test_split_header_values() -> None:
    assert split_header_values('a, "b, c" , <sip:d,e@f>, ,g') == ["a", '"b, c"', "<sip:d,e@f>", "g"]
    assert split_header_values("") == []


def test_headers_are_a_view_of_the_raw_bytes() -> None:
    # Headers keep no strings of their own: they split the message's raw bytes on request,
    # with the same unfolding, name stripping and line-end leniency as the parser.
    data = (
        b"\r\n\r\nOPTIONS sip:bob@example.com SIP/2.0\n"
        b"  continued start line\n"
        b"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n"
        b"To :<sip:bob@example.com>\n"
        b"From: <sip:alice@example.com>;tag=1\n"
        b"no colon here\n"
        b"Subject: caf\xc3\xa9 \xff and\r\n\t more\n"
        b"Call-ID: c1\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 2\n\nhiTRAILING"
    )
    message = parse_message(data)
    assert message.raw == data[4:-8] and message.trailing == b"TRAILING" and message.body == b"hi"
    assert message.headers.data is message.raw
    assert message.headers.fields == (
        ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"),
        ("To", "<sip:bob@example.com>"),
        ("From", "<sip:alice@example.com>;tag=1"),
        ("Subject", "caf\u00e9 \ufffd and more"),
        ("Call-ID", "c1"),
        ("CSeq", "1 OPTIONS"),
        ("Max-Forwards", "70"),
        ("Content-Length", "2"),
    )
    assert message.headers.get("t") == "<sip:bob@example.com>" and len(message.headers) == 8
    assert "Continuation line follows the start line." in message.defects
    assert "Header line has no colon: 'no colon here'." in message.defects
    # A message without header lines has empty headers, not the start line.
    bare = parse_message(b"OPTIONS sip:bob@example.com SIP/2.0\r\n\r\n")
    assert bare.headers.fields == () and bare.headers.get("Via") is None


def test_headers_from_fields() -> None:
    headers = Headers.from_fields([("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("i", "c1")])
    assert headers.get("call-id") == "c1" and headers.get_all("v") == ["SIP/2.0/UDP h;branch=z9hG4bK1"]
    assert Headers.from_fields([]).fields == ()


def test_headers_collect_is_get_all_of_each() -> None:
    from sipflow.sip import Headers

    raw = (
        b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nX-Leg: one\r\nv: SIP/2.0/TCP g\r\n"
        b"x-leg: two\r\nP-Charging-Vector: icid-value=1\r\nSession-ID :  abc \r\nTo: <sip:b@h>\r\n\r\n"
    )
    message = parse_message(raw)
    names = ("X-Leg", "via", "P-Charging-Vector", "Session-ID", "Absent", "t")
    expected = {canonical(n): values for n in names if (values := message.headers.get_all(n))}
    assert message.headers.collect(names) == expected
    folded = Headers.from_fields([("X-Leg", "one"), ("Via", "a"), ("X-Leg", "two")])
    assert not parse_message(raw.replace(b"x-leg: two", b"x-leg: two\r\n  more")).headers.plain
    unplain = parse_message(raw.replace(b"x-leg: two", b"x-leg: two\r\n  more")).headers
    assert unplain.collect(("x-leg",)) == {"x-leg": ["one", "two more"]}
    assert folded.collect(("x-leg", "v")) == {"x-leg": ["one", "two"], "via": ["a"]}


def canonical(name: str) -> str:
    from sipflow.sip.message import canonical_name

    return canonical_name(name)


def test_a_message_cut_short_parses_to_its_last_whole_header_line() -> None:
    from sipflow.errors import ParseError
    from sipflow.sip import parse_truncated

    whole = (
        b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKc\r\nFrom: <sip:a@h>;tag=1\r\n"
        b"To: <sip:b@h>\r\nCall-ID: cut\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    cut = whole[: whole.index(b"CSeq") + 4]  # inside the CSeq line, no empty line
    with pytest.raises(ParseError):
        parse_message(cut)
    message = parse_truncated(cut)
    assert message.call_id == "cut" and message.cseq is None
    assert parse_truncated(whole) == parse_message(whole)
    with pytest.raises(ParseError):
        parse_truncated(b"INVITE sip:b@h SI")
