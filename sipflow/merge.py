"""Several captures of the same traffic: one message seen at two capture points is one message.

Sans-I/O: the pipeline reads the files; this module is fed packets (in capture-time order, as
``heapq.merge`` hands them out) and their parsed messages, and timestamps as plain floats.

* :func:`duplicate_key` names the hop a message travelled: Call-ID, CSeq, method or status,
  top Via branch (RFC 3261 §8.1.1.7, §17), source and destination. Two captures of the same
  hop have the same key; a proxy's forwarded copy (another branch, another hop) does not.
* :func:`estimate_skew` compares the clocks of the captures from messages seen in several.
* :class:`Deduplicator` holds each message for a short window of capture time and folds
  copies of it from *other* files into it. The same key twice in one file is a
  retransmission (or a double capture), which is the model's business, not this module's.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from sipflow.capture.packet import Endpoint, Packet
from sipflow.sip.message import SipRequest, SipResponse

DEDUPE_WINDOW = 0.005
"""Seconds of capture time (after the clock skew is taken out) within which a message from
another file is the same message. Far below RFC 3261's T1 (500 ms), so a retransmission is
never taken for a copy."""

PRESCAN_PACKETS = 20_000
"""SIP packets of each file the pipeline reads ahead to estimate the clock skew."""

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


def duplicate_key(packet: Packet, sip: SipRequest | SipResponse) -> DuplicateKey | None:
    """The key of ``sip`` as captured in ``packet``; None without a Call-ID or CSeq."""
    if sip.call_id is None or sip.cseq is None:
        return None
    via = sip.top_via
    branch = via.branch if via is not None else None
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
    """How far each file's clock runs ahead of the first file's, in seconds.

    ``observations`` are (file, key, capture time) triples; only the first time of a key in
    a file counts (a later one is a retransmission). A file's skew against another is the
    median of ``t_file - t_other`` over the keys both saw, so a few odd pairs (a capture
    that missed the original and caught a retransmission) do not move it. ``files[0]`` is
    the reference (skew 0) unless ``fixed`` gives it one; ``fixed`` skews are taken as they
    are. A file sharing nothing with the reference is placed through another file it shares
    messages with (the link with the most pairs first); a file linked to none is left out.

    Returns the skew of every file it could place, ``fixed`` and the reference included.
    """
    first: dict[str, dict[DuplicateKey, float]] = {f: {} for f in files}
    for file, key, ts in observations:
        seen = first.get(file)
        if seen is not None and key not in seen:
            seen[key] = ts
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
                links[a, b] = (len(diffs), statistics.median(diffs))
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


# --- deduplication ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Merged(Generic[T]):
    """An item as the :class:`Deduplicator` releases it."""

    packet: Packet
    """The first capture of the message (in time order)."""
    item: T
    """What the caller pushed with it (the parsed message, or a parse failure)."""
    copies: tuple[tuple[str, int], ...] = ()
    """(file, frame) of the same message captured in other files, in arrival order."""


@dataclass(slots=True)
class _Held(Generic[T]):
    packet: Packet
    item: T
    key: DuplicateKey | None
    copies: list[tuple[str, int]] = field(default_factory=list)

    def seen_in(self, file: str) -> bool:
        return self.packet.file == file or any(f == file for f, _ in self.copies)


class Deduplicator(Generic[T]):
    """Folds copies of a message from other capture files into the first one seen.

    Push packets in capture-time order; each is held for ``window`` seconds of capture time
    (the time of the packets pushed since) and released, in the order pushed, once it is
    older than that. A pushed packet whose key matches a held message from another file,
    and which that file has not contributed to yet, within ``window`` seconds, becomes a
    copy of it instead of a message of its own. A packet pushed with key None (a malformed
    payload, a message without Call-ID or CSeq) is never merged but keeps its place in the
    order.

    >>> dedupe: Deduplicator[str] = Deduplicator()         # doctest: +SKIP
    >>> for packet in packets:                              # doctest: +SKIP
    ...     for merged in dedupe.push(packet, "...", key_of(packet)):
    ...         use(merged)
    >>> for merged in dedupe.flush(): use(merged)           # doctest: +SKIP
    """

    def __init__(self, window: float = DEDUPE_WINDOW) -> None:
        if window < 0:
            raise ValueError("window must not be negative")
        self.window = window
        self.duplicates = 0
        """Packets folded into another as copies so far."""
        self._held: deque[_Held[T]] = deque()
        self._by_key: dict[DuplicateKey, list[_Held[T]]] = {}

    def push(self, packet: Packet, item: T, key: DuplicateKey | None) -> list[Merged[T]]:
        """Account for one packet; returns the items now older than the window, oldest first."""
        now = packet.timestamp
        out = self._release(now - self.window)
        if key is not None:
            candidates = self._by_key.get(key)
            if candidates is not None:
                # The oldest held message this file has not added to yet: a file's copies
                # pair up in order with another file's (a double capture in each, say).
                match = next(
                    (
                        held
                        for held in candidates
                        if now - held.packet.timestamp <= self.window and not held.seen_in(packet.file)
                    ),
                    None,
                )
                if match is not None:
                    match.copies.append((packet.file, packet.frame))
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
            out.append(Merged(packet=held.packet, item=held.item, copies=tuple(held.copies)))
        return out
