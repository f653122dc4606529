"""The compiled header scan (``sipflow/sip/_scan.c``) gives what the pure-Python parser gives.

``parse_message`` takes the C fast path where the extension was built; these tests parse every
message twice, with and without it, and hold the two to the same message: every field, the
defects, the lazily parsed From/To/Via, the header list, and the same ParseError for bytes that
are no message. The inputs: every SIP payload of the bundled and shared captures, the RFC 4475
torture messages, the fuzz corpus, and generated variations of the shapes the fast path reads
(display names, quotes, brackets, parameters, non-ASCII octets, bare CR and LF, folding).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sipflow.sip.parse as parse_module
from sipflow.capture.reader import CaptureReader
from sipflow.errors import ParseError
from sipflow.sip.message import SipRequest, SipResponse

from .conftest import RFC4475, ROOT, sample_captures, shared_captures

if not parse_module.COMPILED:
    if os.environ.get("SIPFLOW_REQUIRE_COMPILED"):
        pytest.fail("the compiled scan is required here (SIPFLOW_REQUIRE_COMPILED) but was not built")
    pytest.skip("the C extension was not built (no compiler at install time)", allow_module_level=True)

_SCAN = parse_module._scan
_PARSE = parse_module._parse
_HINT = parse_module.call_id_hint
assert _HINT is not None  # compiled with the scan


def _outcome(data: bytes, compiled: bool) -> object:
    parse_module._scan = _SCAN if compiled else None
    parse_module._parse = _PARSE if compiled else None
    try:
        message = parse_module.parse_message(data)
    except ParseError as exc:
        return ("ParseError", exc.reason, exc.offset)
    finally:
        parse_module._scan = _SCAN
        parse_module._parse = _PARSE
    return _view(message)


def _view(m: SipRequest | SipResponse) -> tuple[object, ...]:
    first = (m.method, m.uri) if isinstance(m, SipRequest) else (m.status, m.reason)
    return (
        type(m).__name__, *first, m.version, m.raw, m.body_start, m.call_id, m.cseq, m.from_tag, m.to_tag,
        m.branch, m.sent_by, m.content_length, m.ingest_defects, m.trailing, m.headers, m.headers.fields,
        m.from_, m.to, m.vias, m.defects,
    )  # fmt: skip


def _same(data: bytes) -> bool:
    """The two parses agree, and the Call-ID read alone (``call_id_hint``), where it is given,
    is the parsed message's. Whether it was given."""
    compiled = _outcome(data, True)
    assert compiled == _outcome(data, False), data[:200]
    hint = _HINT(data)
    if hint is not None:
        # A message with that Call-ID, or no message at all (then shard.py routes it by hint).
        assert compiled[0] == "ParseError" or compiled[6] == hint, data[:200]  # type: ignore[index]
    return hint is not None


def _payloads() -> Iterator[bytes]:
    for path in [*sample_captures(), *shared_captures()]:
        with CaptureReader(path) as reader:
            for packet in reader:
                yield packet.payload


def test_every_capture_message_parses_the_same() -> None:
    count = hinted = 0
    for payload in _payloads():
        hinted += _same(payload)
        count += 1
    assert count > 1000
    # The Call-ID alone is read from the usual message, so shard workers skip parsing most.
    assert hinted > 0.9 * count


def test_rfc4475_and_fuzz_corpus_parse_the_same() -> None:
    files = sorted(RFC4475.glob("*.dat")) if RFC4475.is_dir() else []
    files += sorted((ROOT / "fuzz" / "corpus").rglob("*"))
    files += sorted((ROOT / "tests" / "fuzz_regressions").rglob("*"))
    seen = 0
    for path in files:
        if path.is_file():
            data = path.read_bytes()
            _same(data)
            _same(data.replace(b"\n", b"\r\n"))
            seen += 1
    assert seen > 10


def test_fast_path_is_taken_for_plain_messages() -> None:
    data = (
        b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\r\n"
        b'From: "Al\\"ice" <sip:a@example.com>;tag=t1\r\nTo: <sip:b@example.com>\r\nCall-ID: c@h\r\n'
        b"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    scanned = _SCAN(data, parse_module._SCAN_NAMES, parse_module._UNKNOWN)
    assert scanned is not None
    first, found, repeated, head_end, first_end, from_tag, to_tag, branch, sent_by = scanned
    assert first == "INVITE sip:bob@example.com SIP/2.0"
    assert found["call-id"] == ["c@h"] and not repeated
    assert (from_tag, to_tag, branch, sent_by) == ("t1", None, "z9hG4bKx", "10.0.0.1:5060")
    assert head_end == data.index(b"\r\n\r\n") and first_end == data.index(b"\n")
    # What the fast path leaves to Python: a bare LF, folding, a blank before the colon.
    for odd in (data.replace(b"\r\nTo", b"\nTo"), data.replace(b"\r\nTo", b"\r\n To"),
                data.replace(b"To:", b"To :")):  # fmt: skip
        assert _SCAN(odd, parse_module._SCAN_NAMES, parse_module._UNKNOWN) is None
        _same(odd)


_PIECES = st.sampled_from(
    [
        "",
        " ",
        "\t",
        '"',
        "\\",
        "<",
        ">",
        ";",
        "=",
        ",",
        ":",
        "tag",
        "TAG",
        "branch",
        "BrAnch",
        "z9hG4bK1",
        "sip:a@b",
        "[2001:db8::1]",
        "10.0.0.1",
        ":5060",
        ":99999",
        ":065535",
        "SIP/2.0/UDP ",
        "SIP/2.0/tcp ",
        "é",
        "\u00a0",
        "\x1c",
        "\x0c",
        "\xff",
        "\r",
        "\n",
        "\r\n",
        "\r\n ",
        "lr",
        "rport",
        "received=1.2.3.4",
        ",",
        ", SIP/2.0/UDP 10.0.0.1",
        "120",
        "(",
        "4294967295",
        "4294967296",
    ]
)
_VALUE = st.lists(_PIECES, max_size=12).map("".join)
_NAMES = st.sampled_from(
    ["From", "f", "To", "t", "Via", "v", "Call-ID", "i", "CSeq", "Contact", "m", "Content-Length", "l",
     "Max-Forwards", "Expires", "Date", "Warning", "Retry-After", "X-Other", "to ", "Fr om", "", "Via", "v",
     "Retry-After", "CALL-ID", "I", "call-id", "Call-ID ", "Call_ID"]
)  # fmt: skip


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.lists(st.tuples(_NAMES, _VALUE), max_size=10),
    start=st.sampled_from(
        [
            "INVITE sip:b@h SIP/2.0",
            "SIP/2.0 180 Ringing",
            "SIP/2.0 200",
            "BYE  x SIP/2.0",
            "SIP/2.0 200 OK",
            "sip/2.0 486 Busy Here",
            "SIP/2.0 099 Low",
            "SIP/2.0 700 High",
            "SIP/2.0 200 ",
            "SIP/3.0 200 OK",
            "INVITE <sip:b@h> SIP/2.0",
            "INVITE sip:b@h?x=1 SIP/2.0",
            "INVITE sip:a@b@h?x SIP/2.0",
            "INVITE tel:+1?x SIP/2.0",
            "INVITE 1sip:b SIP/2.0",
            "INVITE sip:b@h SIP/2.1",
            "INVITE sip:b@h sip/2.0",
            "INVITE sip:bé@h SIP/2.0",
            "INVITE sip:b@h SIP/2.0 ",
            "INV\x7fITE sip:b@h SIP/2.0",
            "BYE sip:b@h SIP/2.0",
        ]
    ),
    body=st.sampled_from(["", "v=0\r\n", "x\r\n\r\ny"]),
)
def test_generated_messages_parse_the_same(headers: list[tuple[str, str]], start: str, body: str) -> None:
    base = [("Via", "SIP/2.0/UDP h;branch=z9hG4bKb"), ("From", "<sip:a@h>;tag=1"), ("To", "<sip:b@h>"),
            ("Call-ID", "c"), ("CSeq", "1 INVITE")]  # fmt: skip
    # With Max-Forwards and Content-Length a request can take the compiled parse (``_parse``).
    full = [*base, ("Max-Forwards", "70"), ("Content-Length", str(len(body.encode())))]
    for combined in (headers, base + headers, headers + base, full + headers, headers + full):
        text = start + "\r\n" + "".join(f"{n}:{v}\r\n" for n, v in combined) + "\r\n" + body
        _same(text.encode("utf-8", "surrogatepass"))
        _same(text.encode("latin-1", "replace"))


def test_compiled_parse_builds_plain_messages() -> None:
    """``_parse`` gives the whole message for the usual shapes, and leaves the rest to Python."""
    request = (
        b"INVITE sip:+4930123@example.com;user=phone SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\r\n"
        b'Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKy\r\nFrom: "Al\\"ice" <sip:a@example.com>;tag=t1\r\n'
        b"To: <sip:b@example.com>\r\ni: c@h\r\nCSeq: 7 INVITE\r\nMax-Forwards: 70\r\nExpires: 180\r\n"
        b"Contact: <sip:a@10.0.0.1>\r\nm: <sip:a@10.0.0.9>\r\nContent-Type: application/sdp\r\n"
        b"Content-Length: 5\r\n\r\nv=0\r\nSIP/2.0 200 OK"
    )
    message = _PARSE(request)
    assert isinstance(message, SipRequest)
    assert (message.method, message.uri, message.call_id, message.cseq) == (
        "INVITE", "sip:+4930123@example.com;user=phone", "c@h", parse_module.CSeq(7, "INVITE")
    )  # fmt: skip
    assert (message.branch, message.sent_by, message.from_tag, message.to_tag) == (
        "z9hG4bKx", "10.0.0.1:5060", "t1", None
    )  # fmt: skip
    assert message.body == b"v=0\r\n" and message.trailing == b"SIP/2.0 200 OK" and not message.defects
    _same(request)
    response = (
        b"SIP/2.0 180 Ringing\r\nv: SIP/2.0/TCP [2001:DB8::1]:5061;branch=z9hG4bKq\r\n"
        b"f: <sip:a@h>;tag=9\r\nt: <sip:b@h>;tag=8\r\nCall-ID: x\r\nCSeq: 2 INVITE\r\n\r\n"
    )
    message = _PARSE(response)
    assert isinstance(message, SipResponse) and (message.status, message.reason) == (180, "Ringing")
    assert message.sent_by == "[2001:db8::1]:5061" and message.raw is response
    _same(response)
    for variant in (
        response.replace(b";branch=z9hG4bKq", b";branch=z9hG4bKq , SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKr"),
        response.replace(b"CSeq: 2 INVITE", b"CSeq: 2 INVITE\r\nRetry-After: 120 (lunch);duration=60"),
    ):
        message = _PARSE(variant)
        assert message is not None and message.branch == "z9hG4bKq", variant
        _same(variant)
    # Each of these would give a defect (or needs the Python code's reading): left to Python.
    for odd in (
        request.replace(b"Max-Forwards: 70\r\n", b""),
        request.replace(b"Max-Forwards: 70", b"Max-Forwards: 256"),
        request.replace(b"CSeq: 7 INVITE", b"CSeq: 7 BYE"),
        request.replace(b"CSeq: 7 INVITE", b"CSeq: 2147483648 INVITE"),
        request.replace(b"Content-Length: 5", b"Content-Length: 500"),
        request.replace(b"Expires: 180", b"Expires: 4294967296"),
        request.replace(b"Expires: 180", b"Date: Sat, 13 Nov 2010 23:29:00 GMT"),
        request.replace(b"i: c@h", b"i: c@h\r\nCall-ID: d@h"),
        request.replace(b"<sip:a@10.0.0.9>", b"sip:a@10.0.0.9"),
        request.replace(b"<sip:a@10.0.0.9>", b"<sip:a@10.0.0.9>;expires=60"),
        request.replace(b"sip:+4930123", b"<sip:+4930123").replace(b"phone SIP", b"phone> SIP"),
        request.replace(b"SIP/2.0\r\n", b"SIP/2.1\r\n", 1),
        response.replace(b"180", b"700"),
        response.replace(b"CSeq: 2 INVITE", b"CSeq: 2 INVITE\r\nRetry-After: 4294967296 (x)"),
        response.replace(b"CSeq: 2 INVITE", b"CSeq: 2 INVITE\r\nRetry-After: x;duration=5"),
        response.replace(b";branch=z9hG4bKq", b';branch=z9hG4bKq;x="a, b"'),
        response.replace(b";branch=z9hG4bKq", b";branch=z9hG4bKq;x=<a, b>"),
        response.replace(b"Call-ID: x", b"Call-ID: "),
    ):
        assert _PARSE(odd) is None, odd
        _same(odd)


def test_pure_python_can_be_forced() -> None:
    code = "import sipflow.sip.parse as p; print(p.COMPILED)"
    env = dict(os.environ, SIPFLOW_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_scan_needs_no_more_than_its_bytes() -> None:
    """The scan reads inside its buffer only: a message cut anywhere, including inside the final
    CRLF CRLF, is the same either way (a read past the end would show under ASan, and here as a
    difference or a crash)."""
    data = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bKq\r\nFrom: <sip:a@h>;tag=9\r\n"
        b'To: "B" <sip:b@h>;tag=8\r\nCall-ID: x\r\nCSeq: 2 BYE\r\n\r\n'
    )
    for cut in range(len(data) + 1):
        _same(data[:cut])


def test_messages_of_a_call_share_their_identifiers() -> None:
    """The compiled parse keeps one str per Call-ID, tag, branch and sent-by that messages repeat
    (and one CSeq per value: a call's messages hold references, not copies; issue 12)."""
    invite = (
        b"INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-share\r\n"
        b"From: <sip:a@example.com>;tag=from-share\r\nTo: <sip:b@example.com>\r\nCall-ID: share@h\r\n"
        b"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    ringing = (
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-share\r\n"
        b"From: <sip:a@example.com>;tag=from-share\r\nTo: <sip:b@example.com>;tag=to-share\r\n"
        b"Call-ID: share@h\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    ok = ringing.replace(b"180 Ringing", b"200 OK")
    first, second, third = (_PARSE(bytes(data)) for data in (invite, ringing, ok))
    for name in ("call_id", "from_tag", "branch", "sent_by", "cseq"):
        assert getattr(first, name) is getattr(second, name) is getattr(third, name), name
    assert second.to_tag is third.to_tag and first.to_tag is None
    assert (first.call_id, first.branch, second.to_tag) == ("share@h", "z9hG4bK-share", "to-share")
