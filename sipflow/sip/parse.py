"""Parse one SIP message from bytes (RFC 3261 §7, §20, §25), sans-I/O.

``parse_message`` takes the bytes of one UDP datagram payload (or one message framed out of a
stream) and returns a frozen ``SipRequest`` or ``SipResponse``. sipflow observes other people's
traffic, so the parser is lenient: anything it can make sense of becomes a message, and each
deviation from RFC 3261 it notices becomes a short sentence in ``defects``. ``ParseError`` is
raised only when there is no usable message at all (no SIP start line, binary junk, no end of
the header section).

Only what the protocol model needs is parsed eagerly: Call-ID, CSeq, From, To, Via and
Content-Length (plus cheap range checks of a few scalar headers). Everything else stays raw in
``headers``; the public helpers here (``parse_name_addr``, ``parse_name_addrs``, ``parse_uri``,
``parse_via_values``, ``split_header_values``) parse it on request.

Text decoding: the header section is decoded as UTF-8 with ``errors="replace"`` (RFC 3261 §7.3.1
allows UTF-8 in values). Invalid octets become U+FFFD, so every string the parser hands out is
printable and encodable by renderers; the exact octets stay in ``message.raw``.

This module holds the entry points, the switch to the compiled header scan (``COMPILED``) and
the assembly of the message (§7, body framing §18.3); the pieces live beside it: the head in
``head`` (start line in ``startline``), addresses in ``address``, the other structured values in
``fields``, list and parameter splitting in ``values``, the envelope fast path and the lazy
full parse in ``envelope``, the memos in ``memo``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, cast

from sipflow.errors import ParseError
from sipflow.sip import compiled
from sipflow.sip import defects as d
from sipflow.sip.address import parse_name_addr, parse_name_addrs, parse_uri
from sipflow.sip.defects import Defect
from sipflow.sip.envelope import _envelope_tag, _via_envelope
from sipflow.sip.fields import _check_scalars, _content_length, parse_via_values
from sipflow.sip.head import _SCAN_NAMES, _read_head
from sipflow.sip.memo import _FROM_MEMO, _TO_MEMO, _memo_cseq, _memo_start_line
from sipflow.sip.message import CSeq, Headers, SipRequest, SipResponse
from sipflow.sip.values import split_header_values

__all__ = [
    "MANDATORY_HEADERS",
    "parse_message",
    "parse_name_addr",
    "parse_name_addrs",
    "parse_truncated",
    "parse_uri",
    "parse_via_values",
    "split_header_values",
]

_SINGLE_VALUED: Final = (
    ("call-id", "Call-ID"),
    ("cseq", "CSeq"),
    ("from", "From"),
    ("to", "To"),
    ("max-forwards", "Max-Forwards"),
    ("content-type", "Content-Type"),
)
"""Headers that may appear once only (RFC 3261 §7.3.1, §20; RFC 4475 §3.3.8)."""
MANDATORY_HEADERS: Final = ("To", "From", "Call-ID", "CSeq", "Via")
"""RFC 3261 §8.1.1: the header fields every request (and so every response) carries."""
_MANDATORY: Final = tuple((name.lower(), name) for name in MANDATORY_HEADERS)
"""``MANDATORY_HEADERS`` as (canonical name, name) pairs."""

_UNKNOWN: Final = object()
"""What ``_scan`` gives for an envelope field that the Python code must read."""
_Scanned = tuple[str, dict[str, list[str]], bool, int, int, object, object, object, object]
_scan: Callable[[bytes, dict[str, str], object], _Scanned | None] | None = None
_parse: Callable[[bytes], SipRequest | SipResponse | None] | None = None
call_id_hint: Callable[[bytes], str | None] | None = None
"""The Call-ID ``parse_message(data)`` gives, read alone and cheaply, or None where only
parsing tells (a header section the compiled scan does not read, no Call-ID or an empty one);
None itself without the compiled parse. ``sipflow.shard`` shares messages out by it."""
_compiled = compiled.load("_scan")  # built where a C compiler was at hand at install
if _compiled is not None:
    _compiled.configure(SipRequest, SipResponse, Headers, CSeq)
    _scan, _parse, call_id_hint = _compiled.scan, _compiled.parse, _compiled.call_id
COMPILED: Final = _scan is not None
"""Whether the compiled parse (``sipflow/sip/_scan.c``) is in use: built when sipflow was
installed, if a C compiler was there, and not turned off by ``SIPFLOW_PURE_PYTHON=1``. It
builds a message without a defect entirely in C (``_parse``) and scans the header section of
the others (``_scan``); without it, parsing gives the same results, slower."""


def parse_truncated(data: bytes) -> SipRequest | SipResponse:
    """Parse a message the capture cut short (snaplen, the end of the capture inside a TCP
    message): as ``parse_message``, and where that fails, up to its last complete header line,
    so it shows as the truncated message it is. Raises ``ParseError`` when not even that parses."""
    try:
        return parse_message(data)
    except ParseError:
        head = data.split(b"\r\n\r\n", 1)[0]
        cut = head.rfind(b"\n")
        if cut <= 0:
            raise
        return parse_message(head[: cut + 1].rstrip(b"\r\n") + b"\r\n\r\n")


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one SIP message (RFC 3261 §7) from ``data``.

    ``data`` is one UDP datagram payload or one message framed out of a stream. CRLFs before
    the start line are skipped (§7.5). The body is framed by Content-Length (§18.3, §20.14);
    bytes after it (a second message in a datagram) go to ``trailing``. Without a usable
    Content-Length the body is the rest of ``data``. Lines may end in CRLF or bare LF.

    Raises ``ParseError`` (with a byte offset) only when ``data`` holds no usable message;
    every recoverable problem is recorded in the message's ``defects``.
    """
    if _parse is not None:
        message = _parse(data)
        if message is not None:
            return message
    n = len(data)
    scanned = _scan(data, _SCAN_NAMES, _UNKNOWN) if _scan is not None else None
    envelope: tuple[object, object, object, object] = (_UNKNOWN, _UNKNOWN, _UNKNOWN, _UNKNOWN)
    if scanned is not None:
        first, found, repeated, head_end, first_end, *rest = scanned
        envelope = rest[0], rest[1], rest[2], rest[3]
        defects: list[Defect] = []
        start, body_start, plain = 0, head_end + 4, True
        parsed_start = _memo_start_line(first, defects)
    else:
        head = _read_head(data)
        start, parsed_start, found, repeated, head_end, body_start, first_end, plain, defects = head

    if repeated:
        for key, title in _SINGLE_VALUED:
            values = found.get(key)
            if values is not None and len(values) > 1:
                # RFC 4475 §3.3.8.
                defects.append(d.HeaderRepeated(f"Several {title} header fields."))

    # Call-ID (§20.8)
    call_id: str | None = None
    values = found.get("call-id")
    if values is not None:
        call_id = values[0] or None
        if call_id is None:
            defects.append(d.CallIdEmpty("Call-ID is empty."))

    # CSeq (§20.16)
    values = found.get("cseq")
    cseq = _memo_cseq(values[0], defects) if values is not None else None

    # The envelope: From and To tags (§19.3), the top Via (§20.42); the full From, To and Via
    # list are parsed on first use (``parse_lazy_fields``), with their defects.
    # ``_scan`` reads the usual shapes of the three; where it did not, the Python code does.
    if envelope[0] is _UNKNOWN:
        values = found.get("from")
        from_tag = _envelope_tag(_FROM_MEMO, values[0], "From") if values is not None else None
    else:
        from_tag = cast("str | None", envelope[0])
    if envelope[1] is _UNKNOWN:
        values = found.get("to")
        to_tag = _envelope_tag(_TO_MEMO, values[0], "To") if values is not None else None
    else:
        to_tag = cast("str | None", envelope[1])
    if envelope[2] is _UNKNOWN:
        values = found.get("via")
        branch, sent_by = (_via_envelope(values) if values is not None else None) or (None, None)
    else:
        branch, sent_by = cast("str | None", envelope[2]), cast("str | None", envelope[3])

    # Content-Length (§20.14)
    content_length: int | None = None
    length_for_framing: int | None = None
    values = found.get("content-length")
    if values is not None:
        content_length = _content_length(values[0], defects)
        length_for_framing = content_length
        if len(values) > 1:
            # RFC 4475 §3.3.9: framing is undefined; take the rest of the datagram.
            defects.append(d.ContentLengthRepeated("Several Content-Length header fields."))
            if any(v != values[0] for v in values[1:]):
                length_for_framing = None

    _check_scalars(found, defects)

    is_request = isinstance(parsed_start[1], str)
    if is_request:
        method = parsed_start[0]
        if "max-forwards" not in found:
            defects.append(d.MaxForwardsMissing("No Max-Forwards header field (RFC 3261 §8.1.1.6)."))
        if cseq is not None and cseq.method != method:
            # RFC 3261 §8.1.1.5, RFC 4475 §3.1.2.17.
            defects.append(
                d.CSeqMethodMismatch(f"CSeq method {cseq.method} differs from the request method {method}.")
            )
    if call_id is None or cseq is None or "from" not in found or "to" not in found or "via" not in found:
        for key, title in _MANDATORY:
            if key not in found:
                # RFC 3261 §8.1.1, RFC 4475 §3.3.1.
                defects.append(d.HeaderMissing(f"No {title} header field."))

    # Body framing (§18.3, §20.14)
    end = n
    if length_for_framing is not None:
        available = n - body_start
        if length_for_framing > available:
            # RFC 4475 §3.1.2.2: keep what is there.
            defects.append(
                d.ContentLengthMismatch(
                    f"Content-Length {length_for_framing} exceeds the {available} bytes after the headers."
                )
            )
        else:
            end = body_start + length_for_framing
    if end == n:
        raw = data if start == 0 else data[start:]
        trailing = b""
    else:
        raw = data[start:end]
        trailing = data[end:]
    # The header lines start after the start line's LF; Headers splits them again on request.
    headers = Headers(raw, (head_end if first_end < 0 else first_end + 1) - start, head_end - start, plain)

    if is_request:
        return SipRequest(
            headers=headers,
            raw=raw,
            body_start=body_start - start,
            call_id=call_id,
            cseq=cseq,
            from_tag=from_tag,
            to_tag=to_tag,
            branch=branch,
            sent_by=sent_by,
            content_length=content_length,
            ingest_defects=tuple(defects),
            trailing=trailing,
            method=parsed_start[0],
            uri=parsed_start[1],  # type: ignore[arg-type]
            version=parsed_start[2],
        )
    return SipResponse(
        headers=headers,
        raw=raw,
        body_start=body_start - start,
        call_id=call_id,
        cseq=cseq,
        from_tag=from_tag,
        to_tag=to_tag,
        branch=branch,
        sent_by=sent_by,
        content_length=content_length,
        ingest_defects=tuple(defects),
        trailing=trailing,
        status=parsed_start[1],  # type: ignore[arg-type]
        reason=parsed_start[2],
        version=parsed_start[0],
    )
