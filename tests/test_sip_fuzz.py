"""Property tests: the parsers raise nothing but ParseError, and header lists round-trip."""

from __future__ import annotations

import contextlib
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sipflow.errors import ParseError
from sipflow.sip import (
    Headers,
    find_sdp,
    parse_message,
    parse_name_addr,
    parse_name_addrs,
    parse_sdp,
    parse_uri,
    parse_via_values,
    split_header_values,
)

RFC4475 = Path(__file__).resolve().parent.parent.parent / "shared" / "rfc4475"
if not RFC4475.is_dir():
    RFC4475 = Path("/work/shared/rfc4475")

_BASE_BODY = (
    b"--b1\r\nContent-Type: application/sdp\r\n\r\n"
    b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n--b1--\r\n"
)
BASE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport, "
    b"SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bK2\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'f: "Alice \\"L\\"" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.101:5060;transport=udp>;expires=60, sip:x@y\r\n"
    b"Content-Type: multipart/mixed;boundary=b1\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n%s" % (len(_BASE_BODY), _BASE_BODY)
)
SEEDS = [BASE] + ([path.read_bytes() for path in sorted(RFC4475.glob("*.dat"))] if RFC4475.is_dir() else [])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed message with a few random edits: replace, insert, delete, truncate, duplicate."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "dup"]))
        if action == "replace":
            data[pos] = draw(st.sampled_from(b'\x00\r\n :;,"<>@[]/\\=%\xff0123456789 \t'))
        elif action == "insert":
            data[pos:pos] = draw(st.binary(max_size=8))
        elif action == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        elif action == "truncate":
            del data[pos:]
        else:
            end = min(len(data), pos + draw(st.integers(1, 60)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


def _parse_all(data: bytes) -> None:
    try:
        message = parse_message(data)
    except ParseError:
        return
    # Everything hanging off a message must be usable too.
    assert message.raw + message.trailing == data.lstrip(b"\r\n")
    for name, value in message.headers:
        assert isinstance(name, str) and isinstance(value, str)
    for value in message.headers.get_all("contact") + message.headers.get_all("route"):
        parse_name_addrs(value)
    find_sdp(message)
    _ = [via.sent_by for via in message.vias]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
@example(b"SIP/2.0 200\r\n\r\n")
@example(b"A b SIP/2.0\n\n")
@example(b"INVITE sip:x SIP/2.0\r\nContent-Length: 99999999999999999999999999999\r\n\r\n")
@example(b"INVITE sip:x SIP/2.0\r\nCSeq: " + b"9" * 5000 + b" INVITE\r\n\r\n")
@example(b"SIP/2.0 " + b"1" * 5000 + b" OK\r\n\r\n")
def test_parse_message_arbitrary_bytes(data: bytes) -> None:
    _parse_all(data)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_parse_message_mutated_messages(data: bytes) -> None:
    _parse_all(data)


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_helpers_raise_only_parse_error(text: str) -> None:
    for function in (parse_name_addr, parse_uri):
        with contextlib.suppress(ParseError):
            function(text)
    parse_name_addrs(text)
    parse_via_values(text)
    split_header_values(text)


SDP_SEED = (
    b"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendonly\r\n"
    b"m=audio 4000/2 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\nm=video 0 RTP/AVP 31\r\n"
)


@settings(max_examples=400)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.builds(lambda cut, extra: SDP_SEED[:cut] + extra, st.integers(0, 160), st.binary(max_size=20)),
    )
)
def test_parse_sdp_raises_only_parse_error(body: bytes) -> None:
    try:
        sd = parse_sdp(body)
    except ParseError:
        return
    for media in sd.media:
        assert media.direction in ("sendrecv", "sendonly", "recvonly", "inactive")


# --- Round trip of generated header lists ---------------------------------------------------------

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
token = st.text(TOKEN_ALPHABET, min_size=1, max_size=12)
header_value = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85"), max_size=40
).map(str.strip)
# Names the parser reads eagerly are left out (their values are generated below), and so are
# those whose values it checks.
EAGER = {"call-id", "cseq", "from", "to", "via", "content-length", "i", "f", "t", "v", "l", "max-forwards"}
EAGER |= {"contact", "m", "expires", "retry-after", "warning", "date", "content-type", "c"}
header_name = token.filter(lambda name: name.lower() not in EAGER)


@settings(max_examples=300)
@given(
    fields=st.lists(st.tuples(header_name, header_value), max_size=12),
    display=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
    tag=token,
    branch=token,
    call_id=token,
    seq=st.integers(0, 2**31 - 1),
    method=token,
    body=st.binary(max_size=50),
)
def test_header_lists_round_trip(
    fields: list[tuple[str, str]],
    display: str,
    tag: str,
    branch: str,
    call_id: str,
    seq: int,
    method: str,
    body: bytes,
) -> None:
    quoted = display.replace("\\", "\\\\").replace('"', '\\"')
    eager = [
        ("Via", f"SIP/2.0/UDP host.example.com:5060;branch={branch}"),
        ("From", f'"{quoted}" <sip:alice@example.com>;tag={tag}'),
        ("To", "<sip:bob@example.com>"),
        ("Call-ID", call_id),
        ("CSeq", f"{seq} {method}"),
        ("Max-Forwards", "70"),
        ("Content-Length", str(len(body))),
    ]
    all_fields = eager[:3] + fields + eager[3:]
    text = (
        f"{method} sip:bob@example.com SIP/2.0\r\n" + "".join(f"{n}: {v}\r\n" for n, v in all_fields) + "\r\n"
    )
    message = parse_message(text.encode() + body)
    assert message.headers.fields == tuple(all_fields)
    assert message.from_ is not None
    assert message.from_.display_name == display
    assert message.from_.tag == tag
    assert message.top_via is not None and message.top_via.branch == branch
    assert message.call_id == call_id
    assert message.cseq is not None and (message.cseq.seq, message.cseq.method) == (seq, method)
    assert message.body == body
    assert message.defects == ()


# --- Headers: the fast lookup of plain header sections answers as the full split does -------------

_NAMES = ["Via", "v", "CALL-ID", "i", "To", "t", "Contact", "m", "X-CID", "Subject", "s", "Max-Forwards"]
# Names that str.lower()/strip() turn into a sought name although the bytes differ: a Kelvin
# sign lowers to "k" (Supported), a no-break space strips away.
_ODD_NAMES = ["\u212a", "Via\u00a0", "\u00a0To"]


def _cased(name: str) -> st.SearchStrategy[str]:
    flips = st.lists(st.booleans(), min_size=len(name), max_size=len(name))
    return flips.map(lambda fs: "".join(c.swapcase() if f else c for c, f in zip(name, fs, strict=True)))


_name = st.one_of(st.sampled_from(_NAMES).flatmap(_cased), st.sampled_from(_ODD_NAMES))
_value = st.lists(
    st.sampled_from([b"a", b" ", b"c;=", b":", b"<>@", b"\t", b"\r", "\u00e9".encode(), b"\xff", b"\xc3"]),
    max_size=8,
).map(b"".join)
_header_line = st.tuples(
    _name.map(str.encode),
    st.sampled_from([b"", b" ", b"\t", b" \t", b"\x0b", b"\r"]),
    st.sampled_from([b":", b"::"]),
    _value,
).map(b"".join)
_header_block = st.lists(
    st.tuples(
        st.one_of(_header_line, st.just(b"no colon"), st.just(b" folded"), st.just(b"")),
        st.sampled_from([b"\r\n", b"\n"]),
    ).map(b"".join),
    max_size=8,
).map(b"".join)


@given(_header_block)
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_fast_header_lookup_equals_the_full_split(block: bytes) -> None:
    # The parser decides when a lookup may search the bytes (Headers.plain); whatever it
    # decides, every lookup answers as the full split of the section does.
    message = parse_message(b"OPTIONS sip:bob@example.com SIP/2.0\r\n" + block + b"\r\n\r\n")
    fast = message.headers
    slow = Headers(fast.data, fast.start, fast.end, False)
    for name in [*_NAMES, "x-cid", "call-id", "supported", "k", "nothing", "via:", "to ", "c"]:
        assert fast.get(name) == slow.get(name), name
        assert fast.get_all(name) == slow.get_all(name), name
