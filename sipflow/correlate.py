"""Legs → calls: correlate the legs of one phone call that carry different Call-IDs.

Between caller and callee sit proxies, SBCs and B2BUAs. A stateful proxy keeps the Call-ID
(one leg, several hops: see ``model.call``); a B2BUA or a topology-hiding proxy gives each
side its own Call-ID. Each strategy here returns evidence with a confidence in [0, 1]:

1. headers that carry the other leg's Call-ID (``X-CID`` and friends, or any header the user
   names, with an optional regular expression), confidence 0.99;
2. ``P-Charging-Vector`` icid-value (RFC 7315 §4.6) and ``Session-ID`` (RFC 7989), 0.95;
3. the behaviour of a B2BUA when no header says it: an INVITE leaves host H shortly after
   another arrived at H, with matching identities, the same (relayed) or consistently
   anchored SDP, and outcomes mirrored back (18x, final class, CANCEL, BYE). Many calls
   between the same users at once make this an assignment problem: every candidate pair is
   scored and the best consistent assignment is taken (Hungarian method), never the first
   or latest match. A leg that hunts (one inbound leg, outbound legs tried in turn) keeps
   each later outbound leg that starts within the window after the previous one ended.

Links are merged with union-find, so chains (caller → SBC → B2BUA → callee) give one call.
``related_calls`` finds transfers (REFER, Replaces): related, never merged.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sipflow.model.call import Leg, Link
from sipflow.model.message import Message
from sipflow.model.session import SdpRole, sdp_roles
from sipflow.model.transaction import Transaction
from sipflow.sip.message import SipRequest, SipResponse
from sipflow.sip.parse import parse_name_addr, parse_uri
from sipflow.sip.sdp import SessionDescription

DEFAULT_HEADERS = ("X-CID", "X-Call-ID", "X-Orig-Call-ID", "X-Original-Call-ID")
HEADER_CONFIDENCE = 0.99
CHARGING_CONFIDENCE = 0.95
SESSION_ID_CONFIDENCE = 0.95
HEURISTIC_CEILING = 0.95
"""A heuristic link is never shown as surer than a header that names the other leg."""
MIN_SCORE = 0.5
MIRROR_LAG = 1.0
"""Seconds within which a B2BUA passes an event (18x, final, CANCEL, BYE) on to the other leg."""
_NULL_UUID = "0" * 32


@dataclass(frozen=True, slots=True)
class HeaderRule:
    """A header that carries the other leg's Call-ID; ``pattern``'s group 1 extracts it."""

    name: str
    pattern: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: str) -> HeaderRule:
        """``NAME`` or ``NAME:REGEX`` (``'X-Info:orig=([^;]+)'``); raises ValueError."""
        name, sep, regex = text.partition(":")
        name = name.strip()
        if not name or not re.fullmatch(r"[!-9;-~]+", name):
            raise ValueError(f"{text!r}: expected a header name, optionally ':REGEX'")
        if not sep:
            return cls(name)
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise ValueError(f"{text!r}: bad regular expression: {exc}") from None
        if pattern.groups < 1:
            raise ValueError(f"{text!r}: the regular expression needs a group for the Call-ID")
        return cls(name, pattern)

    def extract(self, value: str) -> str | None:
        if self.pattern is None:
            return value.strip() or None
        match = self.pattern.search(value)
        return match.group(1).strip() if match and match.group(1) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CorrelationOptions:
    enabled: bool = True
    headers: tuple[HeaderRule, ...] = tuple(HeaderRule(h) for h in DEFAULT_HEADERS)
    window: float = 2.0
    """Seconds after an INVITE arrives at a host within which an INVITE leaving it may be its
    outbound leg (and, for hunting, after the previous outbound leg ended)."""


class Group(NamedTuple):
    legs: tuple[Leg, ...]
    """Caller's leg first, then in order of their first INVITE."""
    links: tuple[Link, ...]


# --- facts about one leg ------------------------------------------------------------------------


@dataclass(slots=True)
class _LegFacts:
    index: int
    leg: Leg
    invite: Message
    """The first copy of the leg's first initial INVITE."""
    entry: str
    """Host the INVITE went to (the caller side of a B2BUA sits there)."""
    exit: str
    """Host the INVITE came from."""
    exit_at: float
    """When the INVITE left ``exit`` (its first capture at its first hop)."""
    arrive_at: float
    """When the INVITE reached ``entry`` (its last hop)."""
    to_user: str
    from_user: str
    from_tag: str | None
    sdp_loaded: bool
    """Whether ``offer`` and ``answer`` were looked up (lazily: only candidate pairs need them)."""
    offer: SessionDescription | None
    answer: SessionDescription | None
    provisional: tuple[float, ...]
    """Times of the first 18x of each caller-side attempt's hops, sorted."""
    final_at: float | None
    final_class: int | None
    cancel_at: float | None
    bye_at: float | None
    claims: dict[str, str] = field(default_factory=dict)
    """Header rule name → the Call-ID it names."""
    icid: str | None = None
    session_ids: tuple[str, ...] = ()


def _digits(user: str) -> str:
    return re.sub(r"\D", "", user)


def _normalize_user(user: str | None) -> str:
    """A user part without scheme noise: ``+49 30…``, ``0049…`` and ``49…`` compare equal."""
    if not user:
        return ""
    user = user.split(";", 1)[0].strip().lower()
    digits = _digits(user)
    if digits and len(digits) >= len(user.lstrip("+")) - 1:
        return digits.lstrip("0")
    # A number with a suffix (``12675941249_Uclx8s…``, ``2001-ext``) compares as its number.
    lead = re.match(r"\+?(\d{6,})\D", user)
    return lead.group(1).lstrip("0") if lead else user


def _users_match(a: str, b: str) -> bool:
    if not a or not b:
        return False
    if a == b:
        return True
    if a.isdigit() and b.isdigit() and min(len(a), len(b)) >= 6:
        return a.endswith(b) or b.endswith(a)
    return False


def _request_user(invite: Message) -> str:
    sip = invite.sip
    if isinstance(sip, SipRequest):
        try:
            user = parse_uri(sip.uri).user
        except Exception:
            user = None
        if user:
            return _normalize_user(user)
    return _normalize_user(sip.to.uri.user if sip.to is not None else None)


def _initial_invites(leg: Leg) -> list[Transaction]:
    return sorted(
        (
            tx
            for tx in leg.transactions
            if tx.method == "INVITE"
            and (r := tx.request) is not None
            and (r.sip.to is None or r.sip.to.tag is None)
        ),
        key=lambda tx: tx.start,
    )


def _facts(index: int, leg: Leg, rules: Sequence[HeaderRule]) -> _LegFacts | None:
    invites = _initial_invites(leg)
    if not invites or invites[0].request is None:
        return None
    first = invites[0]
    invite = first.request
    assert invite is not None
    caller = first.client
    # The caller-side attempts (auth retries) and the far end of the leg (last hop).
    attempts = [tx for tx in invites if tx.client == caller]
    last_hop = max(invites, key=lambda tx: tx.start)
    provisional = sorted(
        m.timestamp
        for tx in attempts
        for m in tx.messages
        if isinstance(m.sip, SipResponse) and 100 < m.sip.status < 200 and not m.retransmission
    )
    finals = [tx for tx in attempts if tx.final is not None]
    decisive = next((tx for tx in finals if (tx.final_status or 0) < 300), finals[-1] if finals else None)
    cancels = [tx.start for tx in leg.transactions if tx.method == "CANCEL"]
    byes = [tx.start for tx in leg.transactions if tx.method == "BYE"]
    sip = invite.sip
    facts = _LegFacts(
        index=index,
        leg=leg,
        invite=invite,
        entry=last_hop.server.host,
        exit=caller.host,
        exit_at=invite.timestamp,
        arrive_at=last_hop.request.timestamp if last_hop.request is not None else invite.timestamp,
        to_user=_request_user(invite),
        from_user=_normalize_user(sip.from_.uri.user if sip.from_ is not None else None),
        from_tag=sip.from_.tag if sip.from_ is not None else None,
        sdp_loaded=False,
        offer=None,
        answer=None,
        provisional=tuple(provisional),
        final_at=decisive.final.timestamp if decisive is not None and decisive.final is not None else None,
        final_class=(decisive.final_status // 100)
        if decisive is not None and decisive.final_status
        else None,
        cancel_at=min(cancels) if cancels else None,
        bye_at=min(byes) if byes else None,
    )
    headers = sip.headers
    for rule in rules:
        for value in headers.get_all(rule.name):
            claimed = rule.extract(value)
            if claimed:
                facts.claims[rule.name] = claimed
                break
    pcv = headers.get("P-Charging-Vector")
    if pcv:
        match = re.search(r"icid-value\s*=\s*\"?([^\";]+)", pcv, re.IGNORECASE)
        if match:
            facts.icid = match.group(1).strip()
    sid = headers.get("Session-ID")
    if sid:
        local, _, params = sid.partition(";")
        uuids = [local.strip().lower()]
        match = re.search(r"remote\s*=\s*([0-9a-fA-F]{32})", params)
        if match:
            uuids.append(match.group(1).lower())
        facts.session_ids = tuple(u for u in uuids if re.fullmatch(r"[0-9a-f]{32}", u) and u != _NULL_UUID)
    return facts


# --- scoring a B2BUA candidate pair ---------------------------------------------------------------


def _load_sdp(f: _LegFacts) -> None:
    """The leg's first SDP offer and answer (RFC 3264), found on first need."""
    if f.sdp_loaded:
        return
    f.sdp_loaded = True
    for role, description in sdp_roles(f.leg.messages).values():
        if role is SdpRole.OFFER and f.offer is None:
            f.offer = description
        elif role is SdpRole.ANSWER and f.answer is None:
            f.answer = description
        if f.offer is not None and f.answer is not None:
            return


def _media(sd: SessionDescription | None) -> set[tuple[str, int]]:
    if sd is None:
        return set()
    return {(m.connection or sd.connection or "", m.port) for m in sd.media if m.port}


def _addresses(sd: SessionDescription | None) -> set[str]:
    if sd is None:
        return set()
    return {m.connection or sd.connection or "" for m in sd.media} - {""}


def _lag_score(before: float | None, after: float | None) -> float | None:
    """How well ``after`` follows ``before`` as a relayed event: 1 when immediate."""
    if before is None or after is None:
        return None
    lag = after - before
    if lag < -0.002 or lag > MIRROR_LAG:
        return 0.0
    return math.exp(-max(lag, 0.0) / 0.15)


def _mirrored_provisional(a: _LegFacts, b: _LegFacts) -> float | None:
    """B's first 18x passed on to A: A's first 18x at or after it (a B2BUA may also have sent
    A a 180 of its own before the outbound leg rang)."""
    if not b.provisional:
        return None
    first = b.provisional[0]
    later = [t for t in a.provisional if t >= first - 0.002]
    return _lag_score(first, later[0]) if later else 0.0


def _score(a: _LegFacts, b: _LegFacts, window: float, start: float) -> tuple[float, list[str]]:
    """Score B as the outbound leg of A at the B2BUA host; ``start`` is when B's INVITE could
    first be sent (A's arrival, or the end of A's previous outbound leg when hunting)."""
    evidence: list[str] = []
    weighted: list[tuple[float, float]] = []
    identified = False
    """Something beyond timing ties the legs: a user, the From tag or the media."""
    dt = b.exit_at - start
    weighted.append((1.0, math.exp(-max(dt, 0.0) / window)))
    evidence.append(f"INVITE left {b.exit} {dt * 1000:.0f} ms after the inbound INVITE reached it")

    to_ok = _users_match(a.to_user, b.to_user)
    from_ok = _users_match(a.from_user, b.from_user)
    weighted.append((2.0, (to_ok + from_ok) / 2))
    if to_ok:
        evidence.append(f"same callee ({a.to_user or '?'} / {b.to_user or '?'})")
    if from_ok:
        evidence.append(f"same caller ({a.from_user or '?'} / {b.from_user or '?'})")
    identified = to_ok or from_ok
    if a.from_tag is not None and a.from_tag == b.from_tag:
        weighted.append((2.0, 1.0))
        evidence.append("same From tag")
        identified = True

    _load_sdp(a)
    _load_sdp(b)
    if a.offer is not None and b.offer is not None:
        relayed = bool(_media(a.offer) & _media(b.offer))
        same_origin = (
            a.offer.origin is not None and b.offer.origin is not None and a.offer.origin == b.offer.origin
        )
        # A media-anchoring B2BUA puts its relay's address in the offer it sends and in the
        # answer it gives back: the same address on both sides.
        anchored = bool(_addresses(b.offer) & _addresses(a.answer)) or (
            b.exit in _addresses(b.offer) and a.answer is None
        )
        identified = identified or relayed or same_origin or anchored
        if relayed or same_origin:
            weighted.append((2.0, 1.0))
            evidence.append("SDP offer relayed unchanged" + (" (same o= line)" if same_origin else ""))
        elif anchored:
            weighted.append((2.0, 0.7))
            relay = ", ".join(sorted(_addresses(b.offer) & _addresses(a.answer))) or b.exit
            evidence.append(f"media anchored at {relay} on both legs")
        else:
            weighted.append((2.0, 0.0))

    mirrors = [
        ("18x", _mirrored_provisional(a, b)),
        ("final response", _lag_score(b.final_at, a.final_at) if a.final_class == b.final_class else
         (0.0 if a.final_at is not None and b.final_at is not None else None)),
        ("CANCEL", _lag_score(a.cancel_at, b.cancel_at)),
        ("BYE", _lag_score(min(filter(None, (a.bye_at, b.bye_at)), default=None),
                           max(filter(None, (a.bye_at, b.bye_at)), default=None))
         if a.bye_at is not None and b.bye_at is not None else None),
    ]  # fmt: skip
    for name, value in mirrors:
        if value is None:
            continue
        weighted.append((1.5, value))
        if value > 0.3:
            evidence.append(f"{name} mirrored across the legs")
        else:
            evidence.append(f"{name} not mirrored")
    total = sum(w for w, _ in weighted)
    score = sum(w * v for w, v in weighted) / total
    if not identified:
        score = min(score, MIN_SCORE - 0.01)  # timing alone never links two legs
    return round(min(score, HEURISTIC_CEILING), 3), evidence


def _hungarian(scores: list[list[float]]) -> list[tuple[int, int]]:
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


# --- the whole thing ------------------------------------------------------------------------------


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


class _RawLink(NamedTuple):
    a: int
    b: int
    method: str
    confidence: float
    evidence: tuple[str, ...]


def _header_links(facts: Sequence[_LegFacts]) -> list[_RawLink]:
    by_call_id = {f.leg.call_id: f.index for f in facts}
    links = []
    for f in facts:
        for name, claimed in f.claims.items():
            other = by_call_id.get(claimed)
            if other is not None and other != f.index:
                links.append(
                    _RawLink(other, f.index, f"header:{name}", HEADER_CONFIDENCE,
                             (f"{name} of {f.leg.call_id} names {claimed}",))
                )  # fmt: skip
    return links


def _shared_value_links(
    facts: Sequence[_LegFacts], values: Iterable[tuple[int, str]], method: str, confidence: float, what: str
) -> list[_RawLink]:
    groups: dict[str, list[int]] = defaultdict(list)
    for index, value in values:
        if index not in groups[value]:
            groups[value].append(index)
    by_index = facts_by_index(facts)
    links = []
    for value, members in groups.items():
        ordered = sorted(members, key=lambda i: by_index[i].exit_at)
        for a, b in itertools.pairwise(ordered):
            links.append(_RawLink(a, b, method, confidence, (f"both legs carry {what} {value}",)))
    return links


def facts_by_index(facts: Sequence[_LegFacts]) -> dict[int, _LegFacts]:
    return {f.index: f for f in facts}


def _heuristic_links(
    facts: Sequence[_LegFacts], window: float, linked: set[frozenset[int]], claimed: set[int]
) -> list[_RawLink]:
    inbound: dict[str, list[_LegFacts]] = defaultdict(list)
    outbound: dict[str, list[_LegFacts]] = defaultdict(list)
    for f in facts:
        inbound[f.entry].append(f)
        outbound[f.exit].append(f)
    links: list[_RawLink] = []
    for host, outs in outbound.items():
        ins = inbound.get(host)
        if not ins:
            continue
        candidates: dict[tuple[int, int], tuple[float, list[str]]] = {}
        outs.sort(key=lambda f: f.exit_at)
        times = [f.exit_at for f in outs]
        for a in ins:
            lo = bisect.bisect_left(times, a.arrive_at - 0.002)
            hi = bisect.bisect_right(times, a.arrive_at + window)
            for b in outs[lo:hi]:
                if a.index == b.index or b.index in claimed or frozenset((a.index, b.index)) in linked:
                    continue
                if a.final_at is not None and a.final_at < b.exit_at - 0.002:
                    continue  # the inbound leg was already answered or refused: not its B2BUA leg
                score, evidence = _score(a, b, window, a.arrive_at)
                if score >= MIN_SCORE:
                    candidates[(a.index, b.index)] = (score, evidence)
        if not candidates:
            continue
        rows = sorted({a for a, _ in candidates})
        cols = sorted({b for _, b in candidates})
        matrix = [[candidates.get((a, b), (0.0, []))[0] for b in cols] for a in rows]
        assigned: dict[int, list[int]] = defaultdict(list)
        taken: set[int] = set(claimed)
        for r, c in _hungarian(matrix):
            ai, bi = rows[r], cols[c]
            if (ai, bi) in candidates:
                score, evidence = candidates[(ai, bi)]
                links.append(_RawLink(ai, bi, "b2bua-heuristic", score, tuple(evidence)))
                assigned[ai].append(bi)
                taken.add(bi)
        links.extend(_hunting_links(facts, host, assigned, taken, outs, window))
    return links


def _hunting_links(
    facts: Sequence[_LegFacts],
    host: str,
    assigned: dict[int, list[int]],
    taken: set[int],
    outs: Sequence[_LegFacts],
    window: float,
) -> list[_RawLink]:
    """Outbound legs tried in turn for one inbound leg: each starts soon after the previous
    one ended, while the inbound leg is still unanswered."""
    by_index = facts_by_index(facts)
    links = []
    for a_index, bs in assigned.items():
        a = by_index[a_index]
        current = by_index[bs[0]]
        while current.final_at is not None and (current.final_class or 0) >= 3:
            best: tuple[float, _LegFacts, list[str]] | None = None
            for b in outs:
                if b.index in taken or b.index == a.index:
                    continue
                if not (current.final_at - 0.002 <= b.exit_at <= current.final_at + window):
                    continue
                if a.final_at is not None and b.exit_at > a.final_at:
                    continue
                score, evidence = _score(a, b, window, current.final_at)
                if score >= MIN_SCORE and (best is None or score > best[0]):
                    best = (score, b, evidence)
            if best is None:
                break
            score, b, evidence = best
            evidence = [
                f"hunting: tried after {current.leg.call_id} ended with {current.final_class}xx",
                *evidence,
            ]
            links.append(_RawLink(a.index, b.index, "b2bua-heuristic", score, tuple(evidence)))
            taken.add(b.index)
            current = b
    return links


def correlate(legs: Sequence[Leg], options: CorrelationOptions | None = None) -> list[Group]:
    """Group ``legs`` into calls. Legs without an initial INVITE stay alone."""
    options = options or CorrelationOptions()
    if not options.enabled:
        return [Group((leg,), ()) for leg in legs]
    facts = [f for i, leg in enumerate(legs) if (f := _facts(i, leg, options.headers)) is not None]
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
    raw += _heuristic_links(facts, options.window, linked, claimed)

    uf = _UnionFind(len(legs))
    best: dict[frozenset[int], _RawLink] = {}
    for link in raw:
        key = frozenset((link.a, link.b))
        if key not in best or link.confidence > best[key].confidence:
            best[key] = link
        uf.union(link.a, link.b)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(legs)):
        members[uf.find(i)].append(i)
    start = {i: legs[i].start for i in range(len(legs))}
    for f in facts:
        start[f.index] = f.exit_at
    groups = []
    for root in sorted(members, key=lambda r: min(start[i] for i in members[r])):
        order = sorted(members[root], key=lambda i: (start[i], i))
        position = {leg_index: pos for pos, leg_index in enumerate(order)}
        links = tuple(
            Link(
                legs=tuple(sorted((position[link.a], position[link.b]))),  # type: ignore[arg-type]
                method=link.method,
                confidence=link.confidence,
                evidence=link.evidence,
            )
            for link in sorted(best.values(), key=lambda k: (position.get(k.a, -1), position.get(k.b, -1)))
            if link.a in position
        )
        groups.append(Group(tuple(legs[i] for i in order), links))
    return groups


def related_calls(legs: Sequence[Leg]) -> dict[str, set[str]]:
    """Transfers: Call-ID → Call-IDs related to it by Replaces (RFC 3891) or by a REFER whose
    Refer-To (RFC 3515) names the target of a later INVITE. Related calls are not merged."""
    related: dict[str, set[str]] = defaultdict(set)
    call_ids = {leg.call_id for leg in legs}
    refers: list[tuple[float, str, str]] = []  # (time, Call-ID of the REFER, target user)
    for leg in legs:
        for message in leg.messages:
            sip = message.sip
            if not isinstance(sip, SipRequest) or message.retransmission:
                continue
            if sip.method == "INVITE":
                replaces = sip.headers.get("Replaces")
                if replaces:
                    target = replaces.split(";", 1)[0].strip()
                    if target in call_ids and target != leg.call_id:
                        related[leg.call_id].add(target)
                        related[target].add(leg.call_id)
            elif sip.method == "REFER":
                refer_to = sip.headers.get("Refer-To")
                if refer_to:
                    try:
                        uri = parse_name_addr(refer_to).uri
                    except Exception:
                        continue
                    if "replaces=" in uri.raw.lower():
                        match = re.search(r"replaces=([^;&>]+)", uri.raw, re.IGNORECASE)
                        target = match.group(1).replace("%40", "@") if match else ""
                        if target in call_ids and target != leg.call_id:
                            related[leg.call_id].add(target)
                            related[target].add(leg.call_id)
                    if uri.user:
                        refers.append((message.timestamp, leg.call_id, _normalize_user(uri.user)))
    for time, refer_call_id, user in refers:
        for leg in legs:
            invites = _initial_invites(leg)
            if leg.call_id == refer_call_id or not invites or invites[0].request is None:
                continue
            invite = invites[0].request
            if 0 <= invite.timestamp - time <= 32.0 and _users_match(_request_user(invite), user):
                related[refer_call_id].add(leg.call_id)
                related[leg.call_id].add(refer_call_id)
    return related
