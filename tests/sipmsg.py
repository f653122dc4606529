"""Literal SIP messages for model tests (sans-I/O: the model is fed bytes and timestamps)."""

from __future__ import annotations

from sipflow.capture.types import Endpoint, SipPayload, Transport
from sipflow.model.message import Message
from sipflow.model.tracker import Tracker
from sipflow.sip.parse import parse_message

ALICE = Endpoint("10.0.0.1", 5060)
PROXY = Endpoint("10.0.0.2", 5060)
BOB = Endpoint("10.0.0.3", 5060)

SDP = (
    "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def request(
    method: str,
    *,
    branch: str = "z9hG4bK-1",
    cseq: int = 1,
    cseq_method: str | None = None,
    call_id: str = "call-1@10.0.0.1",
    from_tag: str = "a1",
    to_tag: str | None = None,
    vias: tuple[str, ...] = ("10.0.0.1:5060",),
    branches: tuple[str, ...] | None = None,
    body: str = "",
    extra: str = "",
) -> bytes:
    branches = branches or (branch,) * len(vias)
    via_lines = "".join(
        f"Via: SIP/2.0/UDP {v}" + (f";branch={b}" if b else "") + "\r\n"
        for v, b in zip(vias, branches, strict=True)
    )
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} sip:bob@example.com SIP/2.0\r\n{via_lines}"
        f'From: "Alice" <sip:alice@example.com>;tag={from_tag}\r\nTo: {to}\r\n'
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {cseq_method or method}\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:alice@10.0.0.1>\r\n{extra}"
    )
    if body:
        text += "Content-Type: application/sdp\r\n"
    text += f"Content-Length: {len(body)}\r\n\r\n{body}"
    return text.encode()


def response(
    req: bytes, status: int, reason: str, *, to_tag: str | None = None, vias: int | None = None
) -> bytes:
    """A response to ``req`` (its Via, From, To, Call-ID and CSeq), optionally dropping top Vias."""
    head = req.split(b"\r\n\r\n", 1)[0].decode()
    lines = head.split("\r\n")[1:]
    via_lines = [line for line in lines if line.startswith("Via:")]
    if vias is not None:
        via_lines = via_lines[len(via_lines) - vias :]
    keep = [line for line in lines if line.split(":", 1)[0] in ("From", "Call-ID", "CSeq")]
    to_line = next(line for line in lines if line.startswith("To:"))
    if to_tag and ";tag=" not in to_line:
        to_line += f";tag={to_tag}"
    text = (
        f"SIP/2.0 {status} {reason}\r\n"
        + "\r\n".join([*via_lines, *keep, to_line])
        + "\r\nContent-Length: 0\r\n\r\n"
    )
    return text.encode()


class Feeder:
    """Feeds literal messages to a tracker with increasing frame numbers."""

    def __init__(self) -> None:
        self.tracker = Tracker()
        self.frame = 0

    def __call__(self, t: float, src: Endpoint, dst: Endpoint, data: bytes) -> Message:
        self.frame += 1
        packet = SipPayload(
            frame=self.frame,
            frames=(self.frame,),
            timestamp=1_700_000_000.0 + t,
            src=src,
            dst=dst,
            transport=Transport.UDP,
            payload=data,
            file="test.pcap",
        )
        return self.tracker.feed(packet, parse_message(data))
