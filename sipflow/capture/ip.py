"""IP helpers, sans-I/O: address text, IPv6 extension headers, fragment reassembly.

:class:`FragmentReassembler` rebuilds IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200 §4.5) datagrams
from their fragments. It is fed fragments with their capture timestamps (time is an argument,
never the wall clock), tolerates duplicate and overlapping fragments (the first copy of a byte
wins, as in BSD stacks), and keeps memory bounded: pending datagrams expire after
``timeout`` seconds of capture time and the oldest are evicted when ``max_pending`` datagrams
or ``max_bytes`` octets are pending.
"""

from __future__ import annotations

import socket
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final

_IPV6_FORMAT_CACHE: dict[bytes, str] = {}
_CACHE_MAX: Final = 65536


def format_ipv4(addr: bytes) -> str:
    """Dotted-quad text of a 4-octet IPv4 address."""
    return f"{addr[0]}.{addr[1]}.{addr[2]}.{addr[3]}"


def format_ipv6(addr: bytes) -> str:
    """Compressed text (RFC 5952) of a 16-octet IPv6 address."""
    text = _IPV6_FORMAT_CACHE.get(addr)
    if text is None:
        text = socket.inet_ntop(socket.AF_INET6, addr)
        if len(_IPV6_FORMAT_CACHE) >= _CACHE_MAX:
            _IPV6_FORMAT_CACHE.clear()
        _IPV6_FORMAT_CACHE[addr] = text
    return text


def format_address(addr: bytes) -> str:
    """Text of an IPv4 (4 octets) or IPv6 (16 octets) address."""
    return format_ipv4(addr) if len(addr) == 4 else format_ipv6(addr)


# --- IPv6 extension headers (RFC 8200 §4) -----------------------------------------------------

HOP_BY_HOP: Final = 0
ROUTING: Final = 43
FRAGMENT: Final = 44
ESP: Final = 50
AH: Final = 51
NO_NEXT_HEADER: Final = 59
DEST_OPTS: Final = 60
MOBILITY: Final = 135
HIP: Final = 139
SHIM6: Final = 140

# Headers with the generic (next header, length in 8-octet units beyond the first 8) layout:
# RFC 8200 §4.3, §4.4, §4.6; RFC 6275 §6.1 (mobility); RFC 7401 §5.1 (HIP); RFC 5533 §5 (shim6);
# RFC 3692 / RFC 4727 experimental values 253 and 254.
_GENERIC_EXTENSIONS: Final = frozenset((HOP_BY_HOP, ROUTING, DEST_OPTS, MOBILITY, HIP, SHIM6, 253, 254))


class MalformedHeader(ValueError):
    """A header that cannot be walked (length beyond the data)."""


@dataclass(frozen=True, slots=True)
class Ipv6Fragment:
    """The fields of an IPv6 Fragment header (RFC 8200 §4.5)."""

    next_header: int
    """Next Header of the fragmentable part (meaningful in the offset-0 fragment)."""
    offset: int
    """Fragment offset in octets."""
    more: bool
    """The M flag: more fragments follow."""
    ident: int
    """Identification."""
    data_start: int
    """Offset in the buffer where the fragment's data begins."""


def walk_ipv6_extensions(
    data: bytes | bytearray, nh: int, off: int, end: int
) -> tuple[int, int, Ipv6Fragment | None]:
    """Skip IPv6 extension headers from ``off``; return (upper-layer protocol, its offset, fragment).

    Stops at the first non-extension header (UDP, TCP, ESP, ...) or at a Fragment header, whose
    fields are returned (the rest of the chain belongs to the fragmentable part, RFC 8200 §4.5).
    Raises :class:`MalformedHeader` if a header runs past ``end``.
    """
    for _ in range(64):  # a chain longer than this is an attack, not a packet
        if nh in _GENERIC_EXTENSIONS:
            if off + 8 > end:
                raise MalformedHeader(f"IPv6 extension header {nh} cut short")
            nxt = data[off]
            off += (data[off + 1] + 1) * 8
            nh = nxt
        elif nh == AH:
            # RFC 4302 §2.2: Payload Len is in 4-octet units, minus 2.
            if off + 8 > end:
                raise MalformedHeader("IPv6 AH header cut short")
            nxt = data[off]
            off += (data[off + 1] + 2) * 4
            nh = nxt
        elif nh == FRAGMENT:
            if off + 8 > end:
                raise MalformedHeader("IPv6 fragment header cut short")
            word = data[off + 2] << 8 | data[off + 3]
            ident = int.from_bytes(data[off + 4 : off + 8], "big")
            return nh, off + 8, Ipv6Fragment(data[off], word & 0xFFF8, bool(word & 1), ident, off + 8)
        else:
            if off > end:
                raise MalformedHeader(f"IPv6 extension header before {nh} runs past the packet")
            return nh, off, None
        if off > end:
            raise MalformedHeader("IPv6 extension header runs past the packet")
    raise MalformedHeader("IPv6 extension header chain too long")


# --- fragment reassembly ----------------------------------------------------------------------


@dataclass(slots=True)
class PendingDatagram:
    """A datagram whose fragments are being collected (mutable, internal to the reassembler)."""

    key: Hashable
    first_ts: float
    pieces: list[tuple[int, bytes]] = field(default_factory=list)
    """(offset, data) in arrival order."""
    frames: list[int] = field(default_factory=list)
    total: int | None = None
    """Datagram payload length, known once the last fragment (MF/M clear) has arrived."""
    size: int = 0
    """Octets held (duplicates included)."""
    extra: int = 0
    """Caller data from the offset-0 fragment (the IPv6 next header)."""
    have_first: bool = False


@dataclass(frozen=True, slots=True)
class Reassembled:
    """A complete datagram payload rebuilt from its fragments."""

    payload: bytes
    frames: tuple[int, ...]
    """Frames of every fragment, in capture order (duplicates included once)."""
    extra: int
    """What the caller stored with the offset-0 fragment (IPv6: the upper-layer next header)."""
    overlapping: bool
    """Some fragments overlapped with different content (first copy kept)."""


MAX_DATAGRAM: Final = 65535 + 65535
"""Largest payload accepted: IPv4 offset 8191·8 plus a maximal last fragment, IPv6 likewise."""


class FragmentReassembler:
    """Collects fragments per datagram key and hands back complete payloads.

    The key is the caller's: RFC 791 §3.2 (source, destination, protocol, identification) for
    IPv4, RFC 8200 §4.5 (source, destination, identification) for IPv6.
    """

    __slots__ = ("_pending", "_pending_bytes", "max_bytes", "max_pending", "timeout")

    def __init__(self, *, timeout: float = 30.0, max_pending: int = 4096, max_bytes: int = 64 << 20) -> None:
        self.timeout = timeout
        """Seconds of capture time a datagram may wait for its missing fragments."""
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        self._pending: dict[Hashable, PendingDatagram] = {}
        self._pending_bytes = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self,
        key: Hashable,
        offset: int,
        more: bool,
        data: bytes,
        frame: int,
        timestamp: float,
        *,
        extra: int = 0,
    ) -> tuple[Reassembled | None, list[PendingDatagram]]:
        """Add one fragment; return (the completed datagram or None, datagrams dropped).

        Dropped datagrams are those that expired (older than ``timeout`` at ``timestamp``),
        were evicted to respect the bounds, or became impossible (a fragment beyond
        :data:`MAX_DATAGRAM`); the caller reports them.
        """
        dropped = self.expire(timestamp)
        end = offset + len(data)
        pending = self._pending.get(key)
        if end > MAX_DATAGRAM:
            if pending is not None:
                dropped.append(self._remove(key))
            impossible = PendingDatagram(key, timestamp, frames=[frame])
            dropped.append(impossible)
            return None, dropped
        if pending is None:
            pending = PendingDatagram(key, timestamp)
            self._pending[key] = pending
        pending.pieces.append((offset, data))
        if frame not in pending.frames:
            pending.frames.append(frame)
        pending.size += len(data)
        self._pending_bytes += len(data)
        if offset == 0:
            if not pending.have_first:
                pending.extra = extra
            pending.have_first = True
        if not more and (pending.total is None or end < pending.total):
            pending.total = end
        result = self._complete(pending)
        if result is not None:
            self._remove(key)
            return result, dropped
        while len(self._pending) > self.max_pending or self._pending_bytes > self.max_bytes:
            oldest = next(iter(self._pending))
            if oldest == key and len(self._pending) == 1:
                break
            dropped.append(self._remove(oldest))
        return None, dropped

    def expire(self, now: float) -> list[PendingDatagram]:
        """Drop and return the datagrams whose first fragment is older than ``timeout``."""
        dropped: list[PendingDatagram] = []
        if not self._pending:
            return dropped
        limit = now - self.timeout
        for key in list(self._pending):
            if self._pending[key].first_ts >= limit:
                break  # insertion order is capture order: the rest are younger
            dropped.append(self._remove(key))
        return dropped

    def drain(self) -> list[PendingDatagram]:
        """Drop and return every pending datagram (the capture ended)."""
        dropped = list(self._pending.values())
        self._pending.clear()
        self._pending_bytes = 0
        return dropped

    def _remove(self, key: Hashable) -> PendingDatagram:
        pending = self._pending.pop(key)
        self._pending_bytes -= pending.size
        return pending

    @staticmethod
    def _complete(pending: PendingDatagram) -> Reassembled | None:
        total = pending.total
        if total is None or not pending.have_first or pending.size < total:
            return None
        # Coverage check over the sorted intervals.
        covered = 0
        for off, piece in sorted(pending.pieces, key=lambda p: p[0]):
            if off > covered:
                return None
            covered = max(covered, off + len(piece))
            if covered >= total:
                break
        if covered < total:
            return None
        out = bytearray(total)
        seen = bytearray(total)
        overlapping = False
        for off, piece in pending.pieces:
            stop = min(off + len(piece), total)
            if stop <= off:
                continue
            n = stop - off
            if seen.find(1, off, stop) < 0:
                out[off:stop] = piece[:n]
            else:
                # First copy wins: write only the octets not written yet.
                for i in range(n):
                    if not seen[off + i]:
                        out[off + i] = piece[i]
                    elif out[off + i] != piece[i]:
                        overlapping = True
            seen[off:stop] = b"\x01" * n
        return Reassembled(bytes(out), tuple(pending.frames), pending.extra, overlapping)
