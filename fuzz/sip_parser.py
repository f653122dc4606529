"""Coverage-guided fuzz target: the SIP parser (``sipflow.sip``).

    python fuzz/sip_parser.py fuzz/corpus/sip_parser -max_total_time=600

``check(data)`` is the harness: ``parse_message`` and, when it parses, every lazy helper the
rest of sipflow calls on a message (name-addrs of Contact/Route/Record-Route, the Request-URI,
Via values, the SDP body). Only ``ParseError`` may escape the raising helpers; ``find_sdp``
and the list helpers never raise. Anything else is a bug: atheris stops and writes the input
as ``crash-<sha1>``; keep it under ``tests/fuzz_regressions/sip_parser/``.

atheris is needed only to fuzz: ``tests/test_fuzz_regressions.py`` imports ``check`` from
here and runs it on the seed corpus and the regression inputs without atheris.
"""

from __future__ import annotations

import contextlib
import os
import sys

# Runnable from a checkout without installing sipflow.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if __name__ == "__main__":
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

    _instrumented = atheris.instrument_imports(include=["sipflow"])
else:
    _instrumented = contextlib.nullcontext()

with _instrumented:
    from sipflow.errors import ParseError
    from sipflow.sip import (
        find_sdp,
        parse_message,
        parse_name_addr,
        parse_name_addrs,
        parse_sdp,
        parse_uri,
        parse_via_values,
        split_header_values,
    )
    from sipflow.sip.message import SipRequest

_NAME_ADDR_LISTS = ("contact", "route", "record-route", "path", "service-route")


def check(data: bytes) -> None:
    """Parse ``data`` as one SIP message and use everything hanging off the result."""
    try:
        message = parse_message(data)
    except ParseError:
        return
    # RFC 3261 §7.5: leading CRLFs are skipped; nothing else is lost or invented.
    assert message.raw + message.trailing == data.lstrip(b"\r\n"), "raw + trailing != input"
    for name, value in message.headers:
        assert isinstance(name, str) and isinstance(value, str)
        split_header_values(value)
    for key in _NAME_ADDR_LISTS:
        for value in message.headers.get_all(key):
            for addr in parse_name_addrs(value):
                addr.tag  # noqa: B018  # properties must not raise either
                str(addr.uri)
    for key in ("from", "to"):
        single = message.headers.get(key)
        if single is not None:
            with contextlib.suppress(ParseError):
                parse_name_addr(single)
    for value in message.headers.get_all("via"):
        parse_via_values(value)
    for via in message.vias:
        via.sent_by  # noqa: B018
        via.branch  # noqa: B018
    if isinstance(message, SipRequest):
        with contextlib.suppress(ParseError):
            str(parse_uri(message.uri))
    message.first_line  # noqa: B018
    message.content_type  # noqa: B018
    find_sdp(message)
    if message.body:
        with contextlib.suppress(ParseError):
            parse_sdp(message.body)


def main(argv: list[str]) -> None:
    atheris.Setup(argv, lambda data: check(bytes(data)))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
