"""Parse the start line of a SIP message (RFC 3261 §7.1 Request-Line, §7.2 Status-Line), sans-I/O.

A line that matches the grammar takes the strict path; otherwise the lenient one accepts what
RFC 4475 §3.1.2 shows in the wild (extra blanks, whitespace inside the Request-URI, a status
code that is not three digits) and records each as a defect. The Request-URI gets the checks
RFC 3261 §8.1.1.1 and §19.1.5 call for. A line that is neither raises ``ParseError``.
"""

from __future__ import annotations

from sipflow.errors import ParseError
from sipflow.sip import defects as d
from sipflow.sip import grammar as g
from sipflow.sip.defects import Defect
from sipflow.sip.values import _to_int


def _start_line(line: str, defects: list[Defect]) -> tuple[str, str, str] | tuple[str, int, str]:
    """Parse the start line: ``(method, uri, version)`` or ``(version, status, reason)``.

    RFC 3261 §7.1 Request-Line, §7.2 Status-Line. Raises ``ParseError`` when the line is
    neither.
    """
    m = g.STATUS_LINE_RE.fullmatch(line)
    if m is not None:
        version = m[1]
        status = int(m[2])
        if not 100 <= status <= 699:
            defects.append(d.StatusOutOfRange(f"Status code {status} is outside 100-699."))
        if version.upper() != "SIP/2.0":
            defects.append(d.BadVersion(f"Unknown SIP version {version}."))
        return version, status, m[3]
    m = g.REQUEST_LINE_RE.fullmatch(line)
    if m is not None:
        method, uri, version = m[1], m[2], m[3]
        if version.upper() != "SIP/2.0":
            defects.append(d.BadVersion(f"Unknown SIP version {version}."))
        _check_request_uri(uri, defects)
        return method, uri, version
    return _start_line_lenient(line, defects)


def _start_line_lenient(line: str, defects: list[Defect]) -> tuple[str, str, str] | tuple[str, int, str]:
    if g.SIP_VERSION_RE.match(line):
        m = g.STATUS_LINE_LOOSE_RE.fullmatch(line)
        if m is None:
            raise ParseError(f"malformed Status-Line: {line[:60]!r}", offset=0)
        version, code, reason = m[1], m[2], m[3]
        if reason is None:
            defects.append(d.StatusLineNoSpace("Status-Line has no SP before the reason phrase."))
            reason = ""
        if len(code) != 3:
            # RFC 3261 §7.2, RFC 4475 §3.1.2.19.
            defects.append(d.StatusNotThreeDigits(f"Status code {code[:20]} is not three digits."))
        status = _to_int(code)
        if status is None:
            raise ParseError("overlong status code", offset=len(version) + 1)
        if version.upper() != "SIP/2.0":
            defects.append(d.BadVersion(f"Unknown SIP version {version}."))
        if line[len(version) + 1 : len(version) + 2] in (" ", "\t"):
            defects.append(d.StatusLineSpaces("Status-Line elements are separated by more than one SP."))
        return version, status, reason.strip(" \t")
    parts = line.split()
    if (
        len(parts) < 3
        or g.TOKEN_RE.fullmatch(parts[0]) is None
        or g.SIP_VERSION_RE.fullmatch(parts[-1]) is None
    ):
        raise ParseError(f"no SIP start line: {line[:60]!r}", offset=0)
    method, version = parts[0], parts[-1]
    if line != line.rstrip():
        # RFC 4475 §3.1.2.10.
        defects.append(d.RequestLineTrailingSpace("Request-Line ends in whitespace."))
    if line.lstrip() != line:
        defects.append(d.RequestLineLeadingSpace("Request-Line starts with whitespace."))
    if len(parts) > 3:
        # RFC 4475 §3.1.2.8: LWS is not allowed inside the Request-URI.
        defects.append(d.RequestUriWhitespace("Request-URI contains whitespace."))
        first = line.find(parts[1])
        last = line.rfind(parts[-1])
        uri = line[first:last].strip()
    else:
        uri = parts[1]
        if f"{method} {uri} {version}" != line.strip():
            # RFC 4475 §3.1.2.9: exactly one SP between elements (§7.1).
            defects.append(d.RequestLineSpaces("Request-Line elements are separated by more than one SP."))
    if version.upper() != "SIP/2.0":
        defects.append(d.BadVersion(f"Unknown SIP version {version}."))
    _check_request_uri(uri, defects)
    return method, uri, version


def _check_request_uri(uri: str, defects: list[Defect]) -> None:
    """Request-URI checks that RFC 3261 §8.1.1.1, §19.1.5 and RFC 4475 §3.1.2 call for."""
    if uri.startswith("<") and uri.endswith(">"):
        # RFC 4475 §3.1.2.7.
        defects.append(d.RequestUriBrackets("Request-URI is enclosed in <>."))
        uri = uri[1:-1]
    m = g.SCHEME_RE.match(uri)
    if m is None:
        defects.append(d.RequestUriNoScheme("Request-URI has no scheme."))
        return
    scheme = m[1].lower()
    if scheme in ("sip", "sips") and "?" in uri[uri.rfind("@") + 1 :]:
        # RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        defects.append(d.RequestUriHeaders("Request-URI carries escaped headers."))
