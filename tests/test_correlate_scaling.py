"""Correlation scales with the number of legs: work counted, not timed.

The loads come from ``tests/captures/make_correlation_load.py`` (many concurrent B2BUA calls,
attended transfers), fed as literal messages to a tracker. ``CorrelationStats`` counts the
pairs scored; at a constant call rate they grow with the number of calls, and per leg they
stay bounded by what the correlation window holds.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

import pytest

import sipflow.assign as assign_module
import sipflow.correlate as correlate_module
import sipflow.correlate.heuristic as heuristic_module
from sipflow.assign import AssignmentStats, assign, hungarian, sparse_matching
from sipflow.capture.types import Endpoint
from sipflow.correlate import (
    CorrelationStats,
    Group,
    _initial_invites,
    _normalize_user,
    _request_user,
    _users_match,
    correlate,
    related_calls,
)
from sipflow.model.call import Leg
from sipflow.sip.message import SipRequest
from sipflow.sip.parse import parse_name_addr
from tests.captures.make_correlation_load import Load, b2bua_load, refer_load
from tests.sipmsg import Feeder


def _legs(load: Load) -> tuple[Leg, ...]:
    feed = Feeder()
    for t, src, dst, data in load.events:
        feed(t, Endpoint(*src), Endpoint(*dst), data)
    return feed.tracker.finish().legs


def _pairs(groups: Iterable[Iterable[str]]) -> set[tuple[str, str]]:
    return {pair for group in groups for pair in itertools.combinations(sorted(group), 2)}


def _precision_recall(groups: Sequence[Group], truth: Iterable[Iterable[str]]) -> tuple[float, float]:
    found = _pairs([leg.call_id for leg in g.legs] for g in groups)
    expected = _pairs(truth)
    hits = len(found & expected)
    return hits / len(found) if found else 1.0, hits / len(expected) if expected else 1.0


def _work(calls: int, **kwargs: object) -> CorrelationStats:
    stats = CorrelationStats()
    load = b2bua_load(calls, **kwargs)  # type: ignore[arg-type]
    groups = correlate(_legs(load), stats=stats)
    assert _precision_recall(groups, load.calls) == (1.0, 1.0)
    return stats


RATE = 20.0
WINDOW = 2.0  # CorrelationOptions().window


@pytest.mark.parametrize(
    ("kind", "per_call"),
    [
        ("relayed", 1.5),  # the indexes find each A leg its B leg and hardly anything else
        ("anchored", 3.0),  # media anchored: another call's leg only when an event is mirrored in time
        ("same-numbers", RATE * WINDOW * 1.2),  # every call alike: each leg in the window is scored
    ],
)
def test_pairs_scored_grow_linearly_at_a_constant_call_rate(kind: str, per_call: float) -> None:
    kwargs: dict[str, object] = {
        "rate": RATE, "anchored": kind == "anchored", "same_numbers": kind == "same-numbers",
    }  # fmt: skip
    small, large = _work(200, **kwargs), _work(400, **kwargs)
    print(f"{kind}: pairs scored {small.pairs_scored} (200 calls), {large.pairs_scored} (400 calls)")
    assert small.pairs_scored > 0
    assert large.pairs_scored <= 2.2 * small.pairs_scored
    assert large.pairs_scored <= per_call * 400  # bounded per leg: by what the window holds
    assert large.assignment.largest <= 12  # components of a few legs, not the whole host


def test_a_large_component_is_solved_on_its_pairs_only() -> None:
    """Every call between the same two numbers: one component holds most legs, and the
    augmenting-path solver keeps the result exact (precision and recall 1 in ``_work``)."""
    stats = _work(300, rate=50.0, anchored=True, same_numbers=True)
    assert stats.assignment.sparse >= 1 and stats.assignment.largest > 100


def test_2000_concurrent_b2bua_calls_with_reordered_invites() -> None:
    load = b2bua_load(2000, rate=100.0, seed=3)
    position = {a: n for n, (a, _) in enumerate(load.calls)}
    call_of = {b: n for n, (_, b) in enumerate(load.calls)} | position
    b_invites = [
        call_of[call_id]
        for _, _, _, data in load.events
        if data.startswith(b"INVITE ")
        and (call_id := data.split(b"Call-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()) not in position
    ]
    reordered = sum(1 for x, y in itertools.pairwise(b_invites) if x > y)
    assert reordered > 200  # B-leg INVITEs leave in another order than the A-leg INVITEs came
    stats = CorrelationStats()
    groups = correlate(_legs(load), stats=stats)
    precision, recall = _precision_recall(groups, load.calls)
    print(f"2000 calls: precision {precision:.4f}, recall {recall:.4f}, pairs scored {stats.pairs_scored}")
    assert (precision, recall) == (1.0, 1.0)
    assert stats.pairs_scored <= 2 * 2000


@pytest.mark.parametrize(
    ("kind", "seed"), [("relayed", 4), ("anchored", 5), ("same-numbers", 6), ("same-numbers-anchored", 7)]
)
def test_indexes_and_components_give_what_scoring_every_pair_gives(
    kind: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The candidates the indexes find, assigned per component, give exactly the links that
    scoring every pair within the window and one dense assignment per host give."""
    load = b2bua_load(
        120, rate=60.0, seed=seed, anchored="anchored" in kind, same_numbers=kind.startswith("same")
    )
    legs = _legs(load)

    def key(groups: Sequence[Group]) -> list[object]:
        return [([leg.call_id for leg in g.legs], g.links) for g in groups]

    fast = CorrelationStats()
    indexed = key(correlate(legs, stats=fast))
    with monkeypatch.context() as m:
        m.setattr(correlate_module._Outbound, "candidates", lambda self, a, lo, hi: self.all.between(lo, hi))
        m.setattr(heuristic_module, "assign", _one_dense_assignment)
        slow = CorrelationStats()
        every_pair = key(correlate(legs, stats=slow))
    assert indexed == every_pair
    assert fast.pairs_scored <= slow.pairs_scored


def _one_dense_assignment(
    scores: dict[tuple[int, int], float], *, stats: AssignmentStats | None = None
) -> list[tuple[int, int]]:
    """What ``correlate`` did before components: one Kuhn–Munkres matrix of all the host's legs."""
    rows = sorted({r for r, _ in scores})
    cols = sorted({c for _, c in scores})
    matrix = [[scores.get((r, c), 0.0) for c in cols] for r in rows]
    return [(rows[i], cols[j]) for i, j in hungarian(matrix) if (rows[i], cols[j]) in scores]


def test_assignment_by_components_is_optimal() -> None:
    rng = random.Random(11)
    for _ in range(300):
        scores = {
            (r, c): round(rng.uniform(0.5, 0.95), 2)
            for r in range(rng.randint(1, 8))
            for c in range(rng.randint(1, 8))
            if rng.random() < 0.35
        }
        if not scores:
            continue
        best = sum(scores[p] for p in _one_dense_assignment(scores))
        for limit in (0, 40):  # augmenting paths for every component, or dense matrices
            pairs = assign(scores, dense_limit=limit)
            assert len({r for r, _ in pairs}) == len(pairs) == len({c for _, c in pairs})
            assert sum(scores[p] for p in pairs) == pytest.approx(best)


def test_equal_scores_keep_augmenting_paths_short() -> None:
    """Calls alike score alike: the search takes a free column before retracing the earlier
    pairs at the same distance (which made it quadratic), well within the step budget."""
    n, band = 1000, 10
    edges = [[(j, 800) for j in range(max(0, i - band), min(n, i + band + 1))] for i in range(n)]
    pairs = sum(len(e) for e in edges)
    matched = sparse_matching(edges, n, budget=4 * (pairs + n))
    assert len(matched) == n


def test_a_component_over_the_step_budget_is_matched_greedily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assign_module, "STEP_BUDGET", 0)
    scores = {
        (r, c): 0.5 + 0.01 * ((r * 7 + c * 3) % 40) for r in range(60) for c in range(60) if abs(r - c) < 3
    }
    stats = AssignmentStats()
    pairs = assign(scores, stats=stats)
    assert stats.greedy == 1 and stats.sparse == 0
    assert len({r for r, _ in pairs}) == len(pairs) == len({c for _, c in pairs})
    assert pairs[0] == max(scores, key=lambda p: (scores[p], -p[0], -p[1]))  # best score first


def _related_by_scanning(legs: Sequence[Leg]) -> dict[str, set[str]]:
    """What ``related_calls`` gave before its indexes: each REFER against every leg."""
    related: dict[str, set[str]] = defaultdict(set)
    call_ids = {leg.call_id for leg in legs}

    def relate(a: str, b: str) -> None:
        if b in call_ids and b != a:
            related[a].add(b)
            related[b].add(a)

    refers = []
    for leg in legs:
        for message in leg.messages:
            sip = message.sip
            if not isinstance(sip, SipRequest) or message.retransmission:
                continue
            if sip.method == "INVITE" and (replaces := sip.headers.get("Replaces")):
                relate(leg.call_id, replaces.split(";", 1)[0].strip())
            elif sip.method == "REFER" and (refer_to := sip.headers.get("Refer-To")):
                uri = parse_name_addr(refer_to).uri
                match = re.search(r"replaces=([^;&>]+)", uri.raw, re.IGNORECASE)
                if match:
                    relate(leg.call_id, match.group(1).replace("%40", "@"))
                if uri.user:
                    refers.append((message.timestamp, leg.call_id, _normalize_user(uri.user)))
    for time, call_id, user in refers:
        for leg in legs:
            invites = _initial_invites(leg)
            if leg.call_id == call_id or not invites or invites[0].request is None:
                continue
            invite = invites[0].request
            if 0 <= invite.timestamp - time <= 32.0 and _users_match(_request_user(invite), user):
                relate(call_id, leg.call_id)
    return dict(related)


def test_transfers_are_related_as_by_scanning_every_pair() -> None:
    load = refer_load(40, rate=5.0)
    legs = _legs(load)
    related = related_calls(legs)
    assert dict(related) == _related_by_scanning(legs)
    for first, consultation, transferred in load.calls:
        assert related[transferred] == {first, consultation}  # Refer-To's target; Replaces
    assert all(len(g.legs) == 1 for g in correlate(legs))  # related, never merged


def test_transfer_checks_grow_linearly() -> None:
    checks = []
    for n in (100, 200):
        stats = CorrelationStats()
        related_calls(_legs(refer_load(n, rate=20.0)), stats=stats)
        checks.append(stats.transfer_checks)
    assert 0 < checks[1] <= 2.2 * checks[0]
    assert checks[1] <= 2 * 200  # each REFER meets the INVITEs to its target's number only
