"""IP helpers, sans-I/O: address text, IPv6 extension headers, fragment reassembly.

:class:`FragmentReassembler` rebuilds IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200 §4.5) datagrams
from their fragments. It is fed fragments with their capture timestamps (time is an argument,
never the wall clock), tolerates duplicate and overlapping fragments (the first copy of a byte
wins, as in BSD stacks), and keeps memory bounded: pending datagrams expire after
``timeout`` seconds of capture time, the oldest are evicted when ``max_pending`` datagrams
or ``max_bytes`` octets are pending, and a datagram that collects more than ``max_fragments``
fragments (a flood of duplicates) is dropped. The work per fragment is logarithmic in the
fragments of its datagram plus linear in its length, never in the fragments that came before.
"""

from __future__ import annotations

import socket
from bisect import bisect_left, bisect_right
from collections import OrderedDict
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
    """A datagram whose fragments are being collected (mutable, internal to the reassembler).

    Returned in the reassembler's ``dropped`` list too, where only ``key``, ``frames``,
    ``reason`` and ``silent`` matter to the caller.
    """

    key: Hashable
    first_ts: float
    data: bytearray = field(default_factory=bytearray)
    """The octets received so far, at their offsets (the first copy of each octet); holes are zero."""
    starts: list[int] = field(default_factory=list)
    """Starts of the ranges received, sorted; with ``ends``, disjoint ranges never adjacent
    (touching ones are merged), so the datagram is complete when one range covers it."""
    ends: list[int] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    """Frames of the fragments, in arrival order, each once."""
    frame_set: set[int] = field(default_factory=set)
    fragments: int = 0
    """Fragments received, duplicates included."""
    total: int | None = None
    """Datagram payload length, known once the last fragment (MF/M clear) has arrived."""
    extra: int = 0
    """Caller data from the offset-0 fragment (the IPv6 next header)."""
    have_first: bool = False
    overlapping: bool = False
    """Some fragments overlapped with different content (first copy kept)."""
    reason: str = ""
    """Why the datagram was dropped, when the reassembler knows better than the caller."""
    silent: bool = False
    """A fragment of a datagram already dropped and reported: count it, do not warn again."""

    @property
    def size(self) -> int:
        """Octets held for this datagram."""
        return len(self.data)


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

MAX_FRAGMENTS: Final = 4096
"""Fragments (duplicates included) one datagram may collect before it is dropped. A 64 KiB
datagram cut for the smallest IPv4 MTU (68 octets, RFC 791: 48 octets a fragment) has 1366;
captured twice, 2732."""


def _store(p: PendingDatagram, offset: int, piece: bytes) -> None:
    """Write the octets of ``piece`` that no earlier fragment carried; merge the ranges.

    Costs O(log r) to find the ranges the piece touches among the r held, plus O(len(piece));
    the ranges it touches are merged into one, so each range is visited once after it is
    created (the list update moves at most r references, r <= ``max_fragments``).
    """
    end = offset + len(piece)
    buf = p.data
    if len(buf) < end:
        buf.extend(bytes(end - len(buf)))
    starts, ends = p.starts, p.ends
    i = bisect_left(ends, offset)  # the first range ending at or after the piece's start
    j = bisect_right(starts, end, i)  # past the last range starting at or before its end
    pos = offset
    view = memoryview(piece)
    for k in range(i, j):
        s, e = starts[k], ends[k]
        if s > pos:
            buf[pos:s] = view[pos - offset : s - offset]
        lo, hi = max(s, offset), min(e, end)
        if lo < hi and not p.overlapping and buf[lo:hi] != view[lo - offset : hi - offset]:
            p.overlapping = True  # first copy wins (BSD stacks; RFC 5722 would drop the datagram)
        pos = max(pos, e)
    if pos < end:
        buf[pos:end] = view[pos - offset :]
    if j > i:
        starts[i:j] = [min(offset, starts[i])]
        ends[i:j] = [max(end, ends[j - 1])]
    else:
        starts.insert(i, offset)
        ends.insert(i, end)


class FragmentReassembler:
    """Collects fragments per datagram key and hands back complete payloads.

    The key is the caller's: RFC 791 §3.2 (source, destination, protocol, identification) for
    IPv4, RFC 8200 §4.5 (source, destination, identification) for IPv6.

    Each fragment costs O(log f + its length) for a datagram of f fragments: the octets go
    into one buffer at their offset and the ranges received are kept sorted and merged, so
    duplicates and overlaps are found by bisection and completion is one comparison. A
    datagram that collects more than ``max_fragments`` fragments is dropped once (reported
    with its reason) and its later fragments are dropped silently for ``timeout`` seconds.
    """

    __slots__ = (
        "_dead",
        "_pending",
        "_pending_bytes",
        "max_bytes",
        "max_fragments",
        "max_pending",
        "timeout",
    )

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        max_pending: int = 4096,
        max_bytes: int = 64 << 20,
        max_fragments: int = MAX_FRAGMENTS,
    ) -> None:
        self.timeout = timeout
        """Seconds of capture time a datagram may wait for its missing fragments."""
        self.max_pending = max_pending
        """Datagrams collected at once; the oldest is dropped beyond this."""
        self.max_bytes = max_bytes
        """Octets held by all pending datagrams; the oldest are dropped beyond this."""
        self.max_fragments = max_fragments
        """Fragments (duplicates included) one datagram may collect before it is dropped."""
        # OrderedDict: the oldest entry is found and removed in O(1), however many went before
        # it (a plain dict scans the slots its deleted entries leave at its front).
        self._pending: OrderedDict[Hashable, PendingDatagram] = OrderedDict()
        self._pending_bytes = 0
        self._dead: OrderedDict[Hashable, float] = OrderedDict()
        """Datagrams dropped for too many fragments, with the capture time of the drop."""

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        """Octets held by the pending datagrams."""
        return self._pending_bytes

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
        were evicted to respect the bounds, became impossible (a fragment beyond
        :data:`MAX_DATAGRAM`) or collected too many fragments (``reason`` says so); the caller
        reports them. A fragment of a datagram already dropped for too many fragments comes
        back alone, marked ``silent``: to be counted, not reported again.
        """
        dropped = self.expire(timestamp)
        if key in self._dead:
            dropped.append(PendingDatagram(key, timestamp, frames=[frame], silent=True))
            return None, dropped
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
        if frame not in pending.frame_set:
            pending.frame_set.add(frame)
            pending.frames.append(frame)
        pending.fragments += 1
        if pending.fragments > self.max_fragments:
            self._remove(key)
            pending.reason = f"more than {self.max_fragments} fragments"
            pending.data = bytearray()
            self._dead[key] = timestamp
            if len(self._dead) > self.max_pending:
                self._dead.popitem(last=False)
            dropped.append(pending)
            return None, dropped
        if data:
            before = len(pending.data)
            _store(pending, offset, data)
            self._pending_bytes += len(pending.data) - before
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
        limit = now - self.timeout
        dead = self._dead
        while dead and next(iter(dead.values())) < limit:
            dead.popitem(last=False)
        pending = self._pending
        while pending:
            key = next(iter(pending))
            if pending[key].first_ts >= limit:
                break  # insertion order is capture order: the rest are younger
            dropped.append(self._remove(key))
        return dropped

    def drain(self) -> list[PendingDatagram]:
        """Drop and return every pending datagram (the capture ended)."""
        dropped = list(self._pending.values())
        self._pending.clear()
        self._dead.clear()
        self._pending_bytes = 0
        return dropped

    def _remove(self, key: Hashable) -> PendingDatagram:
        pending = self._pending.pop(key)
        self._pending_bytes -= pending.size
        return pending

    @staticmethod
    def _complete(pending: PendingDatagram) -> Reassembled | None:
        total = pending.total
        # The ranges are merged: the datagram is complete when the first one covers it.
        if total is None or not pending.have_first or not pending.starts:
            return None
        if pending.starts[0] != 0 or pending.ends[0] < total:
            return None
        payload = bytes(pending.data[:total])
        return Reassembled(payload, tuple(pending.frames), pending.extra, pending.overlapping)
