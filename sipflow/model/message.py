"""The records the model keeps for each SIP message it was fed."""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum

from sipflow.capture.types import Endpoint, SipPayload, Transport
from sipflow.sip.message import SipRequest, SipResponse


class MatchedBy(StrEnum):
    """How a message found its transaction."""

    VIA = "via"
    """Top Via branch and sent-by, with the CSeq method (RFC 3261 §17.1.3, §17.2.3), or the
    RFC 2543 fallback keys for a branch without the magic cookie."""
    CSEQ = "cseq"
    """A message whose Via is missing or names no transaction, matched by Call-ID, CSeq
    number and method, and the addresses of the request (``model.transaction``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A parsed SIP message with where and when it was captured."""

    index: int
    """Position of the message in the analysis, in capture-time order (0-based)."""
    sip: SipRequest | SipResponse
    timestamp: float
    """Capture time, seconds since the Unix epoch."""
    src: Endpoint
    dst: Endpoint
    transport: Transport
    frame: int
    """Frame number (1-based, in ``file``) that completed the message."""
    frames: tuple[int, ...]
    """Every frame that carried a part of it."""
    file: str
    retransmission: bool = False
    """The same request or response was already seen in its transaction (RFC 3261 §17)."""
    truncated: bool = False
    """The capture cut the message short (snaplen, end of capture inside a TCP message)."""
    copies: tuple[tuple[str, int], ...] = ()
    """(file, frame) of the same message captured again: at another capture point (another
    file, or another interface of the same file), or twice at one (``sipflow.merge``)."""
    matched_by: MatchedBy = MatchedBy.VIA
    """How the message was matched to its transaction: by its top Via (RFC 3261 §17.1.3,
    §17.2.3) or, where the Via is missing or matches no transaction, by the fallback on
    Call-ID, CSeq and addresses (``MatchedBy.CSEQ``)."""

    @property
    def is_request(self) -> bool:
        return isinstance(self.sip, SipRequest)

    @property
    def label(self) -> str:
        """The method of a request, or ``status reason`` of a response."""
        sip = self.sip
        if isinstance(sip, SipRequest):
            return sip.method
        return f"{sip.status} {sip.reason}".rstrip()

    @property
    def cseq_method(self) -> str | None:
        cseq = self.sip.cseq
        return cseq.method if cseq is not None else None

    @classmethod
    def from_payload(
        cls,
        index: int,
        packet: SipPayload,
        sip: SipRequest | SipResponse,
        *,
        retransmission: bool = False,
        copies: tuple[tuple[str, int], ...] = (),
        matched_by: MatchedBy = MatchedBy.VIA,
        src: Endpoint | None = None,
        dst: Endpoint | None = None,
    ) -> Message:
        """The message of ``packet``; ``src``/``dst``, when given, replace the packet's
        (equal) endpoints by shared objects. Made with its slots set directly (as ``__init__``
        would, in a third of the time: the tracker makes one per message)."""
        msg = _new(cls)
        _SET_INDEX(msg, index)
        _SET_SIP(msg, sip)
        _SET_TIMESTAMP(msg, packet.timestamp)
        _SET_SRC(msg, packet.src if src is None else src)
        _SET_DST(msg, packet.dst if dst is None else dst)
        _SET_TRANSPORT(msg, packet.transport)
        _SET_FRAME(msg, packet.frame)
        _SET_FRAMES(msg, packet.frames)
        _SET_FILE(msg, packet.file)
        _SET_RETRANSMISSION(msg, retransmission)
        _SET_TRUNCATED(msg, packet.truncated)
        _SET_COPIES(msg, copies)
        _SET_MATCHED_BY(msg, matched_by)
        return msg


_new = object.__new__
_MESSAGE_SLOTS = ("index", "sip", "timestamp", "src", "dst", "transport", "frame", "frames", "file",
                  "retransmission", "truncated", "copies", "matched_by")  # fmt: skip
assert set(_MESSAGE_SLOTS) == {f.name for f in fields(Message)}, "from_payload must set every field"
(
    _SET_INDEX, _SET_SIP, _SET_TIMESTAMP, _SET_SRC, _SET_DST, _SET_TRANSPORT, _SET_FRAME, _SET_FRAMES,
    _SET_FILE, _SET_RETRANSMISSION, _SET_TRUNCATED, _SET_COPIES, _SET_MATCHED_BY,
) = (getattr(Message, name).__set__ for name in _MESSAGE_SLOTS)  # fmt: skip
"""The setter of each of ``Message``'s slots, by name (``from_payload`` sets them all)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Malformed:
    """A payload that looked like SIP but could not be parsed: kept, shown, never fatal."""

    reason: str
    timestamp: float
    src: Endpoint
    dst: Endpoint
    transport: Transport
    frame: int
    frames: tuple[int, ...]
    file: str
    raw: bytes
    truncated: bool = False

    @classmethod
    def from_payload(cls, packet: SipPayload, reason: str) -> Malformed:
        return cls(
            reason=reason,
            timestamp=packet.timestamp,
            src=packet.src,
            dst=packet.dst,
            transport=packet.transport,
            frame=packet.frame,
            frames=packet.frames,
            file=packet.file,
            raw=packet.payload,
            truncated=packet.truncated,
        )
