"""Maximum-weight assignment of rows to columns over a sparse set of scored pairs.

``correlate`` scores candidate (inbound leg, outbound leg) pairs at a B2BUA and needs the
assignment (each leg used at most once) of greatest total score. Pairs that were not scored
weigh nothing, so the problem falls apart into the connected components of the candidate
graph, solved one by one: a small component as a dense matrix with the Kuhn–Munkres method
(O(n³), exact), a large one by successive shortest augmenting paths over its pairs only
(Dijkstra on reduced costs with the same potentials, exact too). Candidates are pairs of legs
whose INVITEs are close in time, so components stay small however long the capture, and
augmenting paths stay short even in a large component (many calls between the same users):
a few search steps per pair. Should a component need more than ``STEP_BUDGET`` steps per
pair, it is matched greedily by score instead, so that the time stays bounded.

Pure functions of numbers: no SIP here.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DENSE_LIMIT = 40
"""A component with at most this many rows and columns is solved as a dense matrix."""
STEP_BUDGET = 64
"""Search steps per candidate pair that augmenting paths may take in one component (they take
a few on real and generated loads; adversarial scores could make them quadratic)."""


@dataclass(slots=True)
class AssignmentStats:
    """What ``assign`` did (for tests and measurements)."""

    components: int = 0
    largest: int = 0
    """Rows plus columns of the largest component."""
    sparse: int = 0
    """Components solved by augmenting paths rather than as a dense matrix."""
    greedy: int = 0
    """Components whose augmenting paths ran over ``STEP_BUDGET``, matched greedily by score."""


def hungarian(scores: list[list[float]]) -> list[tuple[int, int]]:
    """Maximum-weight assignment of rows to columns (each used once), Kuhn–Munkres."""
    n_rows = len(scores)
    n_cols = len(scores[0]) if scores else 0
    transpose = n_rows > n_cols
    matrix = [list(col) for col in zip(*scores, strict=True)] if transpose else scores
    n, m = len(matrix), len(matrix[0]) if matrix else 0
    inf = float("inf")
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    p = [0] * (m + 1)
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = -matrix[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    pairs = [(p[j] - 1, j - 1) for j in range(1, m + 1) if p[j]]
    return [(c, r) for r, c in pairs] if transpose else pairs


class BudgetExceeded(Exception):
    """``sparse_matching`` needed more steps than it was allowed."""


def sparse_matching(
    edges: Sequence[Sequence[tuple[int, int]]], n_cols: int, budget: int | None = None
) -> list[tuple[int, int]]:
    """Maximum-weight matching; ``edges[row]`` lists (column, weight > 0), weights integers.

    A row may stay unmatched: each row has a private column of weight 0 ("unmatched"), so
    this is an assignment problem, solved row by row with the shortest augmenting path
    (Dijkstra on reduced costs ``cost - u[row] - v[col] >= 0``, cost = -weight), then the
    potentials are moved so that the path's pairs are tight, as the Kuhn–Munkres method
    does in its dense form. Integer weights keep reduced costs exact. Among columns at the
    same distance a free one is taken first, so that equal scores (calls alike) do not send
    every search back through all the earlier pairs.

    Raises ``BudgetExceeded`` after ``budget`` search steps (columns taken off the heap).
    """
    n = len(edges)
    total = n_cols + n  # column n_cols + r: row r left unmatched
    u = [0] * n
    v = [0] * total
    col_row = [-1] * total
    row_col = [-1] * n
    steps = 0
    for s in range(n):
        u[s] = min(-v[n_cols + s], min((-w - v[j] for j, w in edges[s]), default=0))
        steps += _augment(s, edges, n_cols, u, v, row_col, col_row)
        if budget is not None and steps > budget:
            raise BudgetExceeded(steps)
    return [(r, c) for r, c in enumerate(row_col) if c < n_cols]


def _augment(
    s: int,
    edges: Sequence[Sequence[tuple[int, int]]],
    n_cols: int,
    u: list[int],
    v: list[int],
    row_col: list[int],
    col_row: list[int],
) -> int:
    """Match row ``s`` along a shortest augmenting path and make that path tight; returns the
    number of columns taken off the heap."""
    done: dict[int, int] = {}  # column → its distance, once final
    tentative: dict[int, int] = {}
    came_from: dict[int, int] = {}  # column → the row it was reached from
    reached = {s: 0}  # row → the distance of the column it was reached through
    heap: list[tuple[int, bool, int]] = []  # (distance, column matched, column)

    def relax(row: int, base: int) -> None:
        own = n_cols + row
        reachable = [(j, -w) for j, w in edges[row]]
        if row_col[row] != own:
            reachable.append((own, 0))
        for j, cost in reachable:
            if j not in done:
                d = base + cost - u[row] - v[j]
                if d < tentative.get(j, d + 1):
                    tentative[j], came_from[j] = d, row
                    heapq.heappush(heap, (d, col_row[j] >= 0, j))

    relax(s, 0)
    steps = 0
    while True:
        d, _, j = heapq.heappop(heap)
        steps += 1
        if j in done or d != tentative[j]:
            continue
        done[j] = d
        row = col_row[j]
        if row < 0:
            end, length = j, d
            break
        reached[row] = d
        relax(row, d)
    for row, d in reached.items():
        u[row] += length - d
    for j, d in done.items():
        v[j] -= length - d
    j = end
    while True:
        row = came_from[j]
        previous = row_col[row]
        row_col[row], col_row[j] = j, row
        if row == s:
            return steps
        j = previous


def greedy_matching(scores: Mapping[tuple[int, int], float]) -> list[tuple[int, int]]:
    """Pairs by decreasing score (then row, column), each row and column once: not always
    the best total, but O(pairs · log pairs) whatever the scores."""
    rows: set[int] = set()
    cols: set[int] = set()
    out = []
    for r, c in sorted(scores, key=lambda p: (-scores[p], p)):
        if r not in rows and c not in cols:
            rows.add(r)
            cols.add(c)
            out.append((r, c))
    return out


def assign(
    scores: Mapping[tuple[int, int], float],
    *,
    stats: AssignmentStats | None = None,
    dense_limit: int = DENSE_LIMIT,
) -> list[tuple[int, int]]:
    """The (row, column) pairs of a maximum-total-score assignment over the scored pairs
    (scores > 0, at most three decimals), each row and each column in at most one pair. A
    row and a column with the same number are distinct nodes. Within a component, rows and
    columns are taken in increasing order, so equal inputs give equal outputs."""
    stats = stats if stats is not None else AssignmentStats()
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(x: tuple[int, int]) -> tuple[int, int]:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r, c in scores:
        a, b = find((0, r)), find((1, c))
        if a != b:
            parent[a] = b
    members: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for pair in scores:
        members[find((0, pair[0]))].append(pair)
    out: list[tuple[int, int]] = []
    for pairs in members.values():
        rows = sorted({r for r, _ in pairs})
        cols = sorted({c for _, c in pairs})
        stats.components += 1
        stats.largest = max(stats.largest, len(rows) + len(cols))
        if len(rows) == 1 or len(cols) == 1:
            # What the dense method gives for one row (column): the first best column (row).
            ordered = sorted(pairs, key=lambda p: p[1] if len(rows) == 1 else p[0])
            out.append(max(ordered, key=lambda p: scores[p]))
        elif max(len(rows), len(cols)) <= dense_limit:
            row_at = {r: i for i, r in enumerate(rows)}
            col_at = {c: j for j, c in enumerate(cols)}
            matrix = [[0.0] * len(cols) for _ in rows]
            for r, c in pairs:
                matrix[row_at[r]][col_at[c]] = scores[(r, c)]
            out.extend((rows[i], cols[j]) for i, j in hungarian(matrix) if matrix[i][j] > 0)
        else:
            row_at = {r: i for i, r in enumerate(rows)}
            col_at = {c: j for j, c in enumerate(cols)}
            adjacency: list[list[tuple[int, int]]] = [[] for _ in rows]
            for r, c in pairs:
                adjacency[row_at[r]].append((col_at[c], round(scores[(r, c)] * 1000)))
            for edges in adjacency:
                edges.sort()
            try:
                matched = sparse_matching(adjacency, len(cols), STEP_BUDGET * (len(pairs) + len(rows)))
            except BudgetExceeded:
                stats.greedy += 1
                out.extend(greedy_matching({p: scores[p] for p in pairs}))
            else:
                stats.sparse += 1
                out.extend((rows[i], cols[j]) for i, j in matched)
    return out
