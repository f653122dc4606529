"""RFC 3261 §25.1 grammar pieces as named, precompiled regular expressions.

The pieces are plain ``str`` patterns (``TOKEN``, ``QUOTED_STRING``...) so they compose into
larger patterns, and each has a compiled counterpart (``TOKEN_RE``...) for direct use. The
parser works on text whose folded lines are already unfolded (RFC 3261 §7.3.1), so inside a
header value ``LWS`` reduces to ``WSP``; the CRLF forms are kept here for completeness.

Names follow the ABNF of RFC 3261 §25.1 (``token``, ``word``, ``quoted-string``, ``LWS``,
``SIP-Version``, ``Status-Code``...), with ``_`` for ``-``.
"""

from __future__ import annotations

import re
from typing import Final

# --- Basic rules (RFC 3261 §25.1) -------------------------------------------------------------

WSP: Final = r"[ \t]"
"""SP / HTAB (RFC 5234 §B.1)."""

LWS: Final = r"(?:[ \t]*\r?\n)?[ \t]+"
"""``LWS = [*WSP CRLF] 1*WSP`` linear whitespace, folding included (bare LF tolerated)."""

SWS: Final = rf"(?:{LWS})?"
"""``SWS = [LWS]`` separator whitespace."""

TOKEN_CHARS: Final = r"A-Za-z0-9\-.!%*_+`'~"
"""``alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"`` (a character class body)."""

TOKEN: Final = rf"[{TOKEN_CHARS}]+"
"""``token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")``."""

WORD: Final = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
"""``word``: token characters plus ``( ) < > : \\ " / [ ] ? { }`` (used by Call-ID, §25.1)."""

QDTEXT: Final = r"[^\"\\\x00-\x08\x0a-\x1f\x7f]"
"""``qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII`` (HTAB and SP included)."""

QUOTED_PAIR: Final = r"\\[\x00-\x09\x0b\x0c\x0e-\x7f]"
"""``quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F)``."""

QUOTED_STRING: Final = rf"\"(?:[^\"\\\r\n]|{QUOTED_PAIR})*\""
"""``quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE`` (leniently: any non-quote text)."""

ALPHANUM: Final = r"[A-Za-z0-9]"
DIGITS: Final = r"[0-9]+"

# --- Start lines (RFC 3261 §7.1, §7.2, §25.1) ------------------------------------------------------

METHOD: Final = TOKEN
"""``Method = INVITEm / ACKm / ... / extension-method``; extension-method = token."""

SIP_VERSION: Final = r"[Ss][Ii][Pp]/[0-9]+\.[0-9]+"
"""``SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT`` (the literal "SIP" is case-insensitive)."""

STATUS_CODE: Final = r"[0-9]{3}"
"""``Status-Code = 3DIGIT`` (extension-code too)."""

REASON_PHRASE: Final = r"[^\r\n]*"
"""``Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT / SP / HTAB)``."""

REQUEST_LINE: Final = rf"({METHOD}) ([^\x00-\x20\x7f]+) ({SIP_VERSION})"
"""``Request-Line = Method SP Request-URI SP SIP-Version`` (groups: method, URI, version)."""

STATUS_LINE: Final = rf"({SIP_VERSION}) ({STATUS_CODE}) ({REASON_PHRASE})"
"""``Status-Line = SIP-Version SP Status-Code SP Reason-Phrase`` (groups: version, code, reason)."""

# --- URIs (RFC 3261 §19.1, §25.1; RFC 3986 §3.1; RFC 3966) -----------------------------------------

SCHEME: Final = r"[A-Za-z][A-Za-z0-9+\-.]*"
"""``scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )``."""

IPV6_REFERENCE: Final = r"\[[0-9A-Fa-f:.]+\]"
"""``IPv6reference = "[" IPv6address "]"`` (loosely)."""

HOSTNAME: Final = r"[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?"
"""``hostname = *( domainlabel "." ) toplabel [ "." ]`` (leniently: underscores allowed);
IPv4 addresses match it too."""

HOST: Final = rf"(?:{IPV6_REFERENCE}|{HOSTNAME})"
"""``host = hostname / IPv4address / IPv6reference``."""

PORT: Final = DIGITS
"""``port = 1*DIGIT``."""

# --- Header pieces ------------------------------------------------------------------------------

HEADER_NAME: Final = TOKEN
"""``header-name = token`` (§25.1 extension-header)."""

CSEQ: Final = rf"([0-9]+)[ \t]+({METHOD})"
"""``CSeq = "CSeq" HCOLON 1*DIGIT LWS Method`` (§20.16; groups: number, method)."""

VIA_SENT_PROTOCOL: Final = rf"({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})"
"""``sent-protocol = protocol-name SLASH protocol-version SLASH transport`` (§20.42)."""

VIA_SENT_BY: Final = rf"({IPV6_REFERENCE}|[^\s;:,\[\]]+)(?:[ \t]*:[ \t]*([0-9]+))?"
"""``sent-by = host [ COLON port ]`` (host leniently: anything up to a separator)."""

VIA_PARM: Final = rf"[ \t]*{VIA_SENT_PROTOCOL}[ \t]+{VIA_SENT_BY}[ \t]*"
"""``via-parm = sent-protocol LWS sent-by *( SEMI via-params )`` without the params."""

GENERIC_PARAM: Final = rf"[ \t]*;[ \t]*({TOKEN})(?:[ \t]*=[ \t]*({QUOTED_STRING}|[^\s;,\"]*))?[ \t]*"
"""``SEMI generic-param``; ``generic-param = token [ EQUAL gen-value ]``,
``gen-value = token / host / quoted-string`` (§25.1; groups: name, value)."""

RFC1123_DATE: Final = (
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)
"""``SIP-date = rfc1123-date`` (§20.17, RFC 2616 §3.3.1): the zone is always GMT."""

# --- Compiled forms -----------------------------------------------------------------------------

TOKEN_RE: Final = re.compile(TOKEN)
WORD_RE: Final = re.compile(WORD)
QUOTED_STRING_RE: Final = re.compile(QUOTED_STRING)
QUOTED_PAIR_RE: Final = re.compile(r"\\(.)", re.DOTALL)
"""A backslash escape inside a quoted string, for unescaping (group: the escaped character)."""
SIP_VERSION_RE: Final = re.compile(SIP_VERSION)
REQUEST_LINE_RE: Final = re.compile(REQUEST_LINE)
STATUS_LINE_RE: Final = re.compile(STATUS_LINE)
STATUS_LINE_LOOSE_RE: Final = re.compile(rf"({SIP_VERSION})[ \t]+([0-9]+)(?:[ \t]([^\r\n]*))?")
"""A status line with any number of digits and blanks: the lenient fallback."""
SCHEME_RE: Final = re.compile(rf"({SCHEME}):")
HOST_RE: Final = re.compile(HOST)
HOSTNAME_RE: Final = re.compile(HOSTNAME)
DIGITS_RE: Final = re.compile(DIGITS)
CSEQ_RE: Final = re.compile(rf"[ \t]*{CSEQ}[ \t]*")
VIA_PARM_RE: Final = re.compile(VIA_PARM)
VIA_SENT_PROTOCOL_RE: Final = re.compile(rf"[ \t]*{VIA_SENT_PROTOCOL}[ \t]+")
GENERIC_PARAM_RE: Final = re.compile(GENERIC_PARAM)
RFC1123_DATE_RE: Final = re.compile(RFC1123_DATE)
SDP_LINE_RE: Final = re.compile(r"([a-z])[ \t]*=")
"""``<type>=<value>`` (RFC 8866 §5), tolerating blanks before ``=``."""
