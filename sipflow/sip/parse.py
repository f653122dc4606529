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
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from collections.abc import Callable
from typing import Final, TypeVar, cast

from sipflow.errors import ParseError
from sipflow.sip import defects as d
from sipflow.sip import grammar as g
from sipflow.sip.defects import Defect
from sipflow.sip.message import (
    COMPACT_FORMS,
    CSeq,
    Headers,
    NameAddr,
    SipRequest,
    SipResponse,
    Uri,
    Via,
    _Names,
    _Vias,
    canonical_name,
    fold_search,
    unfold,
)

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

Params = tuple[tuple[str, str | None], ...]

_MAX_INT_DIGITS: Final = 1000
"""Longest digit string turned into an ``int`` (Python refuses beyond 4300 digits)."""
_MAX_CSEQ: Final = 2**31 - 1
"""RFC 3261 §8.1.1.5: the CSeq number MUST be less than 2**31."""
_MAX_DELTA_SECONDS: Final = 2**32 - 1
"""RFC 3261 §20.19/§20.33 delta-seconds, bounded as 32-bit values (RFC 4475 §3.1.2.4)."""
_MAX_MAX_FORWARDS: Final = 255
"""RFC 4475 §3.1.2.4: Max-Forwards values above 255 are overlarge."""

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

_INTERESTING: Final = frozenset(
    (
        "call-id",
        "cseq",
        "from",
        "to",
        "via",
        "content-length",
        "max-forwards",
        "content-type",
        "expires",
        "retry-after",
        "warning",
        "date",
        "contact",
    )
)
"""Canonical names the header loop collects for eager parsing or cheap checks."""
_SCAN_NAMES: Final = {
    **{name: name for name in _INTERESTING},
    **{short: long for short, long in COMPACT_FORMS.items() if long in _INTERESTING},
}
"""Lower-case header name (compact forms too) → canonical name, for ``_scan``."""

_UNKNOWN: Final = object()
"""What ``_scan`` gives for an envelope field that the Python code must read."""
_Scanned = tuple[str, dict[str, list[str]], bool, int, int, object, object, object, object]
_scan: Callable[[bytes, dict[str, str], object], _Scanned | None] | None = None
if not os.environ.get("SIPFLOW_PURE_PYTHON"):
    with contextlib.suppress(ImportError):  # built where a C compiler was at hand at install
        _scan = importlib.import_module("sipflow.sip._scan").scan
COMPILED: Final = _scan is not None
"""Whether the compiled header scan (``sipflow/sip/_scan.c``) is in use: built when sipflow was
installed, if a C compiler was there, and not turned off by ``SIPFLOW_PURE_PYTHON=1``. Without
it, parsing gives the same results, slower."""

_DISPLAY_TOKENS_RE: Final = re.compile(rf"{g.TOKEN}(?:[ \t]+{g.TOKEN})*")
"""``display-name = *(token LWS) / quoted-string``: the unquoted form (§25.1)."""
_QUOTED_AT_RE: Final = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
"""A quoted string at a position; group 1 is its escaped content."""
_ELEMENT_RE: Final = re.compile(r'(?:"(?:[^"\\]|\\.)*"?|<[^>]*>?|[^,"<]+)*', re.DOTALL)
"""One comma-separated header value: commas inside quotes or ``<>`` do not split (§7.3.1)."""
_SIMPLE_PARAMS_RE: Final = re.compile(rf"(?:;{g.TOKEN}(?:=[^\s;,\"]*)?)+")
"""Parameters without blanks or quoted strings: split on ``;`` and ``=`` directly."""
_VIA_FAST_RE: Final = re.compile(
    r"SIP/2\.0/([A-Za-z]+) ([A-Za-z0-9_\-.]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?"
    rf"((?:;{g.TOKEN}(?:=[^\s;,\"]*)?)*)"
)
"""The usual via-parm: ``SIP/2.0/UDP host:port;params`` without blanks or quotes."""
_SIP_URI_RE: Final = re.compile(
    r"(?:([^@]*)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_\-.]+)(?::([0-9]{1,5}))?(?:;([^?]*))?(?:\?.*)?",
    re.DOTALL,
)
"""The usual shapes of a SIP URI after ``sip:`` (groups: userinfo, host, port, params)."""
_NAME_ADDR_RE: Final = re.compile(
    rf"(?:\"((?:[^\"\\\r\n]|\\.)*)\"[ \t]*|({g.TOKEN}(?:[ \t]+{g.TOKEN})*)?[ \t]*)"
    r"<((?:sips?|tel):[^<>\s]+)>(.*)",
    re.DOTALL | re.IGNORECASE,
)
"""A well-formed name-addr with a sip/sips/tel URI (groups: quoted display name, token display
name, URI, the rest: header parameters). Anything else takes the careful path."""
_CONTACT_EXPIRES_RE: Final = re.compile(r";[ \t]*expires[ \t]*=[ \t]*([0-9]+)", re.IGNORECASE)
_WARN_CODE_RE: Final = re.compile(r"[ \t]*([0-9]+)[ \t]")
_WSP_RE: Final = re.compile(r"[ \t]")


# --- Small pieces ----------------------------------------------------------------------------------


def _to_int(digits: str) -> int | None:
    """``int(digits)`` for a digit string of sane length, else None (overlarge)."""
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else None


def _unquote(inner: str) -> str:
    """Resolve the quoted-pairs of a quoted string's content (RFC 3261 §25.1)."""
    return g.QUOTED_PAIR_RE.sub(r"\1", inner) if "\\" in inner else inner


def _split_values(value: str) -> list[str]:
    """Split a header value on commas outside quotes and ``<>``; empty elements are kept."""
    if '"' not in value and "<" not in value:
        return [part.strip() for part in value.split(",")]
    out: list[str] = []
    pos = 0
    n = len(value)
    match = _ELEMENT_RE.match
    while True:
        m = match(value, pos)
        assert m is not None  # the pattern matches the empty string
        out.append(m.group().strip())
        pos = m.end()
        if pos >= n:
            return out
        pos += 1  # the comma


def _generic_params(text: str, sink: list[Defect] | None, what: str) -> Params:
    """``*( SEMI generic-param )`` (RFC 3261 §25.1): names lower-cased, values as written.

    Quoted values keep their quotes. A stray ``;`` (an empty parameter) or text that is not a
    parameter is recorded in ``sink``.
    """
    if not text or text.isspace():
        return ()
    if _SIMPLE_PARAMS_RE.fullmatch(text) is not None:
        return _simple_params(text)
    out: list[tuple[str, str | None]] = []
    pos = 0
    n = len(text)
    match = g.GENERIC_PARAM_RE.match
    while pos < n:
        m = match(text, pos)
        if m is not None:
            out.append((m[1].lower(), m[2]))
            pos = m.end()
            continue
        rest = text[pos:].lstrip(" \t")
        if not rest:
            break
        if rest[0] == ";":
            if sink is not None:
                sink.append(d.EmptyParameter(f"{what} has an empty parameter."))
            pos = n - len(rest) + 1
            continue
        if sink is not None:
            sink.append(d.BadParameters(f"{what} has malformed parameters: {rest[:40]!r}."))
        break
    return tuple(out)


_SHARED: dict[object, object] = {}
_SHARED_MAX: Final = 4096
_T = TypeVar("_T", str, int)


def _shared(value: _T) -> _T:
    """One object for an often repeated small value (a host, a transport, a parameter name,
    a port): a capture's messages keep references to it instead of copies of their own."""
    known = _SHARED.get(value)
    if known is None:
        if len(_SHARED) < _SHARED_MAX:
            _SHARED[value] = value
        return value
    return known  # type: ignore[return-value]


def _simple_params(text: str) -> Params:
    """Split parameters already matched by ``_SIMPLE_PARAMS_RE`` (no blanks, no quotes)."""
    out: list[tuple[str, str | None]] = []
    for part in text[1:].split(";"):
        name, eq, value = part.partition("=")
        out.append((_shared(name.lower()), value if eq else None))
    return tuple(out)


def _uri_params(text: str) -> Params:
    """``*( ";" uri-parameter )`` (RFC 3261 §19.1.1): names lower-cased, values as written."""
    out: list[tuple[str, str | None]] = []
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        name = name.strip()
        if name:
            out.append((name.lower(), value.strip() if eq else None))
    return tuple(out)


# --- URIs (RFC 3261 §19.1) -------------------------------------------------------------------------


def _parse_uri(text: str, sink: list[Defect] | None, what: str) -> Uri | None:
    m = g.SCHEME_RE.match(text)
    if m is None:
        if sink is not None:
            sink.append(d.UriNoScheme(f"{what} has no URI scheme: {text[:40]!r}."))
        return None
    scheme = m[1].lower()
    rest = text[m.end() :]
    if scheme in ("sip", "sips"):
        return _parse_sip_uri(text, scheme, rest, sink, what)
    if scheme == "tel":
        # RFC 3966 §3: telephone-subscriber *par; the number goes in ``user``.
        number, _, params = rest.partition(";")
        return Uri(raw=text, scheme=scheme, user=number, params=_uri_params(params))
    return Uri(raw=text, scheme=scheme)


def _split_hostport(hostport: str, sink: list[Defect] | None, what: str) -> tuple[str, str]:
    """``host [ ":" port ]`` → (host without IPv6 brackets, port text) (RFC 3261 §19.1.1).

    An IPv6 address without brackets (against RFC 5118 §4.1, but seen in the wild) is
    accepted and reported; its last group is taken as a port only when there are nine.
    """
    if hostport.startswith("["):  # IPv6reference, RFC 3261 §25.1
        close = hostport.find("]")
        if close < 0:
            if sink is not None:
                sink.append(d.Ipv6Unclosed(f"{what} has an unclosed IPv6 reference."))
            return hostport[1:], ""
        after = hostport[close + 1 :].strip(" \t")
        if after and after[0] != ":" and sink is not None:
            sink.append(d.Ipv6TextAfter(f"{what} has text after its IPv6 reference."))
        return hostport[1:close], after[1:].strip(" \t")
    colons = hostport.count(":")
    if colons >= 2:
        if sink is not None:
            sink.append(d.Ipv6NoBrackets(f"{what} has an IPv6 address without brackets."))
        if colons == 8 and "::" not in hostport:
            host, _, port = hostport.rpartition(":")
            return host, port
        return hostport, ""
    host, _, port = hostport.partition(":")
    return host.rstrip(" \t"), port.lstrip(" \t")


def _parse_sip_uri(text: str, scheme: str, rest: str, sink: list[Defect] | None, what: str) -> Uri:
    """``sip:[userinfo@]hostport uri-parameters [headers]`` (RFC 3261 §19.1.1).

    The last ``@`` ends the userinfo: the user part may hold ``;``, ``?`` and ``/`` (RFC 4475
    §3.1.1.2, §3.1.1.9) but parameters and headers may not hold a bare ``@``.
    """
    m = _SIP_URI_RE.fullmatch(rest)
    if m is not None:
        # Fast path: a plain host and a port, if any, in range.
        userinfo, host, port_digits, pstr = m.groups()
        fast_port = int(port_digits) if port_digits is not None else None
        if fast_port is None or fast_port <= 65535:
            return Uri(
                raw=text,
                scheme=scheme,
                user=userinfo.partition(":")[0] if userinfo is not None else None,
                host=host[1:-1] if host[0] == "[" else host,
                port=fast_port,
                params=_uri_params(pstr) if pstr else (),
            )
    at = rest.rfind("@")
    user: str | None = None
    if at >= 0:
        user = rest[:at].partition(":")[0]
        rest = rest[at + 1 :]
    hostport, _, pstr = rest.partition("?")[0].partition(";")
    host, port_text = _split_hostport(hostport, sink, what)
    port: int | None = None
    if port_text:
        if port_text.isdigit() and port_text.isascii() and len(port_text) <= 5 and int(port_text) <= 65535:
            port = int(port_text)
        elif sink is not None:
            sink.append(d.UriBadPort(f"{what} has a bad port {port_text[:20]!r}."))
    if not host and sink is not None:
        sink.append(d.UriNoHost(f"{what} has no host."))
    return Uri(
        raw=text,
        scheme=scheme,
        user=user,
        host=host or None,
        port=port,
        params=_uri_params(pstr) if pstr else (),
    )


def parse_uri(value: str) -> Uri:
    """Parse a URI: ``sip``/``sips`` (RFC 3261 §19.1), ``tel`` (RFC 3966) or any other scheme.

    SIP URIs are split into user, host (IPv6 without brackets), port and parameters; ``tel``
    URIs give the number as ``user`` and their parameters; other schemes keep ``raw`` and
    ``scheme`` only. Escapes are left as written. Raises ``ParseError`` when there is no scheme.
    """
    text = value.strip()
    uri = _parse_uri(text, None, "URI")
    if uri is None:
        raise ParseError(f"not a URI: {text[:60]!r}")
    return uri


# --- name-addr / addr-spec (RFC 3261 §20.10, §20.20, §20.39, §25.1) ---------------------------------


def _parse_name_addr(value: str, sink: list[Defect] | None, what: str) -> NameAddr | None:
    """``( name-addr / addr-spec ) *( SEMI param )``; None when there is no URI to be found."""
    s = value.strip()
    m = _NAME_ADDR_RE.fullmatch(s)
    if m is not None:
        # Fast path: quoted or token display name (or none), no blanks inside <>.
        quoted, tokens, spec, rest = m.groups()
        if spec[3] == ":" and spec[:3] in ("sip", "SIP"):
            uri: Uri | None = _parse_sip_uri(spec, "sip", spec[4:], sink, what)
        else:
            uri = _parse_uri(spec, sink, what)
        if uri is not None:
            return NameAddr(
                display_name=_unquote(quoted) if quoted is not None else tokens,
                uri=uri,
                params=_generic_params(rest, sink, what) if rest else (),
            )
    if not s:
        if sink is not None:
            sink.append(d.NameAddrEmpty(f"{what} is empty."))
        return None
    display: str | None = None
    if s[0] == '"':
        m = _QUOTED_AT_RE.match(s)
        if m is None:
            # Unterminated quoted string (RFC 4475 §3.1.2.6): recover up to a "<" if any.
            if sink is not None:
                sink.append(d.UnterminatedQuote(f"{what} has an unterminated quoted string."))
            lt = s.find("<")
            if lt < 0:
                return None
            display = s[1:lt].strip()
        else:
            display = _unquote(m[1])
            lt = s.find("<", m.end())
            if lt < 0 or s[m.end() : lt].strip():
                if sink is not None:
                    sink.append(d.QuotedNameNoUri(f"{what} has a quoted display name not followed by <URI>."))
                if lt < 0:
                    return None
    else:
        lt = s.find("<")
        if lt < 0:
            return _parse_addr_spec(s, sink, what)
        if lt > 0:
            display = s[:lt].strip()
            if display and _DISPLAY_TOKENS_RE.fullmatch(display) is None and sink is not None:
                # RFC 4475 §3.1.2.15: an unquoted display name must be a token sequence.
                sink.append(
                    d.DisplayNameNeedsQuotes(f"{what} display name has characters that need quoting.")
                )
            display = display or None
    gt = s.find(">", lt)
    if gt < 0:
        if sink is not None:
            sink.append(d.UnclosedAngle(f"{what} has an unclosed <."))
        inner = s[lt + 1 :]
        gt = len(s)
    else:
        inner = s[lt + 1 : gt]
    spec = inner.strip()
    if spec != inner and sink is not None:
        # RFC 4475 §3.1.2.14: no LWS inside the angle brackets.
        sink.append(d.WhitespaceInAngles(f"{what} has whitespace inside <> around the URI."))
    uri = _parse_uri(spec, sink, what)
    if uri is None:
        return None
    params = _generic_params(s[gt + 1 :], sink, what) if gt + 1 < len(s) else ()
    return NameAddr(display_name=display, uri=uri, params=params)


def _parse_addr_spec(s: str, sink: list[Defect] | None, what: str) -> NameAddr | None:
    """A bare addr-spec: parameters after it are header parameters (RFC 3261 §20.10)."""
    semi = s.find(";")
    if semi < 0:
        spec, ptext = s, ""
    else:
        spec, ptext = s[:semi].rstrip(), s[semi:]
    if sink is not None:
        if _WSP_RE.search(spec):
            sink.append(d.WhitespaceInAddrSpec(f"{what} has whitespace inside its URI."))
        if "?" in spec or "," in spec:
            # RFC 3261 §20: a URI with a comma, question mark or semicolon needs <>.
            sink.append(d.AddrSpecNotEnclosed(f"{what} URI with '?' or ',' is not enclosed in <>."))
    uri = _parse_uri(spec, sink, what)
    if uri is None:
        return None
    return NameAddr(display_name=None, uri=uri, params=_generic_params(ptext, sink, what))


def parse_name_addr(value: str) -> NameAddr:
    """Parse one From/To/Contact-style value: ``"Display" <uri>;params`` or ``uri;params``.

    Display names lose their quotes and escapes; parameter names are lower-cased. Without
    ``<>`` the parameters belong to the header, not the URI (RFC 3261 §20.10). Raises
    ``ParseError`` when no URI can be found.
    """
    addr = _parse_name_addr(value, None, "value")
    if addr is None:
        raise ParseError(f"not a name-addr or addr-spec: {value.strip()[:60]!r}")
    return addr


_WILDCARD: Final = NameAddr(display_name=None, uri=Uri(raw="*", scheme="*"))


def _parse_name_addrs(value: str, sink: list[Defect] | None, what: str) -> list[NameAddr]:
    if value.strip() == "*":
        return [_WILDCARD]
    out: list[NameAddr] = []
    for part in _split_values(value):
        if not part:
            if sink is not None:
                sink.append(d.EmptyListValue(f"{what} has an empty value in its list."))
            continue
        addr = _parse_name_addr(part, sink, what)
        if addr is not None:
            out.append(addr)
    return out


def parse_name_addrs(value: str) -> list[NameAddr]:
    """Parse a comma-separated Contact/Route/Record-Route value into its name-addrs.

    Commas inside quotes or ``<>`` do not split. ``*`` (Contact in a REGISTER, RFC 3261
    §10.2.2) gives one value whose ``is_wildcard`` is True. Unusable elements are skipped.
    """
    return _parse_name_addrs(value, None, "value")


def split_header_values(value: str) -> list[str]:
    """Split a header value on the commas that separate values (RFC 3261 §7.3.1).

    Commas inside quoted strings or ``<>`` do not split; values are stripped and empty ones
    dropped.
    """
    return [part for part in _split_values(value) if part]


# --- Via (RFC 3261 §20.42) -----------------------------------------------------------------------------


def _parse_via(text: str, sink: list[Defect] | None) -> Via | None:
    m = _VIA_FAST_RE.fullmatch(text)
    if m is not None:
        transport, host, port_digits, ptext = m.groups()
        fast_port = int(port_digits) if port_digits is not None else None
        if fast_port is None or fast_port <= 65535:
            return Via(
                protocol="SIP/2.0",
                transport=_shared(transport.upper()),
                host=_shared(host[1:-1] if host[0] == "[" else host),
                port=_shared(fast_port) if fast_port is not None else None,
                params=_simple_params(ptext) if ptext else (),
            )
    # RFC 3261 §20.42: via-parm = sent-protocol LWS sent-by *( SEMI via-params )
    m = g.VIA_SENT_PROTOCOL_RE.match(text)
    if m is None:
        if sink is not None:
            sink.append(d.BadVia(f"Via value is malformed: {text[:60]!r}."))
        return None
    rest = text[m.end() :]
    semi = rest.find(";")
    sent_by = (rest if semi < 0 else rest[:semi]).strip(" \t")
    host, port_text = _split_hostport(sent_by, sink, "Via sent-by")
    if sink is not None and ":" not in host and g.HOSTNAME_RE.fullmatch(host) is None:
        sink.append(d.ViaBadHost(f"Via sent-by host is malformed: {host[:40]!r}."))
    port: int | None = None
    if port_text:
        port = _to_int(port_text) if port_text.isdigit() and port_text.isascii() else None
        if port is None or port > 65535:
            if sink is not None:
                sink.append(d.ViaBadPort(f"Via sent-by port is bad: {port_text[:20]!r}."))
            port = None
    params = _generic_params(rest[semi:], sink, "Via") if semi >= 0 else ()
    name = m[1].upper()
    version = m[2]
    if sink is not None and (name != "SIP" or version != "2.0"):
        sink.append(d.ViaBadProtocol(f"Via has an unknown protocol {name}/{version}."))
    return Via(protocol=f"{name}/{version}", transport=m[3].upper(), host=host, port=port, params=params)


def _parse_vias(values: list[str], sink: list[Defect] | None) -> list[Via]:
    out: list[Via] = []
    for value in values:
        for part in _split_values(value):
            if not part:
                if sink is not None:
                    sink.append(d.EmptyListValue("Via has an empty value in its list."))
                continue
            via = _parse_via(part, sink)
            if via is not None:
                out.append(via)
    return out


def parse_via_values(value: str) -> list[Via]:
    """Parse one Via header value, possibly holding several comma-separated via-parms.

    Transport is upper-cased, the host of an IPv6 reference loses its brackets, parameter names
    are lower-cased. Malformed values are skipped.
    """
    return _parse_vias([value], None)


# --- Memos ---------------------------------------------------------------------------------------
#
# The eagerly parsed values repeat across a capture: a response copies the Via, From, To, Call-ID
# and CSeq of its request, retransmissions repeat everything, and status lines are few. Parsing
# is a pure function of the value text and the results are frozen, so they are shared through
# small bounded memos (cleared when full). Defects found while parsing a value are memoised too.

_MEMO_MAX: Final = 2048

_START_MEMO: dict[str, tuple[tuple[str, str, str] | tuple[str, int, str], tuple[Defect, ...]]] = {}
_FROM_MEMO: dict[str, tuple[NameAddr | None, tuple[Defect, ...]]] = {}
_TO_MEMO: dict[str, tuple[NameAddr | None, tuple[Defect, ...]]] = {}
_VIA_MEMO: dict[str, tuple[tuple[Via, ...], tuple[Defect, ...]]] = {}
_CSEQ_MEMO: dict[str, tuple[CSeq | None, tuple[Defect, ...]]] = {}


def _memo_name_addr(
    memo: dict[str, tuple[NameAddr | None, tuple[Defect, ...]]], value: str, what: str, defects: list[Defect]
) -> NameAddr | None:
    hit = memo.get(value)
    if hit is None:
        sink: list[Defect] = []
        hit = (_parse_name_addr(value, sink, what), tuple(sink))
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[value] = hit
    if hit[1]:
        defects.extend(hit[1])
    return hit[0]


def _memo_vias(values: list[str], defects: list[Defect]) -> tuple[Via, ...]:
    memo = _VIA_MEMO
    out: tuple[Via, ...] = ()
    for value in values:
        hit = memo.get(value)
        if hit is None:
            sink: list[Defect] = []
            hit = (tuple(_parse_vias([value], sink)), tuple(sink))
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            memo[value] = hit
        if hit[1]:
            defects.extend(hit[1])
        out = hit[0] if not out else out + hit[0]
    return out


def _envelope_tag(
    memo: dict[str, tuple[NameAddr | None, tuple[Defect, ...]]], value: str, what: str
) -> str | None:
    """The ``tag`` of a From or To value without parsing its URI, where its shape is plain
    (an optional quoted or token display name, ``<URI>`` or a bare URI, then parameters
    without blanks or quotes); else from the full parse, as ``NameAddr.tag`` gives it."""
    s = value.strip(" \t")
    pos = 0
    if s[:1] == '"':
        m = _QUOTED_AT_RE.match(s)
        pos = m.end() if m is not None else -1
    if pos >= 0 and '"' not in s[pos:]:
        lt = s.find("<", pos)
        if lt >= 0:
            gt = s.find(">", lt)
            tail = s[gt + 1 :] if gt >= 0 else None
        else:
            semi = s.find(";", pos)
            tail = s[semi:] if semi >= 0 else ""
        if tail == "":
            return None
        if tail is not None and _SIMPLE_PARAMS_RE.fullmatch(tail) is not None:
            for part in tail[1:].split(";"):
                name, eq, tag = part.partition("=")
                if name.lower() == "tag":
                    return tag if eq else ""
            return None
    addr = _memo_name_addr(memo, value, what, [])
    return addr.tag if addr is not None else None


def _via_envelope(values: list[str]) -> tuple[str | None, str] | None:
    """(branch, sent-by) of the first Via value that parses, as ``Via.branch`` and
    ``Via.sent_by`` give them; the usual shape is read without building the Via."""
    for value in values:
        for part in _split_values(value) if "," in value else (value.strip(),):
            if not part:
                continue
            m = _VIA_FAST_RE.fullmatch(part)
            if m is not None and (m[3] is None or int(m[3]) <= 65535):
                host = m[2].lower()
                sent_by = host if m[3] is None else f"{host}:{int(m[3])}"
                branch = None
                ptext = m[4]
                if ptext:
                    for param in ptext[1:].split(";"):
                        name, eq, text = param.partition("=")
                        if name.lower() == "branch":
                            branch = text if eq else ""
                            break
                return branch, sent_by
            via = _parse_via(part, None)
            if via is not None:
                return via.branch, via.sent_by
    return None


def parse_lazy_names(headers: Headers) -> _Names:
    """From and To of a message, parsed in full, with the defects they show (``from_`` and
    ``to`` of a message call this on first use)."""
    defects: list[Defect] = []
    value = headers.get("from")
    from_ = _memo_name_addr(_FROM_MEMO, value, "From", defects) if value is not None else None
    value = headers.get("to")
    to = _memo_name_addr(_TO_MEMO, value, "To", defects) if value is not None else None
    return _Names(from_=from_, to=to, defects=tuple(defects))


def parse_lazy_vias(headers: Headers) -> _Vias:
    """Every Via of a message, parsed in full, with the defects they show (``vias`` of a
    message calls this on first use)."""
    defects: list[Defect] = []
    values = headers.get_all("via")
    vias = _memo_vias(values, defects) if values else ()
    return _Vias(vias=vias, defects=tuple(defects))


def _memo_cseq(value: str, defects: list[Defect]) -> CSeq | None:
    hit = _CSEQ_MEMO.get(value)
    if hit is None:
        sink: list[Defect] = []
        hit = (_parse_cseq(value, sink), tuple(sink))
        if len(_CSEQ_MEMO) >= _MEMO_MAX:
            _CSEQ_MEMO.clear()
        _CSEQ_MEMO[value] = hit
    if hit[1]:
        defects.extend(hit[1])
    return hit[0]


def _memo_start_line(line: str, defects: list[Defect]) -> tuple[str, str, str] | tuple[str, int, str]:
    hit = _START_MEMO.get(line)
    if hit is None:
        sink: list[Defect] = []
        hit = (_start_line(line, sink), tuple(sink))  # ParseError propagates, nothing stored
        if len(_START_MEMO) >= _MEMO_MAX:
            _START_MEMO.clear()
        _START_MEMO[line] = hit
    if hit[1]:
        defects.extend(hit[1])
    return hit[0]


# --- The message -----------------------------------------------------------------------------------


def _header_section_end(data: bytes, start: int) -> tuple[int, int]:
    """(end of the last header line, start of the body) for the first empty line.

    Accepts CRLF CRLF, and leniently LF LF or a mix (RFC 3261 §7 wants CRLF). Returns
    ``(-1, -1)`` when there is no empty line.
    """
    i = data.find(b"\n\r\n", start)
    j = data.find(b"\n\n", start, i + 1 if i >= 0 else len(data))
    if j >= 0:
        return j, j + 2
    if i >= 0:
        return i, i + 3
    return -1, -1


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


_EAGER: dict[str, str] = {}
"""Header name as written → its canonical name if the parser collects it, else ``""``.

Only names that are valid tokens are remembered, so a bad name is reported every time."""
_EAGER_MAX: Final = 4096


def _learn_name(name: str, defects: list[Defect]) -> str:
    """The ``_EAGER`` entry for a header name not seen before (validating it, §7.3.1).

    Only valid tokens are remembered, so a bad name is reported every time; so are names with
    blanks before the colon, which ``parse_message`` must strip each time.
    """
    stripped = name.rstrip(" \t")
    key = canonical_name(stripped)
    key = key if key in _INTERESTING else ""
    if g.TOKEN_RE.fullmatch(stripped) is None:
        defects.append(d.HeaderNameNotToken(f"Header name {stripped[:40]!r} is not a token."))
    elif stripped is name and len(_EAGER) < _EAGER_MAX:
        _EAGER[name] = key
    return key


_StartLine = tuple[str, str, str] | tuple[str, int, str]
_Head = tuple[int, _StartLine, dict[str, list[str]], bool, int, int, int, bool, list[Defect]]
"""What reading the head of a message gives: (start, parsed start line, collected header values,
whether one of them repeats, end of the header section, start of the body, end of the start
line or -1, whether the header lines are plain, defects so far)."""


def _read_head(data: bytes) -> _Head:
    """Read the start line and collect the values of the headers parsed eagerly (``_INTERESTING``).

    ``sipflow.sip._scan`` does this in C for a plain message (the common case); this is the
    Python code for every message, and the only code for the others."""
    n = len(data)
    start = 0
    if data[:1] in (b"\r", b"\n"):
        start = n - len(data.lstrip(b"\r\n"))
        if start >= n:
            raise ParseError("no data, only line breaks", offset=start)
    elif not n:
        raise ParseError("no data", offset=0)
    defects: list[Defect] = []
    # The header section ends at the first empty line (§7): CRLF CRLF normally.
    head_end = data.find(b"\r\n\r\n", start)
    if head_end >= 0:
        body_start = head_end + 4
        text = data[start:head_end].decode("utf-8", "replace")
        lines = text.split("\r\n")
        if text.count("\n") != len(lines) - 1:
            head_end = -1  # a bare LF: an earlier LF LF may end the section
    if head_end < 0:
        head_end, body_start = _header_section_end(data, start)
        if head_end < 0:
            if data[-1:] != b"\n":
                raise ParseError("no end of the header section", offset=n)
            defects.append(d.NoBlankLine("No empty line ends the header section."))
            body_start = n
            head_end = n - 1  # the final LF; a CR before it goes below
        if data[head_end - 1 : head_end] == b"\r":
            head_end -= 1
        text = data[start:head_end].decode("utf-8", "replace")
        if text.count("\n") != text.count("\r\n"):
            defects.append(d.BareLineFeed("Lines end in bare LF instead of CRLF."))
            text = text.replace("\r\n", "\n")
            lines = text.split("\n")
        else:
            lines = text.split("\r\n")
    first = lines[0]
    del lines[0]
    folded = bool(lines) and fold_search(text) is not None
    if folded:
        lines = unfold(lines, defects)

    # One pass over the header lines collects the values of the headers parsed eagerly; the
    # others stay in the raw bytes (``Headers`` splits them on request).
    found: dict[str, list[str]] = {}
    eager = _EAGER.get
    repeated = colonless = odd_names = False
    name_defects: list[Defect] = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            colonless = True
            continue
        key = eager(name)
        if key is None:
            key = _learn_name(name, name_defects)
            odd_names = odd_names or not name.isascii()
        if key:
            bucket = found.get(key)
            if bucket is None:
                found[key] = [value.strip(" \t")]
            else:
                bucket.append(value.strip(" \t"))
                repeated = True
    if colonless:
        defects.extend(
            d.HeaderLineNoColon(f"Header line has no colon: {line[:40]!r}.")
            for line in lines
            if ":" not in line
        )
    parsed_start = _memo_start_line(first, defects)
    defects.extend(name_defects)
    first_end = data.find(b"\n", start, head_end)
    return (start, parsed_start, found, repeated, head_end, body_start, first_end, not (folded or odd_names),
            defects)  # fmt: skip


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


def _parse_cseq(value: str, defects: list[Defect]) -> CSeq | None:
    """``CSeq = 1*DIGIT LWS Method`` (RFC 3261 §20.16; the number below 2**31, §8.1.1.5)."""
    m = g.CSEQ_RE.fullmatch(value)
    if m is None:
        defects.append(d.BadCSeq(f"CSeq is malformed: {value[:40]!r}."))
        return None
    seq = _to_int(m[1])
    if seq is None or seq > _MAX_CSEQ:
        defects.append(d.CSeqOverlarge("CSeq number is overlarge (RFC 3261 §8.1.1.5: below 2**31)."))
    return CSeq(seq, m[2]) if seq is not None else None


def _content_length(value: str, defects: list[Defect]) -> int | None:
    """``Content-Length = 1*DIGIT`` (§20.14); None (with a defect) when unusable."""
    if value.isdigit() and value.isascii():
        length = _to_int(value)
        if length is None:
            defects.append(d.ContentLengthOverlarge("Content-Length is overlarge."))
        return length
    if value[:1] == "-" and value[1:].isdigit():
        # RFC 4475 §3.1.2.3.
        defects.append(d.ContentLengthNegative(f"Content-Length is negative ({value[:20]})."))
    else:
        defects.append(d.ContentLengthNotNumber(f"Content-Length is not a number: {value[:20]!r}."))
    return None


def _check_scalars(found: dict[str, list[str]], defects: list[Defect]) -> None:
    """Range checks of the scalar headers RFC 4475 §3.1.2.4/§3.1.2.5/§3.1.2.12 exercise."""
    values = found.get("max-forwards")
    if values is not None:
        text = values[0]
        if not (text.isdigit() and text.isascii()):
            defects.append(d.MaxForwardsNotNumber(f"Max-Forwards is not a number: {text[:20]!r}."))
        elif len(text) > 10 or int(text) > _MAX_MAX_FORWARDS:
            defects.append(d.MaxForwardsOverlarge("Max-Forwards is overlarge (above 255)."))
    values = found.get("contact")
    if values is not None:
        for value in values:
            if "<" not in value or ";;" in value:
                # Rare shapes get the full check (RFC 4475 §3.1.2.1, §3.1.2.13).
                _parse_name_addrs(value, defects, "Contact")
            if "xpires" in value or "XPIRES" in value:
                for m in _CONTACT_EXPIRES_RE.finditer(value):
                    if len(m[1]) > 10 or int(m[1]) > _MAX_DELTA_SECONDS:
                        defects.append(d.ContactExpiresOverlarge("Contact expires parameter is overlarge."))
    values = found.get("expires")
    if values is not None:
        _check_delta_seconds("Expires", values[0], defects, (d.ExpiresNotNumber, d.ExpiresOverlarge))
    values = found.get("retry-after")
    if values is not None:
        value = values[0].partition("(")[0].partition(";")[0]
        _check_delta_seconds("Retry-After", value, defects, (d.RetryAfterNotNumber, d.RetryAfterOverlarge))
    values = found.get("warning")
    if values is not None:
        for value in values:
            for part in _split_values(value):
                code = _WARN_CODE_RE.match(part)
                if code is None or len(code[1]) != 3:
                    # RFC 3261 §20.43: warn-code = 3DIGIT.
                    defects.append(d.WarningCode("Warning code is not three digits."))
                    break
    values = found.get("date")
    if values is not None and g.RFC1123_DATE_RE.fullmatch(values[0]) is None:
        # RFC 3261 §20.17: rfc1123-date, always in GMT (RFC 4475 §3.1.2.12).
        defects.append(d.BadDate("Date is not an RFC 1123 date in GMT."))


def _check_delta_seconds(
    name: str, value: str, defects: list[Defect], kinds: tuple[type[Defect], type[Defect]]
) -> None:
    """``delta-seconds = 1*DIGIT`` (RFC 3261 §25.1), up to 2**32-1; ``kinds`` are the kinds of
    defect for a value that is not a number and for one that is overlarge."""
    text = value.strip()
    if not (text.isdigit() and text.isascii()):
        defects.append(kinds[0](f"{name} is not a number of seconds: {text[:20]!r}."))
    elif len(text) > 10 or int(text) > _MAX_DELTA_SECONDS:
        defects.append(kinds[1](f"{name} is overlarge (above 2**32-1)."))
