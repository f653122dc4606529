"""The strategies that read a header: links between legs with the confidence of what ties them.

A header that carries the other leg's Call-ID (``X-CID`` and friends, or a rule the user gives)
links the two legs at ``HEADER_CONFIDENCE``; legs that carry the same ``P-Charging-Vector``
icid-value (RFC 7315 §4.6) or ``Session-ID`` (RFC 7989) are chained in time order. Every
strategy, the B2BUA heuristic included, hands its evidence over as ``_RawLink`` records.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sipflow.correlate.facts import _LegFacts

HEADER_CONFIDENCE = 0.99
CHARGING_CONFIDENCE = 0.95
SESSION_ID_CONFIDENCE = 0.95


class _RawLink(NamedTuple):
    a: int
    b: int
    method: str
    confidence: float
    evidence: tuple[str, ...]


def _header_links(facts: Sequence[_LegFacts]) -> list[_RawLink]:
    by_call_id = {f.call_id: f.index for f in facts}
    links = []
    for f in facts:
        for name, claimed in f.claims.items():
            other = by_call_id.get(claimed)
            if other is not None and other != f.index:
                links.append(
                    _RawLink(other, f.index, f"header:{name}", HEADER_CONFIDENCE,
                             (f"{name} of {f.call_id} names {claimed}",))
                )  # fmt: skip
    return links


def _shared_value_links(
    facts: Sequence[_LegFacts], values: Iterable[tuple[int, str]], method: str, confidence: float, what: str
) -> list[_RawLink]:
    groups: dict[str, dict[int, None]] = defaultdict(dict)
    for index, value in values:
        groups[value][index] = None
    by_index = facts_by_index(facts)
    links = []
    for value, members in groups.items():
        ordered = sorted(members, key=lambda i: by_index[i].exit_at)
        for a, b in itertools.pairwise(ordered):
            links.append(_RawLink(a, b, method, confidence, (f"both legs carry {what} {value}",)))
    return links


def facts_by_index(facts: Sequence[_LegFacts]) -> dict[int, _LegFacts]:
    return {f.index: f for f in facts}
