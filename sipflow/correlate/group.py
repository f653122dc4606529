"""Legs into calls: every strategy's links merged with union-find, one ``Group`` per call.

Chains (caller → SBC → B2BUA → callee) give one call; of several links between the same two
legs the most confident is kept. A group lists its legs from the caller's on, in order of their
first INVITE, and its links by those positions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from sipflow.correlate.evidence import (
    CHARGING_CONFIDENCE,
    SESSION_ID_CONFIDENCE,
    _header_links,
    _RawLink,
    _shared_value_links,
)
from sipflow.correlate.facts import _facts, _LegFacts
from sipflow.correlate.heuristic import _heuristic_links
from sipflow.correlate.options import CorrelationOptions, CorrelationStats
from sipflow.model.call import Leg, Link


class Group(NamedTuple):
    legs: tuple[Leg, ...]
    """Caller's leg first, then in order of their first INVITE."""
    links: tuple[Link, ...]


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def correlate(
    legs: Sequence[Leg], options: CorrelationOptions | None = None, *, stats: CorrelationStats | None = None
) -> list[Group]:
    """Group ``legs`` into calls. Legs without an initial INVITE stay alone. ``stats``, when
    given, counts the work done."""
    options = options or CorrelationOptions()
    if not options.enabled:
        if stats is not None:
            stats.legs += len(legs)
        return [Group((leg,), ()) for leg in legs]
    facts = [f for i, leg in enumerate(legs) if (f := _facts(i, leg, options.headers)) is not None]
    groups = correlate_facts(facts, [leg.start for leg in legs], options, stats=stats)
    return [Group(tuple(legs[i] for i in members), links) for members, links in groups]


def correlate_facts(
    facts: Sequence[_LegFacts],
    starts: Sequence[float],
    options: CorrelationOptions | None = None,
    *,
    stats: CorrelationStats | None = None,
) -> list[tuple[tuple[int, ...], tuple[Link, ...]]]:
    """``correlate`` on what it reads of the legs: ``starts`` (each leg's start, by its index)
    and the ``facts`` of the legs that have them (``_LegFacts.index`` their index). Each call is
    the indexes of its legs, in the order of ``Group.legs``, and its links."""
    options = options or CorrelationOptions()
    stats = stats if stats is not None else CorrelationStats()
    count = len(starts)
    stats.legs += count
    if not options.enabled:
        return [((i,), ()) for i in range(count)]
    raw: list[_RawLink] = []
    raw += _header_links(facts)
    raw += _shared_value_links(
        facts, ((f.index, f.icid) for f in facts if f.icid), "p-charging-vector", CHARGING_CONFIDENCE,
        "P-Charging-Vector icid-value",
    )  # fmt: skip
    raw += _shared_value_links(
        facts, ((f.index, u) for f in facts for u in f.session_ids), "session-id", SESSION_ID_CONFIDENCE,
        "Session-ID",
    )  # fmt: skip
    # Legs already tied by stronger evidence are not offered to the heuristic again, and a
    # leg already claimed as someone's outbound leg is not a candidate either.
    linked = {frozenset((link.a, link.b)) for link in raw}
    claimed = {link.b for link in raw}
    raw += _heuristic_links(facts, options.window, linked, claimed, stats)

    uf = _UnionFind(count)
    best: dict[frozenset[int], _RawLink] = {}
    for link in raw:
        key = frozenset((link.a, link.b))
        if key not in best or link.confidence > best[key].confidence:
            best[key] = link
        uf.union(link.a, link.b)
    del raw
    links_of: dict[int, list[_RawLink]] = defaultdict(list)
    for link in best.values():
        links_of[uf.find(link.a)].append(link)
    del best
    # Most legs are a call of their own: only the groups of several legs get a list.
    members: dict[int, list[int]] = {root: [] for root in links_of}
    for i in range(count):
        root = uf.find(i)
        if root in members:
            members[root].append(i)
    start = list(starts)
    for f in facts:
        start[f.index] = f.exit_at

    def first_start(root: int) -> float:
        legs = members.get(root)
        return start[root] if legs is None else min(start[i] for i in legs)

    roots = [i for i in range(count) if uf.parent[i] == i]
    roots.sort(key=first_start)
    groups: list[tuple[tuple[int, ...], tuple[Link, ...]]] = []
    for root in roots:
        legs = members.get(root)
        if legs is None:
            groups.append(((root,), ()))  # a call of its own
            continue
        order = sorted(legs, key=lambda i: (start[i], i))
        position = {leg_index: pos for pos, leg_index in enumerate(order)}
        links = tuple(
            Link(
                legs=tuple(sorted((position[link.a], position[link.b]))),  # type: ignore[arg-type]
                method=link.method,
                confidence=link.confidence,
                evidence=link.evidence,
            )
            for link in sorted(links_of.get(root, ()), key=lambda k: (position[k.a], position[k.b]))
        )
        groups.append((tuple(order), links))
    return groups
