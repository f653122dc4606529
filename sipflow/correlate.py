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
   scored and the best consistent assignment is taken (Hungarian method, ``sipflow.assign``),
   never the first or latest match. A leg that hunts (one inbound leg, outbound legs tried
   in turn) keeps each later outbound leg that starts within the window after the previous
   one ended.

The work grows with the number of legs times the candidates of each, not with its square: a
candidate leaves the host within the window after the inbound INVITE arrived, and only a pair
that something ties (a number, the From tag, the SDP; ``_Outbound`` finds them through
indexes) can score ``MIN_SCORE``, so the other pairs in the window are never scored. The
assignment is solved per connected component of the candidate pairs.

Links are merged with union-find, so chains (caller → SBC → B2BUA → callee) give one call.
``related_calls`` finds transfers (REFER, Replaces): related, never merged.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sipflow.assign import AssignmentStats, assign
from sipflow.model.call import CallKind, Leg, Link
from sipflow.model.caller import caller_view
from sipflow.model.message import Message
from sipflow.model.session import SdpRole, iter_sdp_roles
from sipflow.model.transaction import Transaction
from sipflow.sip.message import SipRequest, SipResponse, canonical_name
from sipflow.sip.parse import parse_name_addr, parse_uri
from sipflow.sip.sdp import SdpDigest, find_sdp_digest

DEFAULT_HEADERS = ("X-CID", "X-Call-ID", "X-Orig-Call-ID", "X-Original-Call-ID")
HEADER_CONFIDENCE = 0.99
CHARGING_CONFIDENCE = 0.95
SESSION_ID_CONFIDENCE = 0.95
HEURISTIC_CEILING = 0.95
"""A heuristic link is never shown as surer than a header that names the other leg."""
MIN_SCORE = 0.5
MIRROR_LAG = 1.0
"""Seconds within which a B2BUA passes an event (18x, final, CANCEL, BYE) on to the other leg."""
MIRROR_NEAR = 0.105
"""Seconds: a mirrored event scores 0.5 or more only within 0.15·ln 2 ≈ 0.104 s (``_lag_score``),
and a pair tied by anchored media alone reaches ``MIN_SCORE`` only with such an event (the
weights in ``_score``: (1 + 2·0.7 + 1.5·Σm) / (5 + 1.5·M) ≥ 0.4995 needs some m > 0.51)."""
SLACK = 0.002
"""Seconds a relayed event may seem to precede its cause (clocks of two capture points)."""
TRANSFER_WINDOW = 32.0
"""Seconds after a REFER within which the INVITE it asks for is looked for (64·T1)."""
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


@dataclass(slots=True)
class CorrelationStats:
    """The work one ``correlate`` (and ``related_calls``) call did: for tests and measurements."""

    legs: int = 0
    pairs_scored: int = 0
    """B2BUA candidate pairs scored (``_score``), hunting included."""
    candidates: int = 0
    """Pairs that scored at least ``MIN_SCORE``."""
    assignment: AssignmentStats = field(default_factory=AssignmentStats)
    transfer_checks: int = 0
    """INVITEs compared with a REFER's target (``related_calls``)."""


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
    offer: SdpDigest | None
    answer: SdpDigest | None
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
    offer_media: frozenset[tuple[str, int]] = frozenset()
    """(address, port) of each stream of ``offer`` (once loaded)."""
    offer_addresses: frozenset[str] = frozenset()
    answer_addresses: frozenset[str] = frozenset()


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


def _user_key(user: str) -> str | None:
    """Equal for any two users that ``_users_match``: a number of 6 digits or more by its last
    six, anything else as itself."""
    if not user:
        return None
    return user[-6:] if user.isdigit() and len(user) >= 6 else user


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
    """The leg's initial INVITEs whose request was captured, every hop, in time order."""
    view = caller_view(leg)
    if view.kind is not CallKind.CALL:
        return []
    return [
        tx
        for tx in view.initial
        if tx.method == "INVITE" and (r := tx.request) is not None and r.sip.to_tag is None
    ]


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
        from_tag=sip.from_tag,
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
    # Every header the facts read, in one pass over the INVITE's header lines.
    found = sip.headers.collect((*(rule.name for rule in rules), "P-Charging-Vector", "Session-ID"))
    for rule in rules:
        for value in found.get(canonical_name(rule.name), ()):
            claimed = rule.extract(value)
            if claimed:
                facts.claims[rule.name] = claimed
                break
    pcv = next(iter(found.get("p-charging-vector", ())), None)
    if pcv:
        match = re.search(r"icid-value\s*=\s*\"?([^\";]+)", pcv, re.IGNORECASE)
        if match:
            facts.icid = match.group(1).strip()
    sid = next(iter(found.get("session-id", ())), None)
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
    for _, role, description in iter_sdp_roles(f.leg.messages, find_sdp_digest):
        if role is SdpRole.OFFER and f.offer is None:
            f.offer = description
        elif role is SdpRole.ANSWER and f.answer is None:
            f.answer = description
        if f.offer is not None and f.answer is not None:
            break
    f.offer_media = f.offer.media if f.offer is not None else frozenset()
    f.offer_addresses = f.offer.addresses if f.offer is not None else frozenset()
    f.answer_addresses = f.answer.addresses if f.answer is not None else frozenset()


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


def _anchored(a: _LegFacts, b: _LegFacts) -> bool:
    """A media-anchoring B2BUA puts its relay's address in the offer it sends and in the
    answer it gives back: the same address on both sides (SDP loaded, B's offer present)."""
    return bool(b.offer_addresses & a.answer_addresses) or (b.exit in b.offer_addresses and a.answer is None)


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
        relayed = bool(a.offer_media & b.offer_media)
        same_origin = (
            a.offer.origin is not None and b.offer.origin is not None and a.offer.origin == b.offer.origin
        )
        anchored = _anchored(a, b)
        identified = identified or relayed or same_origin or anchored
        if relayed or same_origin:
            weighted.append((2.0, 1.0))
            evidence.append("SDP offer relayed unchanged" + (" (same o= line)" if same_origin else ""))
        elif anchored:
            weighted.append((2.0, 0.7))
            relay = ", ".join(sorted(b.offer_addresses & a.answer_addresses)) or b.exit
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


# --- B2BUA candidates -----------------------------------------------------------------------------


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


def _tie_keys(f: _LegFacts) -> Iterator[tuple[str, object]]:
    """What, shared by two legs, identifies them as one call in ``_score`` (beyond timing):
    a caller or callee number (``_user_key``), the From tag, a relayed stream or o= line."""
    if (key := _user_key(f.to_user)) is not None:
        yield "to", key
    if (key := _user_key(f.from_user)) is not None:
        yield "from", key
    if f.from_tag is not None:
        yield "tag", f.from_tag
    if f.offer is not None:
        for stream in f.offer_media:
            yield "media", stream
        if f.offer.origin is not None:
            yield "origin", f.offer.origin


class _Outbound:
    """The INVITEs that left one host, indexed so that an inbound leg finds the outbound legs
    that may score ``MIN_SCORE`` with it without looking at the others: those sharing a
    ``_tie_keys`` value, and those whose only tie can be anchored media, which also need a
    mirrored event within ``MIRROR_NEAR`` (see there)."""

    def __init__(self, outs: Sequence[_LegFacts], windows: Iterable[tuple[float, float]]) -> None:
        """``outs`` in order of ``exit_at``; only those within one of ``windows`` are indexed."""
        self.all = _Timeline()
        self.by_key: dict[tuple[str, object], _Timeline] = defaultdict(_Timeline)
        self.provisional = _Timeline()
        self.final = _Timeline()
        self.cancel = _Timeline()
        self.bye = _Timeline()
        for b in outs:
            self.all.add(b.exit_at, b)
        for b in self._within(windows):
            _load_sdp(b)
            for key in _tie_keys(b):
                self.by_key[key].add(b.exit_at, b)
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

    def _within(self, windows: Iterable[tuple[float, float]]) -> Iterator[_LegFacts]:
        """The outbound legs within any of ``windows``, each once, in time order."""
        times, legs = self.all.times, self.all.legs
        done = 0
        for lo, hi in sorted(windows):
            start = max(done, bisect.bisect_left(times, lo))
            done = max(done, bisect.bisect_right(times, hi))
            yield from legs[start:done]

    def candidates(self, a: _LegFacts, lo: float, hi: float) -> list[_LegFacts]:
        """The outbound legs that left in [lo, hi] and may score ``MIN_SCORE`` as ``a``'s."""
        found: dict[int, _LegFacts] = {}
        for key in _tie_keys(a):
            timeline = self.by_key.get(key)
            if timeline is not None:
                for b in timeline.between(lo, hi):
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
        windows = {a.index: (a.arrive_at - SLACK, a.arrive_at + window) for a in ins}
        index = _Outbound(outs, windows.values())
        candidates: dict[tuple[int, int], tuple[float, list[str]]] = {}
        for a in ins:
            lo, hi = windows[a.index]
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
                f"hunting: tried after {current.leg.call_id} ended with {current.final_class}xx",
                *evidence,
            ]
            links.append(_RawLink(a.index, b.index, "b2bua-heuristic", score, tuple(evidence)))
            taken.add(b.index)
            current = b
    return links


# --- the whole thing ------------------------------------------------------------------------------


def correlate(
    legs: Sequence[Leg], options: CorrelationOptions | None = None, *, stats: CorrelationStats | None = None
) -> list[Group]:
    """Group ``legs`` into calls. Legs without an initial INVITE stay alone. ``stats``, when
    given, counts the work done."""
    options = options or CorrelationOptions()
    stats = stats if stats is not None else CorrelationStats()
    stats.legs += len(legs)
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
    raw += _heuristic_links(facts, options.window, linked, claimed, stats)

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
    links_of: dict[int, list[_RawLink]] = defaultdict(list)
    for link in best.values():
        links_of[uf.find(link.a)].append(link)
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
            for link in sorted(links_of.get(root, ()), key=lambda k: (position[k.a], position[k.b]))
        )
        groups.append(Group(tuple(legs[i] for i in order), links))
    return groups


def related_calls(legs: Sequence[Leg], *, stats: CorrelationStats | None = None) -> dict[str, set[str]]:
    """Transfers: Call-ID → Call-IDs related to it by Replaces (RFC 3891) or by a REFER whose
    Refer-To (RFC 3515) names the target of a later INVITE. Related calls are not merged."""
    stats = stats if stats is not None else CorrelationStats()
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
    if not refers:
        return related
    # The first initial INVITE of each leg, by its target user (``_user_key``) and time.
    invites: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
    for leg in legs:
        first = _initial_invites(leg)
        if first and first[0].request is not None:
            invite = first[0].request
            user = _request_user(invite)
            if (key := _user_key(user)) is not None:
                invites[key].append((invite.timestamp, user, leg.call_id))
    for entries in invites.values():
        entries.sort(key=lambda e: e[0])
    times = {key: [e[0] for e in entries] for key, entries in invites.items()}
    for time, refer_call_id, user in refers:
        key = _user_key(user)
        if key is None or key not in invites:
            continue
        entries = invites[key]
        lo = bisect.bisect_left(times[key], time - 1e-6)
        hi = bisect.bisect_right(times[key], time + TRANSFER_WINDOW + 1e-6)
        for timestamp, invite_user, call_id in entries[lo:hi]:
            stats.transfer_checks += 1
            if call_id == refer_call_id:
                continue
            if 0 <= timestamp - time <= TRANSFER_WINDOW and _users_match(invite_user, user):
                related[refer_call_id].add(call_id)
                related[call_id].add(refer_call_id)
    return related
