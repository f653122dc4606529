"""The defects the parser reports, each with a stable code (``sip.malformed.*``), sans-I/O.

A defect is one short sentence the parser writes where a message deviates from RFC 3261 but
can still be read ("Date is not an RFC 1123 date in GMT."). As Wireshark's expert info does,
each kind of defect has a stable code (``sip.malformed.date``) that tools can count, filter and
switch off, while people read the sentence.

A defect *is* its sentence: a ``str`` (so ``message.defects``, the JSON flow export and every
comparison with text stay as they were) of a subclass of ``Defect`` named after its kind. The
kind is a class attribute, not a field, so a defect costs what its string costs, building one
is one C-level call, and it pickles as (kind, sentence). ``KINDS`` lists every kind by code, in
the order of this file; ``kind_of`` finds one.

Each kind says where the offending text is (``where``): in the start line (``START_LINE``), in
the header fields of one name (``"Date"``), in the header field the sentence names first
(``NAMED``: "From has an unclosed <."), or nowhere beyond the sentence itself (None).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, Final, cast

__all__ = ["KINDS", "NAMED", "START_LINE", "Defect", "kind_of"]

START_LINE: Final = "start-line"
"""``Defect.where`` of a kind about the Request-Line or Status-Line."""
NAMED: Final = "named"
"""``Defect.where`` of a kind about the header field that its sentence names first."""


class Defect(str):
    """One defect: the string is the sentence; the class (a kind) carries the code."""

    __slots__ = ()

    code: ClassVar[str] = "sip.malformed"
    """Stable id of the kind (``sip.malformed.date``)."""
    summary: ClassVar[str] = "A SIP message deviates from RFC 3261."
    """What the kind means, one sentence."""
    reference: ClassVar[str] = "RFC 3261"
    """Where the rule it breaks is written (and the RFC 4475 torture test that tries it)."""
    where: ClassVar[str | None] = None
    """Where the offending text is: ``START_LINE``, a header name, ``NAMED`` or None."""


_KINDS: dict[str, type[Defect]] = {}


def _kind(name: str, code: str, summary: str, reference: str, where: str | None = None) -> type[Defect]:
    """A kind of defect: a subclass of ``Defect`` bound to ``name`` in this module (which pickle
    finds it by), registered in ``KINDS``."""
    assert code not in _KINDS, code
    namespace = {
        "__slots__": (),
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": summary,
        "code": code,
        "summary": summary,
        "reference": reference,
        "where": where,
    }
    kind = cast("type[Defect]", type(name, (Defect,), namespace))
    _KINDS[code] = kind
    return kind


# --- The start line (RFC 3261 §7.1, §7.2) ----------------------------------------------------------

BadVersion = _kind(
    "BadVersion", "sip.malformed.version", "The start line names a SIP version other than SIP/2.0.",
    "RFC 3261 §7.1; RFC 4475 §3.1.2.16", START_LINE,
)  # fmt: skip
StatusOutOfRange = _kind(
    "StatusOutOfRange", "sip.malformed.status-code.range", "The status code is outside 100-699.",
    "RFC 3261 §7.2, §21", START_LINE,
)  # fmt: skip
StatusNotThreeDigits = _kind(
    "StatusNotThreeDigits", "sip.malformed.status-code.digits", "The status code is not three digits.",
    "RFC 3261 §7.2; RFC 4475 §3.1.2.19", START_LINE,
)  # fmt: skip
StatusLineNoSpace = _kind(
    "StatusLineNoSpace", "sip.malformed.status-line.no-sp",
    "The Status-Line has no SP between the status code and the reason phrase.", "RFC 3261 §7.2", START_LINE,
)  # fmt: skip
StatusLineSpaces = _kind(
    "StatusLineSpaces", "sip.malformed.status-line.sp",
    "The Status-Line elements are separated by more than one SP.", "RFC 3261 §7.2", START_LINE,
)  # fmt: skip
RequestLineSpaces = _kind(
    "RequestLineSpaces", "sip.malformed.request-line.sp",
    "The Request-Line elements are separated by more than one SP.", "RFC 3261 §7.1; RFC 4475 §3.1.2.9",
    START_LINE,
)  # fmt: skip
RequestLineLeadingSpace = _kind(
    "RequestLineLeadingSpace", "sip.malformed.request-line.leading-space",
    "The Request-Line starts with whitespace.", "RFC 3261 §7.1", START_LINE,
)  # fmt: skip
RequestLineTrailingSpace = _kind(
    "RequestLineTrailingSpace", "sip.malformed.request-line.trailing-space",
    "The Request-Line ends in whitespace.", "RFC 3261 §7.1; RFC 4475 §3.1.2.10", START_LINE,
)  # fmt: skip
RequestUriWhitespace = _kind(
    "RequestUriWhitespace", "sip.malformed.request-uri.whitespace", "The Request-URI contains whitespace.",
    "RFC 3261 §25.1; RFC 4475 §3.1.2.8", START_LINE,
)  # fmt: skip
RequestUriBrackets = _kind(
    "RequestUriBrackets", "sip.malformed.request-uri.brackets", "The Request-URI is enclosed in <>.",
    "RFC 3261 §25.1; RFC 4475 §3.1.2.7", START_LINE,
)  # fmt: skip
RequestUriNoScheme = _kind(
    "RequestUriNoScheme", "sip.malformed.request-uri.scheme", "The Request-URI has no scheme.",
    "RFC 3261 §19.1, §25.1", START_LINE,
)  # fmt: skip
RequestUriHeaders = _kind(
    "RequestUriHeaders", "sip.malformed.request-uri.headers", "The Request-URI carries escaped headers.",
    "RFC 3261 §19.1.5; RFC 4475 §3.1.2.11", START_LINE,
)  # fmt: skip

# --- The header section (RFC 3261 §7.3, §7.5) ------------------------------------------------------

NoBlankLine = _kind(
    "NoBlankLine", "sip.malformed.blank-line",
    "No empty line ends the header section: the message ends after its last header field.",
    "RFC 3261 §7, §7.5",
)  # fmt: skip
BareLineFeed = _kind(
    "BareLineFeed", "sip.malformed.line-ending", "Lines end in a bare LF instead of CRLF.", "RFC 3261 §7",
)  # fmt: skip
ContinuationFirst = _kind(
    "ContinuationFirst", "sip.malformed.continuation",
    "A continuation line, one starting with SP or HTAB, follows the start line.", "RFC 3261 §7.3.1",
)  # fmt: skip
HeaderLineNoColon = _kind(
    "HeaderLineNoColon", "sip.malformed.header-line", "A header line has no colon.", "RFC 3261 §7.3.1",
)  # fmt: skip
HeaderNameNotToken = _kind(
    "HeaderNameNotToken", "sip.malformed.header-name", "A header field name is not a token.",
    "RFC 3261 §7.3.1, §25.1",
)  # fmt: skip
HeaderRepeated = _kind(
    "HeaderRepeated", "sip.malformed.header.repeated",
    "A header field that may appear once appears several times: Call-ID, CSeq, From, To, Max-Forwards "
    "or Content-Type.", "RFC 3261 §7.3.1, §20; RFC 4475 §3.3.8", NAMED,
)  # fmt: skip
HeaderMissing = _kind(
    "HeaderMissing", "sip.malformed.header.missing",
    "A mandatory header field is missing: To, From, Call-ID, CSeq or Via.",
    "RFC 3261 §8.1.1; RFC 4475 §3.3.1",
)  # fmt: skip
MaxForwardsMissing = _kind(
    "MaxForwardsMissing", "sip.malformed.max-forwards.missing", "A request has no Max-Forwards header field.",
    "RFC 3261 §8.1.1.6; RFC 4475 §3.4.1",
)  # fmt: skip

# --- The header fields parsed eagerly (RFC 3261 §20) -----------------------------------------------

CallIdEmpty = _kind(
    "CallIdEmpty", "sip.malformed.call-id.empty", "The Call-ID header field is empty.", "RFC 3261 §20.8",
)  # fmt: skip
BadCSeq = _kind(
    "BadCSeq", "sip.malformed.cseq", "The CSeq header field is not a number and a method.",
    "RFC 3261 §20.16", "CSeq",
)  # fmt: skip
CSeqOverlarge = _kind(
    "CSeqOverlarge", "sip.malformed.cseq.overlarge", "The CSeq number is not below 2**31.",
    "RFC 3261 §8.1.1.5; RFC 4475 §3.1.2.4, §3.1.2.5", "CSeq",
)  # fmt: skip
CSeqMethodMismatch = _kind(
    "CSeqMethodMismatch", "sip.malformed.cseq.method", "The CSeq method differs from the request method.",
    "RFC 3261 §8.1.1.5; RFC 4475 §3.1.2.17, §3.1.2.18", "CSeq",
)  # fmt: skip
ContentLengthNotNumber = _kind(
    "ContentLengthNotNumber", "sip.malformed.content-length.not-a-number",
    "The Content-Length header field is not a number.", "RFC 3261 §20.14", "Content-Length",
)  # fmt: skip
ContentLengthNegative = _kind(
    "ContentLengthNegative", "sip.malformed.content-length.negative", "The Content-Length is negative.",
    "RFC 3261 §20.14; RFC 4475 §3.1.2.3", "Content-Length",
)  # fmt: skip
ContentLengthOverlarge = _kind(
    "ContentLengthOverlarge", "sip.malformed.content-length.overlarge",
    "The Content-Length has too many digits to be a length.", "RFC 3261 §20.14", "Content-Length",
)  # fmt: skip
ContentLengthMismatch = _kind(
    "ContentLengthMismatch", "sip.malformed.content-length.mismatch",
    "The Content-Length is larger than the bytes after the header section.",
    "RFC 3261 §18.3, §20.14; RFC 4475 §3.1.2.2", "Content-Length",
)  # fmt: skip
ContentLengthRepeated = _kind(
    "ContentLengthRepeated", "sip.malformed.content-length.repeated",
    "The Content-Length header field appears several times: if the values disagree, the body "
    "cannot be framed.",
    "RFC 3261 §20.14; RFC 4475 §3.3.9", "Content-Length",
)  # fmt: skip
MaxForwardsNotNumber = _kind(
    "MaxForwardsNotNumber", "sip.malformed.max-forwards.not-a-number",
    "The Max-Forwards header field is not a number.", "RFC 3261 §20.22", "Max-Forwards",
)  # fmt: skip
MaxForwardsOverlarge = _kind(
    "MaxForwardsOverlarge", "sip.malformed.max-forwards.overlarge", "The Max-Forwards value is above 255.",
    "RFC 3261 §20.22; RFC 4475 §3.1.2.4", "Max-Forwards",
)  # fmt: skip
ExpiresNotNumber = _kind(
    "ExpiresNotNumber", "sip.malformed.expires.not-a-number",
    "The Expires header field is not a number of seconds.", "RFC 3261 §20.19", "Expires",
)  # fmt: skip
ExpiresOverlarge = _kind(
    "ExpiresOverlarge", "sip.malformed.expires.overlarge", "The Expires value is above 2**32-1.",
    "RFC 3261 §20.19; RFC 4475 §3.1.2.4", "Expires",
)  # fmt: skip
RetryAfterNotNumber = _kind(
    "RetryAfterNotNumber", "sip.malformed.retry-after.not-a-number",
    "The Retry-After header field is not a number of seconds.", "RFC 3261 §20.33", "Retry-After",
)  # fmt: skip
RetryAfterOverlarge = _kind(
    "RetryAfterOverlarge", "sip.malformed.retry-after.overlarge", "The Retry-After value is above 2**32-1.",
    "RFC 3261 §20.33; RFC 4475 §3.1.2.5", "Retry-After",
)  # fmt: skip
ContactExpiresOverlarge = _kind(
    "ContactExpiresOverlarge", "sip.malformed.contact.expires",
    "A Contact expires parameter is above 2**32-1.", "RFC 3261 §20.10; RFC 4475 §3.1.2.4", "Contact",
)  # fmt: skip
WarningCode = _kind(
    "WarningCode", "sip.malformed.warning.code", "A Warning header field's warn-code is not three digits.",
    "RFC 3261 §20.43; RFC 4475 §3.1.2.5", "Warning",
)  # fmt: skip
BadDate = _kind(
    "BadDate", "sip.malformed.date", "The Date header field is not an RFC 1123 date in GMT.",
    "RFC 3261 §20.17; RFC 4475 §3.1.2.12", "Date",
)  # fmt: skip

# --- Addresses: name-addr, addr-spec, URIs, parameters (RFC 3261 §19.1, §20.10, §25.1) -------------

EmptyParameter = _kind(
    "EmptyParameter", "sip.malformed.param.empty",
    "A header field has an empty parameter: a stray semicolon.", "RFC 3261 §25.1; RFC 4475 §3.1.2.1", NAMED,
)  # fmt: skip
BadParameters = _kind(
    "BadParameters", "sip.malformed.param", "A header field has text that is not a parameter.",
    "RFC 3261 §25.1", NAMED,
)  # fmt: skip
EmptyListValue = _kind(
    "EmptyListValue", "sip.malformed.list.empty",
    "A comma-separated header field has an empty value: a stray comma.", "RFC 3261 §7.3.1; RFC 4475 §3.1.2.1",
    NAMED,
)  # fmt: skip
UriNoScheme = _kind(
    "UriNoScheme", "sip.malformed.uri.scheme", "A URI in a header field has no scheme.", "RFC 3261 §19.1",
    NAMED,
)  # fmt: skip
UriBadPort = _kind(
    "UriBadPort", "sip.malformed.uri.port", "A SIP URI has a port that is not a number up to 65535.",
    "RFC 3261 §19.1.1", NAMED,
)  # fmt: skip
UriNoHost = _kind(
    "UriNoHost", "sip.malformed.uri.host", "A SIP URI has no host.", "RFC 3261 §19.1.1", NAMED,
)  # fmt: skip
Ipv6Unclosed = _kind(
    "Ipv6Unclosed", "sip.malformed.ipv6.unclosed", "An IPv6 reference has no closing ].", "RFC 3261 §25.1",
    NAMED,
)  # fmt: skip
Ipv6TextAfter = _kind(
    "Ipv6TextAfter", "sip.malformed.ipv6.text-after",
    "Text other than a port follows an IPv6 reference.", "RFC 3261 §25.1", NAMED,
)  # fmt: skip
Ipv6NoBrackets = _kind(
    "Ipv6NoBrackets", "sip.malformed.ipv6.brackets", "An IPv6 address is written without brackets.",
    "RFC 3261 §25.1; RFC 5118 §4.1", NAMED,
)  # fmt: skip
NameAddrEmpty = _kind(
    "NameAddrEmpty", "sip.malformed.name-addr.empty", "A From, To or Contact value is empty.",
    "RFC 3261 §20.10, §25.1", NAMED,
)  # fmt: skip
UnterminatedQuote = _kind(
    "UnterminatedQuote", "sip.malformed.name-addr.quote", "A quoted display name is not terminated.",
    "RFC 3261 §25.1; RFC 4475 §3.1.2.6", NAMED,
)  # fmt: skip
QuotedNameNoUri = _kind(
    "QuotedNameNoUri", "sip.malformed.name-addr.no-uri",
    "A quoted display name is not followed by a URI in <>.", "RFC 3261 §25.1", NAMED,
)  # fmt: skip
DisplayNameNeedsQuotes = _kind(
    "DisplayNameNeedsQuotes", "sip.malformed.name-addr.display-name",
    "An unquoted display name has characters that are not token characters.",
    "RFC 3261 §25.1; RFC 4475 §3.1.2.15", NAMED,
)  # fmt: skip
UnclosedAngle = _kind(
    "UnclosedAngle", "sip.malformed.name-addr.unclosed", "A < around a URI has no closing >.",
    "RFC 3261 §25.1", NAMED,
)  # fmt: skip
WhitespaceInAngles = _kind(
    "WhitespaceInAngles", "sip.malformed.name-addr.whitespace", "Whitespace stands inside <> around a URI.",
    "RFC 3261 §25.1; RFC 4475 §3.1.2.14", NAMED,
)  # fmt: skip
WhitespaceInAddrSpec = _kind(
    "WhitespaceInAddrSpec", "sip.malformed.addr-spec.whitespace",
    "A URI written without <> contains whitespace.", "RFC 3261 §25.1", NAMED,
)  # fmt: skip
AddrSpecNotEnclosed = _kind(
    "AddrSpecNotEnclosed", "sip.malformed.addr-spec.unenclosed",
    "A URI with a comma or question mark is not enclosed in <>.", "RFC 3261 §20; RFC 4475 §3.1.2.13", NAMED,
)  # fmt: skip

# --- Via (RFC 3261 §20.42) -------------------------------------------------------------------------

BadVia = _kind(
    "BadVia", "sip.malformed.via", "A Via value is not a sent-protocol and a sent-by.", "RFC 3261 §20.42",
    "Via",
)  # fmt: skip
ViaBadHost = _kind(
    "ViaBadHost", "sip.malformed.via.host", "A Via sent-by host is not a host name or an IP address.",
    "RFC 3261 §20.42, §25.1", "Via",
)  # fmt: skip
ViaBadPort = _kind(
    "ViaBadPort", "sip.malformed.via.port", "A Via sent-by port is not a number up to 65535.",
    "RFC 3261 §20.42", "Via",
)  # fmt: skip
ViaBadProtocol = _kind(
    "ViaBadProtocol", "sip.malformed.via.protocol", "A Via names a protocol other than SIP/2.0.",
    "RFC 3261 §20.42; RFC 4475 §3.1.2.16", "Via",
)  # fmt: skip

# --- No message at all -----------------------------------------------------------------------------

Unparseable = _kind(
    "Unparseable", "sip.malformed.message",
    "A payload that looks like SIP cannot be parsed: no start line, or no end of the header section.",
    "RFC 3261 §7",
)  # fmt: skip
"""Not a defect of a message: the kind of a payload ``parse_message`` refused (``ParseError``),
for the tools that report those along with the defects."""

KINDS: Final[Mapping[str, type[Defect]]] = MappingProxyType(_KINDS)
"""Every kind of defect by code, in the order of this module."""


def kind_of(defect: str) -> type[Defect]:
    """The kind of ``defect``; ``Defect`` itself for a plain string (a defect not made here)."""
    return type(defect) if isinstance(defect, Defect) else Defect
