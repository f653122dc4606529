"""The Reason header (RFC 3326) in words: Q.850 causes and SIP status codes.

``Reason: Q.850;cause=16;text="Terminated"`` says why a call was released (a BYE, a CANCEL, a
final response relayed from the telephone network); ``Reason: SIP;cause=487`` gives the SIP
status that made a proxy send its CANCEL. ``decode_reason`` turns either into a short phrase.
"""

from __future__ import annotations

import re
from typing import Final

Q850_CAUSES: Final[dict[int, str]] = {
    1: "unallocated (unassigned) number",
    2: "no route to specified transit network",
    3: "no route to destination",
    4: "send special information tone",
    5: "misdialled trunk prefix",
    6: "channel unacceptable",
    7: "call awarded and being delivered in an established channel",
    8: "preemption",
    9: "preemption, circuit reserved for reuse",
    14: "QoR: ported number",
    16: "normal call clearing",
    17: "user busy",
    18: "no user responding",
    19: "no answer from user (user alerted)",
    20: "subscriber absent",
    21: "call rejected",
    22: "number changed",
    23: "redirection to new destination",
    25: "exchange routing error",
    26: "non-selected user clearing",
    27: "destination out of order",
    28: "invalid number format (address incomplete)",
    29: "facility rejected",
    30: "response to STATUS ENQUIRY",
    31: "normal, unspecified",
    34: "no circuit/channel available",
    38: "network out of order",
    39: "permanent frame mode connection out of service",
    40: "permanent frame mode connection operational",
    41: "temporary failure",
    42: "switching equipment congestion",
    43: "access information discarded",
    44: "requested circuit/channel not available",
    46: "precedence call blocked",
    47: "resource unavailable, unspecified",
    49: "quality of service not available",
    50: "requested facility not subscribed",
    53: "outgoing calls barred within CUG",
    55: "incoming calls barred within CUG",
    57: "bearer capability not authorized",
    58: "bearer capability not presently available",
    62: "inconsistency in designated outgoing access information and subscriber class",
    63: "service or option not available, unspecified",
    65: "bearer capability not implemented",
    66: "channel type not implemented",
    69: "requested facility not implemented",
    70: "only restricted digital information bearer capability is available",
    79: "service or option not implemented, unspecified",
    81: "invalid call reference value",
    82: "identified channel does not exist",
    83: "a suspended call exists, but this call identity does not",
    84: "call identity in use",
    85: "no call suspended",
    86: "call having the requested call identity has been cleared",
    87: "user not member of CUG",
    88: "incompatible destination",
    90: "non-existent CUG",
    91: "invalid transit network selection",
    95: "invalid message, unspecified",
    96: "mandatory information element is missing",
    97: "message type non-existent or not implemented",
    98: "message not compatible with call state or message type non-existent or not implemented",
    99: "information element / parameter non-existent or not implemented",
    100: "invalid information element contents",
    101: "message not compatible with call state",
    102: "recovery on timer expiry",
    103: "parameter non-existent or not implemented, passed on",
    110: "message with unrecognized parameter, discarded",
    111: "protocol error, unspecified",
    127: "interworking, unspecified",
}
"""ITU-T Q.850 (05/1998) Table 1: cause values and their names, lower-cased."""

SIP_REASON_PHRASES: Final[dict[int, str]] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    428: "Use Identity Header",
    429: "Provide Referrer Identity",
    430: "Flow Failed",
    433: "Anonymity Disallowed",
    436: "Bad Identity-Info",
    437: "Unsupported Certificate",
    438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded",
    469: "Bad Info Package",
    470: "Consent Needed",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    555: "Push Notification Service Not Supported",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
    608: "Rejected",
}
"""RFC 3261 §21 and later RFCs (IANA "Response Codes" registry): the usual reason phrases."""

_PARAM_RE: Final = re.compile(r';\s*([^\s=;,]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*))?')
_VALUE_RE: Final = re.compile(
    r'\s*([^\s;,]+)((?:\s*;\s*[^\s=;,]+\s*(?:=\s*(?:"(?:[^"\\]|\\.)*"|[^;,\s]*))?)*)'
)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _decode_one(protocol: str, params: dict[str, str]) -> str:
    cause_text = params.get("cause", "")
    text = params.get("text", "").strip()
    cause = int(cause_text) if cause_text.isdigit() and len(cause_text) <= 6 else None
    if protocol.upper() == "Q.850":
        name = Q850_CAUSES.get(cause) if cause is not None else None
        head = f"Q.850 cause {cause_text}" if cause_text else "Q.850"
    elif protocol.upper() == "SIP":
        # The text is often more telling than the phrase ("Call completed elsewhere", RFC 3326 §3).
        name = text or (SIP_REASON_PHRASES.get(cause) if cause is not None else None)
        head = f"SIP {cause_text}" if cause_text else "SIP"
    else:
        name = None
        head = f"{protocol} cause {cause_text}" if cause_text else protocol
    if name is None and text:
        name = text
    return f"{head} ({name})" if name else head


def decode_reason(value: str) -> str:
    """One Reason header value (RFC 3326 §2) in words.

    ``Q.850;cause=16;text="Terminated"`` → ``Q.850 cause 16 (normal call clearing)``;
    ``SIP;cause=487`` → ``SIP 487 (Request Terminated)`` (a SIP cause shows the header's
    ``text`` where there is one, e.g. "Call completed elsewhere"). A Q.850 cause not in the
    table keeps the header's ``text``; several comma-separated values (one per
    protocol, §2) are joined with ``"; "``. Never raises: what cannot be read is returned as is.
    """
    parts: list[str] = []
    pos = 0
    while pos < len(value):
        m = _VALUE_RE.match(value, pos)
        if m is None or not m.group(0).strip():
            break
        params = {p[1].lower(): _unquote(p[2] or "") for p in _PARAM_RE.finditer(m[2])}
        parts.append(_decode_one(m[1], params))
        pos = m.end()
        rest = value[pos:].lstrip()
        if not rest.startswith(","):
            break
        pos = len(value) - len(rest) + 1
    return "; ".join(parts) if parts else value.strip()
