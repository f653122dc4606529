"""The B2BUA candidate index: for an inbound leg, the outbound legs that may score ``MIN_SCORE``.

A candidate leaves the host within the window after the inbound INVITE arrived, and shares a
value that ``_score`` counts as identifying (``_tie_keys``), or has anchored media and an event
mirrored within ``MIRROR_NEAR``. ``_Timeline`` keeps legs sorted by the time of something so
that an interval is found by bisection; the other pairs in the window are never scored.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from sipflow.correlate.facts import _LegFacts, _load_sdp, _user_key
from sipflow.correlate.score import MIRROR_NEAR, SLACK, _anchored


class _Timeline:
    """Legs by the time of something, for the ones within an interval (bisect)."""

    __slots__ = ("legs", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.legs: list[_LegFacts] = []

    def add(self, time: float, leg: _LegFacts) -> None:
        self.times.append(time)
        self.legs.append(leg)

    def sort(self) -> None:
        order = sorted(range(len(self.times)), key=lambda i: (self.times[i], self.legs[i].exit_at))
        self.times = [self.times[i] for i in order]
        self.legs = [self.legs[i] for i in order]

    def count(self, lo: float, hi: float) -> int:
        return max(0, bisect.bisect_right(self.times, hi) - bisect.bisect_left(self.times, lo))

    def between(self, lo: float, hi: float) -> list[_LegFacts]:
        """The legs with a time in [lo, hi], in time order."""
        return self.legs[bisect.bisect_left(self.times, lo) : bisect.bisect_right(self.times, hi)]


def _tie_keys(f: _LegFacts) -> list[tuple[str, object]]:
    """What, shared by two legs, identifies them as one call in ``_score`` (beyond timing):
    a caller or callee number (``_user_key``), the From tag, a relayed stream or o= line."""
    keys: list[tuple[str, object]] = []
    if (key := _user_key(f.to_user)) is not None:
        keys.append(("to", key))
    if (key := _user_key(f.from_user)) is not None:
        keys.append(("from", key))
    if f.from_tag is not None:
        keys.append(("tag", f.from_tag))
    if f.offer is not None:
        keys.extend(("media", stream) for stream in f.offer_media)
        if f.offer.origin is not None:
            keys.append(("origin", f.offer.origin))
    return keys


_SCAN: Final = 8
"""Legs sharing a key beyond which ``_Outbound.candidates`` bisects them instead of looking at
each (most keys, a From tag or a stream, belong to one leg)."""

_exit_at: Final = operator.attrgetter("exit_at")


class _Outbound:
    """The INVITEs that left one host, indexed so that an inbound leg finds the outbound legs
    that may score ``MIN_SCORE`` with it without looking at the others: those sharing a
    ``_tie_keys`` value, and those whose only tie can be anchored media, which also need a
    mirrored event within ``MIRROR_NEAR`` (see there)."""

    def __init__(
        self, outs: Sequence[_LegFacts], arrivals: Iterable[float], before: float, after: float
    ) -> None:
        """``outs`` in order of ``exit_at``; only those within the window of one of
        ``arrivals`` are indexed (``before`` it to ``after`` it)."""
        self.all = _Timeline()
        self.all.times, self.all.legs = [b.exit_at for b in outs], list(outs)
        self.by_key: dict[str, dict[object, _LegFacts | list[_LegFacts]]] = {}
        """By kind of key (``_tie_keys``), the legs sharing each value, in order of ``exit_at``:
        one leg alone where no other shares it (most values, a From tag or a stream, are one
        leg's; an index of a busy host's every outbound leg is then a third the size)."""
        self.provisional = _Timeline()
        self.final = _Timeline()
        self.cancel = _Timeline()
        self.bye = _Timeline()
        by_key = self.by_key
        for b in self._within(arrivals, before, after):
            _load_sdp(b)
            for kind, value in _tie_keys(b):
                values = by_key.get(kind)
                if values is None:
                    values = by_key[kind] = {}
                same = values.get(value)
                if same is None:
                    values[value] = b
                elif isinstance(same, list):
                    same.append(b)
                else:
                    values[value] = [same, b]
            if b.offer is None:
                continue  # not anchored: the SDP test needs both offers
            if b.provisional:
                self.provisional.add(b.provisional[0], b)
            if b.final_at is not None:
                self.final.add(b.final_at, b)
            if b.cancel_at is not None:
                self.cancel.add(b.cancel_at, b)
            if b.bye_at is not None:
                self.bye.add(b.bye_at, b)
        for timeline in (self.provisional, self.final, self.cancel, self.bye):
            timeline.sort()

    def _within(self, arrivals: Iterable[float], before: float, after: float) -> Iterator[_LegFacts]:
        """The outbound legs within the window of any of ``arrivals``, each once, in time order."""
        times, legs = self.all.times, self.all.legs
        done = 0
        for arrival in sorted(arrivals):
            lo, hi = arrival - before, arrival + after
            start = max(done, bisect.bisect_left(times, lo))
            done = max(done, bisect.bisect_right(times, hi))
            yield from legs[start:done]

    def candidates(self, a: _LegFacts, lo: float, hi: float) -> list[_LegFacts]:
        """The outbound legs that left in [lo, hi] and may score ``MIN_SCORE`` as ``a``'s."""
        found: dict[int, _LegFacts] = {}
        by_key = self.by_key
        for kind, value in _tie_keys(a):
            values = by_key.get(kind)
            same = values.get(value) if values is not None else None
            if same is None:
                continue
            if not isinstance(same, list):
                if lo <= same.exit_at <= hi:
                    found.setdefault(same.index, same)
                continue
            legs = same
            if len(legs) > _SCAN:
                legs = legs[
                    bisect.bisect_left(legs, lo, key=_exit_at) : bisect.bisect_right(legs, hi, key=_exit_at)
                ]
            for b in legs:
                if lo <= b.exit_at <= hi:
                    found.setdefault(b.index, b)
        if a.offer is None:
            return list(found.values())
        near, slack = MIRROR_NEAR, SLACK + 1e-6
        mirrored = [self.provisional.between(t - near, t + slack) for t in a.provisional]
        if a.final_at is not None:
            mirrored.append(self.final.between(a.final_at - near, a.final_at + slack))
        if a.cancel_at is not None:
            mirrored.append(self.cancel.between(a.cancel_at - slack, a.cancel_at + near))
        if a.bye_at is not None:
            mirrored.append(self.bye.between(a.bye_at - near, a.bye_at + near))
        for legs in mirrored:
            for b in legs:
                if b.index not in found and lo <= b.exit_at <= hi and _anchored(a, b):
                    found[b.index] = b
        return list(found.values())
