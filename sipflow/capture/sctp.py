"""SCTP DATA chunk reassembly (sans-I/O): user messages out of DATA chunks, SIP among them.

:class:`SctpReassembler` is fed the DATA chunks of SCTP packets (RFC 9260 §3.3.1: flags, TSN,
stream identifier, user data), one at a time, with the addresses and ports of their packet
(raw octets), and returns the SIP message a chunk completes, if any. SIP over SCTP (RFC 4168)
puts one SIP message in one SCTP user message, and the PPID is left 0, so content decides, as
for UDP. A user message larger than the path MTU is sent in fragments (RFC 9260 §6.9): the
first carries the B flag, the last the E flag, and their TSNs are consecutive (modulo 2³²).
Fragments are joined per association direction and stream; a fragment out of TSN order (a
lost or reordered chunk) drops the message. At most :data:`MAX_PENDING` messages wait for
their last fragment, the oldest dropped beyond that.

The common header and the chunk walk are the decoder's (:mod:`sipflow.capture.transport`).
"""

from __future__ import annotations

from typing import Final

from sipflow.capture import detect
from sipflow.capture.ip import format_address
from sipflow.capture.types import Endpoint, SipPayload, Transport, make_sip_payload

MAX_PENDING: Final = 1024
"""Fragmented SCTP messages waiting for their last fragment (oldest dropped beyond this)."""


class SctpReassembler:
    """Joins the fragments of SCTP user messages; hands out those that carry SIP."""

    def __init__(self, *, file: str = "") -> None:
        self.file = file
        """Name of the capture, copied into every packet."""
        self._pending: dict[tuple[bytes, int, bytes, int, int], tuple[int, list[bytes], list[int]]] = {}
        """By (source, source port, destination, destination port, stream): the TSN of the
        last fragment, the fragments and their frames."""

    def data(
        self,
        frame: int,
        ts: float,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        tsn: int,
        stream: int,
        flags: int,
        chunk: bytes,
    ) -> SipPayload | None:
        """One DATA chunk; fragments (B/E flags, RFC 9260 §6.9) are joined in TSN order."""
        key = (src, sport, dst, dport, stream)
        begin, last = flags & 0x02, flags & 0x01
        frames: tuple[int, ...]
        if begin and last:
            payload, frames = chunk, (frame,)
        else:
            pending = self._pending
            if begin:
                if len(pending) >= MAX_PENDING:
                    pending.pop(next(iter(pending)))
                pending[key] = (tsn, [chunk], [frame])
                return None
            got = pending.get(key)
            if got is None or (got[0] + 1) & 0xFFFFFFFF != tsn:
                pending.pop(key, None)
                return None
            got[1].append(chunk)
            got[2].append(frame)
            if not last:
                pending[key] = (tsn, got[1], got[2])
                return None
            del pending[key]
            payload, frames = b"".join(got[1]), tuple(sorted(set(got[2])))
        if not detect.is_sip_start(payload):
            return None
        return make_sip_payload(
            frame=frame,
            frames=frames,
            timestamp=ts,
            src=Endpoint(format_address(src), sport),
            dst=Endpoint(format_address(dst), dport),
            transport=Transport.SCTP,
            payload=payload,
            file=self.file,
        )
