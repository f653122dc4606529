"""Parse addresses: URIs and name-addr / addr-spec values (RFC 3261 §19.1, §20.10, §25.1), sans-I/O.

A URI is split as RFC 3261 §19.1.1 (``sip``/``sips``: user, host, port, parameters) or RFC 3966
(``tel``: the number and its parameters); any other scheme keeps its text. A From, To, Contact,
Route or Record-Route value is a name-addr (``"Display" <URI>;params``) or an addr-spec (a bare
URI, whose parameters then belong to the header, §20.10); lists of them split on commas
(§7.3.1). The usual shapes take a fast path; the rest a careful one that records each
deviation it notices as a defect.
"""

from __future__ import annotations

import re
from typing import Final

from sipflow.errors import ParseError
from sipflow.sip import defects as d
from sipflow.sip import grammar as g
from sipflow.sip.defects import Defect
from sipflow.sip.message import NameAddr, Uri
from sipflow.sip.values import _generic_params, _split_values, _unquote, _uri_params

__all__ = ["parse_name_addr", "parse_name_addrs", "parse_uri"]

_DISPLAY_TOKENS_RE: Final = re.compile(rf"{g.TOKEN}(?:[ \t]+{g.TOKEN})*")
"""``display-name = *(token LWS) / quoted-string``: the unquoted form (§25.1)."""
_QUOTED_AT_RE: Final = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
"""A quoted string at a position; group 1 is its escaped content."""
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
_WSP_RE: Final = re.compile(r"[ \t]")


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
