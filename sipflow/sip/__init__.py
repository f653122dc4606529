"""SIP parsing, sans-I/O: bytes in, frozen objects out.

``parse_message`` turns one datagram payload (or one framed stream message) into a
``SipRequest`` or ``SipResponse``; the helpers parse on request what it leaves raw, and
``find_sdp``/``parse_sdp`` read the session description a message carries. Each of a
message's ``defects`` is a ``Defect``: its sentence, with the stable code of its kind
(``DEFECT_KINDS``, ``sipflow.sip.defects``).
"""

from sipflow.errors import ParseError
from sipflow.sip.defects import KINDS as DEFECT_KINDS
from sipflow.sip.defects import Defect
from sipflow.sip.message import (
    COMPACT_FORMS,
    CSeq,
    Headers,
    NameAddr,
    SipMessage,
    SipRequest,
    SipResponse,
    Uri,
    Via,
    canonical_name,
)
from sipflow.sip.parse import (
    MANDATORY_HEADERS,
    parse_message,
    parse_name_addr,
    parse_name_addrs,
    parse_truncated,
    parse_uri,
    parse_via_values,
    split_header_values,
)
from sipflow.sip.sdp import Codec, Media, Origin, SessionDescription, find_sdp, parse_sdp, summarize

__all__ = [
    "COMPACT_FORMS",
    "DEFECT_KINDS",
    "MANDATORY_HEADERS",
    "CSeq",
    "Codec",
    "Defect",
    "Headers",
    "Media",
    "NameAddr",
    "Origin",
    "ParseError",
    "SessionDescription",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "Uri",
    "Via",
    "canonical_name",
    "find_sdp",
    "parse_message",
    "parse_name_addr",
    "parse_name_addrs",
    "parse_sdp",
    "parse_truncated",
    "parse_uri",
    "parse_via_values",
    "split_header_values",
    "summarize",
]
