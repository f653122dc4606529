"""Copies of one message captured more than once are one message.

A *capture point* is a (file, interface) pair: two probes merged into one pcapng with
``mergecap`` are two capture points of one file, just as two files are two capture points.
The same message seen at two capture points is one message with ``copies``; so is one
datagram seen twice at one capture point (a SPAN of ingress and egress, a Linux ``any``
capture of a bridge and its member port, a VLAN trunk mirrored twice).

Sans-I/O: the pipeline reads the files; this module is fed packets (in capture-time order,
clock skew taken out) and their parsed messages, and timestamps as plain floats.

* :func:`duplicate_key` names the hop a message travelled: Call-ID, CSeq, method or status,
  top Via branch (RFC 3261 §8.1.1.7, §17), source and destination. Two captures of the same
  hop have the same key; a proxy's forwarded copy (another branch, another hop) does not.
* :func:`estimate_skew` compares the clocks of the capture points from messages seen at
  several.
* :class:`Deduplicator` holds each message for a short window of capture time and folds
  copies of it into it: from another capture point, the same key; at the same capture
  point, the same datagram (same key, same bytes, the same IPv4 identification where there
  is one). A retransmission is a new datagram of the same message: RFC 3261's timers send it
  at least T1/2 (250 ms) later, far outside the window, and over IPv4 with a new
  identification, so it is never folded and the model counts it.
"""

from __future__ import annotations

import bisect
import statistics
from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from sipflow.capture.types import Endpoint, SipPayload
from sipflow.sip.message import SipRequest, SipResponse

DEDUPE_WINDOW = 0.005
"""Seconds of capture time (after the clock skew is taken out) within which a message from
another capture point, or the same datagram at the same one, is the same message. Far below
RFC 3261's T1 (500 ms), so a retransmission is never taken for a copy."""

PRESCAN_PACKETS = 20_000
"""SIP packets of each file the pipeline reads ahead to estimate the clock skews."""

SKEW_DIGITS = 6
"""Estimated skews are rounded to this many decimals (a pcap's microsecond): no float noise."""

T = TypeVar("T")


class DuplicateKey(NamedTuple):
    """What two captures of one message on one hop have in common."""

    call_id: str
    cseq: int
    """CSeq sequence number (RFC 3261 §20.16)."""
    cseq_method: str
    method: str | None
    """The request's method; None for a response."""
    status: int | None
    """The response's status code; None for a request."""
    branch: str | None
    """Branch of the top Via (RFC 3261 §8.1.1.7): a hop's transaction."""
    src: Endpoint
    dst: Endpoint


def duplicate_key(packet: SipPayload, sip: SipRequest | SipResponse) -> DuplicateKey | None:
    """The key of ``sip`` as captured in ``packet``; None without a Call-ID or CSeq."""
    if sip.call_id is None or sip.cseq is None:
        return None
    branch = sip.branch
    if isinstance(sip, SipRequest):
        method, status = sip.method, None
    else:
        method, status = None, sip.status
    return DuplicateKey(
        sip.call_id, sip.cseq.seq, sip.cseq.method, method, status, branch, packet.src, packet.dst
    )


# --- clock skew ---------------------------------------------------------------------------


def estimate_skew(
    observations: Iterable[tuple[str, DuplicateKey, float]],
    files: Sequence[str],
    *,
    fixed: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """How far each capture point's clock runs ahead of the first one's, in seconds.

    ``observations`` are (capture point, key, capture time) triples; only the first time of
    a key at a point counts (a later one is a retransmission). A point's skew against another
    is the median of ``t_point - t_other`` over the keys both saw, so a few odd pairs (a
    capture that missed the original and caught a retransmission) do not move it.
    ``files[0]`` is the reference (skew 0) unless ``fixed`` gives it one; ``fixed`` skews are
    taken as they are. A point sharing nothing with the reference is placed through another
    point it shares messages with (the link with the most pairs first); a point linked to
    none is left out. Two points are linked only where what they share looks like copies of
    one traffic (``_copies``): consecutive files of one rotated capture share the
    retransmissions across each cut, which are none.

    Returns the skew of every point it could place, ``fixed`` and the reference included.
    """
    first: dict[str, dict[DuplicateKey, float]] = {f: {} for f in files}
    for file, key, ts in observations:
        seen = first.get(file)
        if seen is not None and key not in seen:
            seen[key] = ts
    times = {f: sorted(seen.values()) for f, seen in first.items()}
    placed: dict[str, float] = dict(fixed or {})
    if files and files[0] not in placed:
        placed[files[0]] = 0.0
    links: dict[tuple[str, str], tuple[int, float]] = {}
    """(a, b) -> (messages both saw, median of t_b - t_a)."""
    for i, a in enumerate(files):
        seen_a = first[a]
        for b in files[i + 1 :]:
            seen_b = first[b]
            diffs = [seen_b[k] - t for k, t in seen_a.items() if k in seen_b]
            if diffs:
                median = statistics.median(diffs)
                if _copies(times[a], times[b], diffs, median):
                    links[a, b] = (len(diffs), median)
    while True:
        best: tuple[int, str, float] | None = None
        for (a, b), (count, median) in links.items():
            if (a in placed) == (b in placed):
                continue
            new, skew = (b, placed[a] + median) if a in placed else (a, placed[b] - median)
            if best is None or count > best[0]:
                best = (count, new, skew)
        if best is None:
            return {f: placed[f] for f in files if f in placed}
        _, new, skew = best
        placed[new] = round(skew, SKEW_DIGITS)


def _copies(times_a: Sequence[float], times_b: Sequence[float], diffs: Sequence[float], skew: float) -> bool:
    """Whether the messages two capture points share are copies of one traffic taken with
    clocks ``skew`` apart: most pairs lie within ``DEDUPE_WINDOW`` of the skew, and they are
    at least half of what the point that saw less saw while both watched (a probe that sees
    a subset of the other's traffic is still one). Files that follow one another (a capture
    rotated every few minutes: ``tcpdump -G``, ``dumpcap -b``) share only the
    retransmissions across each cut: T1 apart and more, and few against the messages around
    the cut. ``times_a`` and ``times_b`` are sorted first times of each point's keys."""
    close = sum(abs(d - skew) <= DEDUPE_WINDOW for d in diffs)
    if 2 * close < len(diffs):
        return False
    lo, hi = max(times_a[0], times_b[0] - skew), min(times_a[-1], times_b[-1] - skew)
    if hi < lo:
        return False
    seen_a = bisect.bisect_right(times_a, hi) - bisect.bisect_left(times_a, lo)
    seen_b = bisect.bisect_right(times_b, hi + skew) - bisect.bisect_left(times_b, lo + skew)
    return 2 * close >= min(seen_a, seen_b)


# --- deduplication ------------------------------------------------------------------------


CapturePoint = tuple[str, int]
"""(file, interface id): where a packet was captured."""


def capture_point(packet: SipPayload) -> CapturePoint:
    return packet.file, packet.interface


@dataclass(frozen=True, slots=True, kw_only=True)
class Merged(Generic[T]):
    """An item as the :class:`Deduplicator` releases it."""

    packet: SipPayload
    """The first capture of the message (in time order)."""
    item: T
    """What the caller pushed with it (the parsed message, or a parse failure)."""
    copies: tuple[tuple[str, int], ...] = ()
    """(file, frame) of the other captures of the same message, in arrival order."""


@dataclass(slots=True)
class _Held(Generic[T]):
    packet: SipPayload
    item: T
    key: Hashable | None
    copies: list[SipPayload] = field(default_factory=list)

    def seen_at(self, point: CapturePoint) -> bool:
        if capture_point(self.packet) == point:
            return True
        return any(capture_point(c) == point for c in self.copies)

    def same_datagram(self, packet: SipPayload, point: CapturePoint) -> bool:
        """``packet`` repeats a capture of this message at ``point``: the same bytes and,
        where both have one, the same IPv4 identification (a new one is a new datagram)."""
        for seen in (self.packet, *self.copies):
            if capture_point(seen) != point or seen.payload != packet.payload:
                continue
            if seen.ip_id is None or packet.ip_id is None or seen.ip_id == packet.ip_id:
                return True
        return False


class Deduplicator(Generic[T]):
    """Folds further captures of a message into the first one seen.

    Push packets in capture-time order; each is held for ``window`` seconds of capture time
    (the time of the packets pushed since) and released, in the order pushed, once it is
    older than that. A pushed packet whose key matches a held message within ``window``
    seconds becomes a copy of it instead of a message of its own when it comes from a
    capture point that has not contributed to it yet, or when it is the same datagram
    again at a capture point that has (``_Held.same_datagram``). A packet pushed with key
    None (a malformed payload, a message without Call-ID or CSeq) is never merged but keeps
    its place in the order.

    >>> dedupe: Deduplicator[str] = Deduplicator()         # doctest: +SKIP
    >>> for packet in packets:                              # doctest: +SKIP
    ...     for merged in dedupe.push(packet, "...", key_of(packet)):
    ...         use(merged)
    >>> for merged in dedupe.flush(): use(merged)           # doctest: +SKIP
    """

    def __init__(self, window: float = DEDUPE_WINDOW, points: Sequence[CapturePoint] = ()) -> None:
        """``points``: the capture points in order of preference. A message keeps the packet
        of the first of them that caught it, whichever came first in time (within the window,
        after the skew is taken out, that is noise): its frame numbers are the reference
        capture's."""
        if window < 0:
            raise ValueError("window must not be negative")
        self.window = window
        self._rank = {point: i for i, point in enumerate(points)}
        self.duplicates = 0
        """Packets folded into another as copies so far."""
        self.doubled = 0
        """Of those, copies of a datagram at a capture point that had it already."""
        self._held: deque[_Held[T]] = deque()
        self._by_key: dict[Hashable, list[_Held[T]]] = {}

    def push(self, packet: SipPayload, item: T, key: Hashable | None) -> list[Merged[T]]:
        """Account for one packet; returns the items now older than the window, oldest first.

        ``key`` is the message's ``DuplicateKey``, or, where every packet comes from one
        capture point, simply its payload (the only copies there are of the same bytes, and
        hashing them is cheaper than parsing the key out of them)."""
        now = packet.timestamp
        held_items = self._held
        out = (
            self._release(now - self.window)
            if held_items and held_items[0].packet.timestamp < now - self.window
            else []
        )
        if key is not None:
            candidates = self._by_key.get(key)
            if candidates is not None:
                point = capture_point(packet)
                # The oldest held message this point has not added to yet: a point's copies
                # pair up in order with another point's (a double capture at each, say).
                match = next(
                    (
                        held
                        for held in candidates
                        if now - held.packet.timestamp <= self.window and not held.seen_at(point)
                    ),
                    None,
                )
                if match is None:
                    match = next(
                        (
                            held
                            for held in candidates
                            if now - held.packet.timestamp <= self.window
                            and held.same_datagram(packet, point)
                        ),
                        None,
                    )
                    if match is not None:
                        self.doubled += 1
                if match is not None:
                    rank = self._rank
                    if rank and rank.get(point, len(rank)) < rank.get(capture_point(match.packet), len(rank)):
                        match.copies.insert(0, match.packet)
                        match.packet, match.item = packet, item
                    else:
                        match.copies.append(packet)
                    self.duplicates += 1
                    return out
        held = _Held(packet, item, key)
        self._held.append(held)
        if key is not None:
            self._by_key.setdefault(key, []).append(held)
        return out

    def flush(self) -> list[Merged[T]]:
        """Release everything still held (the end of the captures)."""
        return self._release(float("inf"))

    def _release(self, before: float) -> list[Merged[T]]:
        out: list[Merged[T]] = []
        held_items = self._held
        while held_items and held_items[0].packet.timestamp < before:
            held = held_items.popleft()
            if held.key is not None:
                same = self._by_key[held.key]
                same.remove(held)
                if not same:
                    del self._by_key[held.key]
            copies = tuple((c.file, c.frame) for c in held.copies) if held.copies else ()
            out.append(Merged(packet=held.packet, item=held.item, copies=copies))
        return out
