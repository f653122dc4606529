"""The envelope a message is read with equals what the full parse says.

``parse_message`` reads the From and To tags and the top Via's branch and sent-by without
parsing the rest (the protocol model needs only those for every message); ``from_``, ``to``
and ``vias`` are parsed on first use. Wherever the full parse finds a value, the envelope
must give the same answer: on every message of the samples, the public captures and the
RFC 4475 torture tests, and on generated header values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipflow.capture.reader import CaptureReader
from sipflow.errors import ParseError
from sipflow.sip.message import SipRequest, SipResponse
from sipflow.sip.parse import parse_message
from tests.conftest import RFC4475, sample_captures, shared_captures


def _agrees(sip: SipRequest | SipResponse) -> None:
    if sip.from_ is not None:
        assert sip.from_tag == sip.from_.tag
    if sip.to is not None:
        assert sip.to_tag == sip.to.tag
    via = sip.top_via
    if via is None:
        assert (sip.branch, sip.sent_by) == (None, None)
    else:
        assert (sip.branch, sip.sent_by) == (via.branch, via.sent_by)
        assert sip.rfc3261_branch == via.rfc3261_branch


def _payloads(path: Path) -> list[bytes]:
    with CaptureReader(path) as reader:
        return [p.payload for p in reader]


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_envelope_agrees_with_the_full_parse_on_captures(path: Path) -> None:
    for payload in _payloads(path):
        try:
            sip = parse_message(payload)
        except ParseError:
            continue
        _agrees(sip)


def test_envelope_agrees_with_the_full_parse_on_rfc4475() -> None:
    files = sorted(RFC4475.glob("*.dat"))
    if not files:
        pytest.skip("../shared/rfc4475 not present")
    for path in files:
        try:
            sip = parse_message(path.read_bytes())
        except ParseError:
            continue
        _agrees(sip)


def test_lazy_fields_are_parsed_once_and_their_defects_counted() -> None:
    raw = (
        b"INVITE sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1, SIP/2.0/UDP bad host\r\n"
        b'From: "Alice <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n'
        b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    sip = parse_message(raw)
    assert sip.branch == "z9hG4bK-1" and sip.sent_by == "10.0.0.1:5060"
    assert sip.from_tag == "a1" and sip.to_tag is None
    assert any("unterminated quoted string" in d for d in sip.defects)
    assert any("Via" in d for d in sip.defects)
    assert sip.vias is sip.vias and len(sip.vias) == 2  # the bad one kept, with its defect


@pytest.mark.parametrize(
    "value",
    [
        "<sip:a@example.com>;x=ab",
        "<sip:a@example.com>;x=ab;tag=t1",
        "<sip:a@example.com;tag=inuri>",
        '"A;tag=no" <sip:a@example.com>;TAG=t2',
        '"A \\"q\\" >" <sip:a@example.com>;tag=t3;x',
        "sip:a@example.com;tag=t4",
        "sip:a@example.com;x;tag",
        "Alice <sip:a@example.com> ;tag=t5",
        "<sip:a@example.com>;tag=t6;tag=t7",
        "<tel:+4930123>;tag=t8",
        "",
    ],
)
def test_envelope_tags_on_chosen_values(value: str) -> None:
    raw = (
        "OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
        f"From: {value}\r\nTo: {value}\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    sip = parse_message(raw)
    _agrees(sip)
    assert sip.from_ is not None or value == ""


_TOKEN = st.text(alphabet="abcXYZ019-.!%*_+`'~", min_size=1, max_size=8)
_VALUE = st.one_of(
    st.text(alphabet="abcXYZ019-.!%*_+~", max_size=8),
    st.text(alphabet='abcXYZ019-.!%*_+~:"<>@ ', max_size=8),
)


@st.composite
def _name_addr(draw: st.DrawFn) -> str:
    display = draw(
        st.one_of(
            st.just(""),
            _TOKEN.map(lambda t: t + " "),
            st.text(alphabet='ab <>;,\\"x', max_size=8).map(lambda t: '"' + t + '" '),
        )
    )
    uri = (
        "sip:" + draw(_TOKEN) + "@" + draw(st.sampled_from(["example.com", "10.0.0.1:5060", "[2001:db8::1]"]))
    )
    uri += draw(st.sampled_from(["", ";transport=udp", ";tag=inuri", ";lr"]))
    params = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["tag", "TAG", "Tag", "x", "expires", " tag", "tag "]),
                st.sampled_from(["=", "", " = "]),
                _VALUE,
            ),
            max_size=3,
        )
    )
    text = "".join(f";{name}{eq}{value}" for name, eq, value in params)
    bracketed = draw(st.booleans())
    return (f"{display}<{uri}>{text}" if bracketed else f"{uri}{text}") + draw(
        st.sampled_from(["", " ", "\t"])
    )


@given(_name_addr(), _name_addr())
def test_envelope_tags_agree_on_generated_values(from_value: str, to_value: str) -> None:
    raw = (
        "OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
        f"From: {from_value}\r\nTo: {to_value}\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    _agrees(parse_message(raw))


@given(
    st.sampled_from(["SIP/2.0/UDP", "SIP/2.0/tcp", "sip/2.0/UDP", "SIP/2.0/WSS"]),
    st.sampled_from(["Host.Example.COM", "10.0.0.1", "[2001:DB8::1]", "h_x"]),
    st.sampled_from(["", ":5060", ":05060", ":65536", ":0"]),
    st.lists(
        st.tuples(
            st.sampled_from(["branch", "BRANCH", "rport", "received", "x"]),
            st.sampled_from(["", "=", "=z9hG4bKa"]),
        ),
        max_size=3,
    ),
    st.sampled_from(["", " ", ", SIP/2.0/UDP other;branch=z9hG4bKb", ",", " ;x=1"]),
)
def test_via_envelope_agrees_on_generated_values(
    protocol: str, host: str, port: str, params: list[tuple[str, str]], after: str
) -> None:
    via = f"{protocol} {host}{port}" + "".join(f";{n}{v}" for n, v in params) + after
    raw = (
        f"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@b>;tag=1\r\n"
        "To: <sip:b@c>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    _agrees(parse_message(raw))
