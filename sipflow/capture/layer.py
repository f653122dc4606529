"""What the layers of the frame decoder share, sans-I/O: its state, how it counts and warns.

:class:`~sipflow.capture.decode.Decoder` is one class assembled from a mixin per layer, each in
its own module: :mod:`.link` (link types, Ethernet, VLAN, MPLS, PPP), :mod:`.tunnel` (GRE and
ERSPAN), :mod:`.network` (IPv4, RFC 791; IPv6, RFC 8200) and :mod:`.transport` (UDP, RFC 768;
TCP, RFC 9293; SCTP, RFC 9260; HEP). A layer hands a packet to the next one by a plain method
call on ``self``, so splitting the decoder costs no call and no indirection per frame. Each
mixin inherits :class:`Layer`, which declares the attributes the decoder sets up in its
constructor and, for the type checker only, the entry point of each layer that another layer
calls (its signature is checked against the mixin that implements it).

Whatever cannot be decoded is counted in :class:`~sipflow.capture.types.CaptureStats` and, when
it is damage rather than a kind of traffic, described by a warning (:meth:`Layer.warn`, at most
``max_warnings`` of them): an observer's violations are data, never an exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from sipflow.capture.ip import FragmentReassembler
from sipflow.capture.sctp import SctpReassembler
from sipflow.capture.sink import PayloadSink
from sipflow.capture.tcp import TcpReassembler
from sipflow.capture.types import CaptureStats, CaptureWarning, SipPayload

MAX_DEPTH: Final = 8
"""Tunnels nested deeper than this are not followed (a loop in a crafted packet)."""

EMPTY: Final[tuple[int, ...]] = ()
"""No frames besides the current one: a packet that was not reassembled from fragments."""


class Layer:
    """The state every layer of the decoder reads, and its counting and warning helpers."""

    file: str
    stats: CaptureStats
    warnings: list[CaptureWarning]
    max_warnings: int
    sink: PayloadSink | None
    _suppressed: int
    _unknown_linktypes: set[int]
    _frag4: FragmentReassembler
    _frag6: FragmentReassembler
    _tcp: TcpReassembler
    _sctp_reassembler: SctpReassembler
    _ip_id: int | None

    def warn(self, message: str, frame: int | None = None) -> None:
        """Record a warning (at most ``max_warnings``; the rest are counted)."""
        if len(self.warnings) < self.max_warnings:
            self.warnings.append(CaptureWarning(file=self.file, message=message, frame=frame))
        else:
            self._suppressed += 1

    def _malformed(self, frame: int, layer: str, why: str) -> list[SipPayload]:
        self.stats.count_unsupported(f"malformed {layer}")
        self.warn(f"malformed {layer}: {why}; skipped", frame)
        return []

    def _count(self, kind: str, n: int = 1) -> list[SipPayload]:
        c = self.stats.non_sip
        c[kind] = c.get(kind, 0) + n
        return []

    if TYPE_CHECKING:
        # The entry points by which one layer hands a packet to another, each implemented by
        # the mixin of its layer (declared here for mypy only: nothing is added to the lookup).

        def _ethernet(
            self, frame: int, ts: float, data: bytes, off: int, end: int, trunc: bool, depth: int
        ) -> list[SipPayload]: ...

        def _raw_ip(
            self, frame: int, ts: float, data: bytes, off: int, end: int, trunc: bool, depth: int
        ) -> list[SipPayload]: ...

        def _ipv4(
            self, frame: int, ts: float, data: bytes, off: int, end: int, trunc: bool, depth: int
        ) -> list[SipPayload]: ...

        def _ipv6(
            self, frame: int, ts: float, data: bytes, off: int, end: int, trunc: bool, depth: int
        ) -> list[SipPayload]: ...

        def _gre(
            self, frame: int, ts: float, data: bytes, p: int, end: int, cut: bool, depth: int
        ) -> list[SipPayload]: ...

        def _transport(
            self,
            frame: int,
            ts: float,
            proto: int,
            src: bytes,
            dst: bytes,
            data: bytes,
            p: int,
            end: int,
            cut: bool,
            missing: int,
            depth: int,
            frames: tuple[int, ...],
        ) -> list[SipPayload]: ...

        def _udp(
            self,
            frame: int,
            ts: float,
            src: bytes,
            dst: bytes,
            data: bytes,
            p: int,
            end: int,
            cut: bool,
            depth: int,
            frames: tuple[int, ...],
        ) -> list[SipPayload]: ...
