"""The neutral types the capture layer hands to everything above it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, NamedTuple, Protocol

SIP_METHODS: Final = (
    "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH",
    "INFO", "REFER", "MESSAGE", "UPDATE",
)  # fmt: skip
"""The SIP methods of RFC 3261 §27.4 and those registered since (IANA "Methods"): what the
capture layer recognises a request by, and what a ``check`` flow pattern may name."""


class Transport(StrEnum):
    """The transport a SIP message travelled on (the Via transport names of RFC 3261 §18)."""

    UDP = "UDP"
    TCP = "TCP"
    SCTP = "SCTP"
    TLS = "TLS"
    WS = "WS"
    WSS = "WSS"


class Endpoint(NamedTuple):
    """An IP address and a port, as seen on the wire."""

    host: str
    """IPv4 dotted quad or compressed IPv6 text (``2001:db8::1``)."""
    port: int

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SipPayload:
    """One SIP-bearing payload unit.

    For UDP, one datagram payload (after IP reassembly). For TCP (and other streams), one
    message framed out of the reassembled byte stream (RFC 3261 §18.3), so a segment carrying
    two messages yields two packets and a message spread over three segments yields one.
    """

    frame: int
    """1-based number of the frame (in its file) that completed this payload."""
    frames: tuple[int, ...]
    """Every frame that carried a part of the payload, in order (``frame`` is among them)."""
    timestamp: float
    """Capture time of ``frame``, seconds since the Unix epoch."""
    src: Endpoint
    dst: Endpoint
    transport: Transport
    payload: bytes
    truncated: bool = False
    """True when the payload was cut short (snaplen, capture ended inside a TCP message)."""
    file: str = ""
    """Path of the capture file the packet came from, as given by the caller."""
    interface: int = 0
    """The pcapng interface id of the frame that completed the payload (0 for pcap): with
    ``file``, the capture point (``sipflow.merge``)."""
    ip_id: int | None = None
    """The IPv4 identification of a UDP datagram (RFC 791; RFC 6864): the same value, the
    same bytes and the same addresses twice at one capture point within milliseconds are one
    datagram captured twice. None for IPv6 (no identification outside fragments), TCP and
    encapsulated (HEP) messages."""

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # Flat and without the enum's lookup: packets cross to and from worker processes
        # (``sipflow.pipeline``) by the hundred thousand, so unpickling one must be cheap.
        return restore_sip_payload, (
            self.frame, self.frames, self.timestamp, self.src[0], self.src[1], self.dst[0], self.dst[1],
            self.transport.value, self.payload, self.truncated, self.file, self.interface, self.ip_id,
        )  # fmt: skip


_TRANSPORTS: dict[str, Transport] = {t.value: t for t in Transport}
_PACKET_FIELDS = ("frame", "frames", "timestamp", "src", "dst", "transport", "payload", "truncated", "file",
                  "interface", "ip_id")  # fmt: skip
_PACKET_SETTERS = tuple(getattr(SipPayload, name).__set__ for name in _PACKET_FIELDS)


def restore_sip_payload(
    frame: int, frames: tuple[int, ...], timestamp: float, src_host: str, src_port: int,
    dst_host: str, dst_port: int, transport: str, payload: bytes, truncated: bool, file: str,
    interface: int, ip_id: int | None,
) -> SipPayload:  # fmt: skip
    """The packet ``SipPayload.__reduce__`` describes (its slots set directly: the class is frozen)."""
    packet = object.__new__(SipPayload)
    values = (
        frame, frames, timestamp, Endpoint(src_host, src_port), Endpoint(dst_host, dst_port),
        _TRANSPORTS[transport], payload, truncated, file, interface, ip_id,
    )  # fmt: skip
    for set_field, value in zip(_PACKET_SETTERS, values, strict=True):
        set_field(packet, value)
    return packet


def make_sip_payload(
    *,
    frame: int,
    timestamp: float,
    src: Endpoint,
    dst: Endpoint,
    transport: Transport,
    payload: bytes,
    frames: tuple[int, ...] = (),
    truncated: bool = False,
    file: str = "",
    ip_id: int | None = None,
) -> SipPayload:
    """The packet a decoder hands up: the one place the capture layer builds a :class:`SipPayload`.

    ``frames``: every frame that carried a part of the payload, in order; empty (the default)
    means ``frame`` alone. The pcapng interface is the reader's to set (0 until then).
    """
    return SipPayload(
        frame=frame,
        frames=frames or (frame,),
        timestamp=timestamp,
        src=src,
        dst=dst,
        transport=transport,
        payload=payload,
        truncated=truncated,
        file=file,
        ip_id=ip_id,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureWarning:
    """A problem inside a readable capture: reported, skipped, and the run goes on."""

    file: str
    message: str
    frame: int | None = None
    offset: int | None = None
    """Byte offset in the file, where the problem is tied to a place in it."""

    def __str__(self) -> str:
        where = [self.file]
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        return f"{', '.join(where)}: {self.message}"


@dataclass(slots=True)
class CaptureStats:
    """Counters a reader keeps while it streams a file (mutable: the reader fills it in)."""

    frames: int = 0
    """Records read from the file."""
    sip_packets: int = 0
    """Packets handed up as SIP candidates."""
    non_sip: dict[str, int] = field(default_factory=dict)
    """Frames that carried no SIP, by kind (``RTP``, ``TLS``, ``DNS``, ``other UDP``, ``ARP``...)."""
    unsupported: dict[str, int] = field(default_factory=dict)
    """Frames that could not be decoded, by reason (e.g. ``link type 147``)."""
    truncated: bool = False
    """The file ended inside a record, or a corrupt record stopped reading (partial result)."""

    def count_non_sip(self, kind: str, n: int = 1) -> None:
        self.non_sip[kind] = self.non_sip.get(kind, 0) + n

    def count_unsupported(self, reason: str, n: int = 1) -> None:
        self.unsupported[reason] = self.unsupported.get(reason, 0) + n

    @property
    def non_sip_packets(self) -> int:
        return sum(self.non_sip.values())

    @classmethod
    def total(cls, stats: Iterable[CaptureStats]) -> CaptureStats:
        """The counters of several readers added up (``truncated``: any of them)."""
        out = cls()
        for s in stats:
            out.frames += s.frames
            out.sip_packets += s.sip_packets
            for kind, n in s.non_sip.items():
                out.count_non_sip(kind, n)
            for reason, n in s.unsupported.items():
                out.count_unsupported(reason, n)
            out.truncated = out.truncated or s.truncated
        return out


class CaptureSource(Protocol):
    """What ``sipflow.pipeline`` reads one capture through: a ``CaptureReader`` over a file or
    a stream, or the packets of a file kept elsewhere (an archive's, ``sipflow.archive``).
    Iterating it yields the file's SIP-bearing payloads in capture order, filling in
    ``stats``, ``warnings`` and ``seen_interfaces`` as it goes."""

    name: str
    """The file's label in packets, warnings and errors."""
    size: int
    """Octets in all (for progress; 0 where unknown)."""
    reopenable: bool
    """A regular file, which a worker process or a second pass can open and read again."""
    interfaces: tuple[str, ...]
    """The names of the interfaces the file describes before its first packet."""
    stats: CaptureStats
    warnings: list[CaptureWarning]
    seen_interfaces: set[int]

    @property
    def live(self) -> bool:
        """A stream: packets are handed up as they arrive."""
        ...

    @property
    def position(self) -> int:
        """Octets consumed so far."""
        ...

    def __iter__(self) -> Iterator[SipPayload]: ...
