"""The B2BUA heuristic: candidate pairs per host scored, assigned, and hunting legs followed.

At each host, every inbound leg's candidates (``_Outbound``) are scored (``_score``); the pairs
that reach ``MIN_SCORE`` are assigned so that each leg is used once and the total is greatest
(``sipflow.assign``), never the first or latest match. A leg that hunts (outbound legs tried in
turn) then keeps each later outbound leg that starts within the window after the previous one
ended with a failure, while the inbound leg is unanswered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sipflow.assign import assign
from sipflow.correlate.candidates import _Outbound, _Timeline
from sipflow.correlate.evidence import _RawLink, facts_by_index
from sipflow.correlate.facts import _LegFacts, _load_sdp
from sipflow.correlate.options import CorrelationStats
from sipflow.correlate.score import MIN_SCORE, SLACK, _score


def _heuristic_links(
    facts: Sequence[_LegFacts],
    window: float,
    linked: set[frozenset[int]],
    claimed: set[int],
    stats: CorrelationStats,
) -> list[_RawLink]:
    inbound: dict[str, list[_LegFacts]] = defaultdict(list)
    outbound: dict[str, list[_LegFacts]] = defaultdict(list)
    for f in facts:
        inbound[f.entry].append(f)
        outbound[f.exit].append(f)
    by_index = facts_by_index(facts)
    links: list[_RawLink] = []
    for host, outs in outbound.items():
        ins = inbound.get(host)
        if not ins:
            continue
        outs.sort(key=lambda f: f.exit_at)
        # Each inbound leg's window is [arrive_at - SLACK, arrive_at + window]: made as it is
        # needed, not held for a busy host's every leg at once.
        index = _Outbound(outs, (a.arrive_at for a in ins), SLACK, window)
        candidates: dict[tuple[int, int], tuple[float, list[str]]] = {}
        for a in ins:
            lo, hi = a.arrive_at - SLACK, a.arrive_at + window
            if not index.all.count(lo, hi):
                continue
            _load_sdp(a)
            for b in index.candidates(a, lo, hi):
                if a.index == b.index or b.index in claimed or frozenset((a.index, b.index)) in linked:
                    continue
                if a.final_at is not None and a.final_at < b.exit_at - SLACK:
                    continue  # the inbound leg was already answered or refused: not its B2BUA leg
                stats.pairs_scored += 1
                score, evidence = _score(a, b, window, a.arrive_at)
                if score >= MIN_SCORE:
                    candidates[(a.index, b.index)] = (score, evidence)
        if not candidates:
            continue
        stats.candidates += len(candidates)
        pairs = assign({pair: score for pair, (score, _) in candidates.items()}, stats=stats.assignment)
        # The order the whole-host matrix gave them (by column, or by row when the rows
        # outnumber the columns): hunting legs are taken in this order.
        by_column = len({a for a, _ in candidates}) <= len({b for _, b in candidates})
        pairs.sort(key=lambda p: p[1] if by_column else p[0])
        assigned: dict[int, list[int]] = defaultdict(list)
        taken: set[int] = set(claimed)
        for ai, bi in pairs:
            score, evidence = candidates[(ai, bi)]
            links.append(_RawLink(ai, bi, "b2bua-heuristic", score, tuple(evidence)))
            assigned[ai].append(bi)
            taken.add(bi)
        links.extend(_hunting_links(by_index, assigned, taken, index.all, window, stats))
    return links


def _hunting_links(
    by_index: dict[int, _LegFacts],
    assigned: dict[int, list[int]],
    taken: set[int],
    outs: _Timeline,
    window: float,
    stats: CorrelationStats,
) -> list[_RawLink]:
    """Outbound legs tried in turn for one inbound leg: each starts soon after the previous
    one ended, while the inbound leg is still unanswered."""
    links = []
    for a_index, bs in assigned.items():
        a = by_index[a_index]
        current = by_index[bs[0]]
        while current.final_at is not None and (current.final_class or 0) >= 3:
            best: tuple[float, _LegFacts, list[str]] | None = None
            lo, hi = current.final_at - SLACK, current.final_at + window
            if a.final_at is not None:
                hi = min(hi, a.final_at)
            for b in outs.between(lo, hi):
                if b.index in taken or b.index == a.index:
                    continue
                stats.pairs_scored += 1
                score, evidence = _score(a, b, window, current.final_at)
                if score >= MIN_SCORE and (best is None or score > best[0]):
                    best = (score, b, evidence)
            if best is None:
                break
            score, b, evidence = best
            evidence = [
                f"hunting: tried after {current.call_id} ended with {current.final_class}xx",
                *evidence,
            ]
            links.append(_RawLink(a.index, b.index, "b2bua-heuristic", score, tuple(evidence)))
            taken.add(b.index)
            current = b
    return links
