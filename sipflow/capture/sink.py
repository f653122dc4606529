"""Consumers of the payloads that carry no SIP: where media analysis plugs into the decoder.

The decoder's job is SIP, and most frames of a VoIP capture are not: RTP and RTCP (RFC 3550),
STUN (RFC 8489), DTLS, DNS. Without a sink it only counts them (``CaptureStats.non_sip``), on
a fast path that rejects an RTP frame with one ``struct`` call. Given a :class:`PayloadSink`,
it also hands each such payload to the sink, as offsets into the frame's buffer, so that an
RTP analysis can be written without touching (or slowing) any SIP code.

A sink sees exactly what is counted, in capture order: every UDP payload that is not SIP,
HEP or VXLAN (after IP reassembly) through :meth:`PayloadSink.datagram`, and every RTP, RTCP
or STUN packet framed out of an RFC 4571 TCP stream through :meth:`PayloadSink.framed`.

The buffer is only valid during the call (the reader reuses it): a sink copies what it keeps.
"""

from __future__ import annotations

from typing import Protocol

from sipflow.capture.types import Endpoint


class PayloadSink(Protocol):
    """What the decoder calls for each payload that carries no SIP."""

    def datagram(
        self,
        kind: str,
        frame: int,
        timestamp: float,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        data: bytes,
        start: int,
        end: int,
    ) -> None:
        """One UDP payload, ``data[start:end]`` (after the UDP header, within the UDP and IP
        lengths and the captured octets).

        ``kind`` is the decoder's classification (``detect.RTP``, ``detect.RTCP``,
        ``detect.STUN``, ``detect.DTLS``, ``detect.DNS``, ``detect.OTHER_UDP`` ...: the keys of
        ``CaptureStats.non_sip``). ``src`` and ``dst`` are the innermost IP header's addresses
        as packed octets (4 for IPv4, 16 for IPv6; ``capture.ip.format_address`` writes them
        as text): formatting them per packet would cost more than the decoding. ``frame`` is
        the frame that completed the datagram (the last fragment).
        """

    def framed(
        self,
        kind: str,
        frame: int,
        timestamp: float,
        src: Endpoint,
        dst: Endpoint,
        data: bytes | bytearray,
        start: int,
        end: int,
    ) -> None:
        """One packet framed out of an RFC 4571 TCP stream, ``data[start:end]`` (after its
        16-bit length); ``frame`` and ``timestamp`` are those of the segment that completed it.
        """


class CollectingSink:
    """A sink that keeps a copy of every payload (tests and small captures)."""

    def __init__(self) -> None:
        self.datagrams: list[tuple[str, int, float, bytes, int, bytes, int, bytes]] = []
        """``(kind, frame, timestamp, src, sport, dst, dport, payload)`` per UDP payload."""
        self.frames: list[tuple[str, int, float, Endpoint, Endpoint, bytes]] = []
        """``(kind, frame, timestamp, src, dst, payload)`` per RFC 4571 packet."""

    def datagram(
        self,
        kind: str,
        frame: int,
        timestamp: float,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        data: bytes,
        start: int,
        end: int,
    ) -> None:
        self.datagrams.append(
            (kind, frame, timestamp, bytes(src), sport, bytes(dst), dport, bytes(data[start:end]))
        )

    def framed(
        self,
        kind: str,
        frame: int,
        timestamp: float,
        src: Endpoint,
        dst: Endpoint,
        data: bytes | bytearray,
        start: int,
        end: int,
    ) -> None:
        self.frames.append((kind, frame, timestamp, src, dst, bytes(data[start:end])))
