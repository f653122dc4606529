"""The score of one B2BUA candidate pair: how well an outbound leg matches an inbound one.

Timing, identities (callee, caller, From tag), the SDP (relayed unchanged or anchored at the
B2BUA) and the events a B2BUA mirrors from one leg to the other (18x, final class, CANCEL, BYE)
each weigh in; timing alone never reaches ``MIN_SCORE``, and no score exceeds
``HEURISTIC_CEILING``.
"""

from __future__ import annotations

import math

from sipflow.correlate.facts import _LegFacts, _load_sdp, _users_match

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


def _mirrored_cancel(a: _LegFacts, b: _LegFacts) -> float | None:
    """A's CANCEL passed on to B. When A was cancelled while B was still pending and B saw no
    CANCEL, a B2BUA would have cancelled B: not mirrored (0); unless B's final response came
    within ``MIRROR_NEAR`` after (it crossed the CANCEL, which a B2BUA then need not pass on),
    or before (B was over already). A CANCEL on B alone says nothing (a B2BUA cancels an
    outbound leg on a timer too)."""
    if a.cancel_at is None:
        return None
    if b.cancel_at is not None:
        return _lag_score(a.cancel_at, b.cancel_at)
    if b.final_at is None or b.final_at > a.cancel_at + MIRROR_NEAR:
        return 0.0
    return None


def _mirrored_final(a: _LegFacts, b: _LegFacts) -> float | None:
    """B's final response passed on to A: by class (a B2BUA may map the codes), in time. When
    A was cancelled before its final response and B's came about then or later, A's answers
    its own CANCEL (a 487, or a 200 that crossed it), whatever B did: it says nothing, and
    ``_mirrored_cancel`` weighs the CANCEL. B's final response well before A's CANCEL is held
    to A's as usual (a B2BUA would have passed it on: A had no reason to cancel)."""
    if a.final_at is None or b.final_at is None:
        return None
    if (
        a.cancel_at is not None
        and a.cancel_at <= a.final_at + SLACK
        and b.final_at >= a.cancel_at - MIRROR_NEAR
    ):
        return None
    if a.final_class != b.final_class:
        return 0.0
    return _lag_score(b.final_at, a.final_at)


def _score(a: _LegFacts, b: _LegFacts, window: float, start: float) -> tuple[float, list[str]]:
    """Score B as the outbound leg of A at the B2BUA host; ``start`` is when B's INVITE could
    first be sent (A's arrival, or the end of A's previous outbound leg when hunting).

    A pair tied only by anchored media (the relay's address, the same in every call the
    B2BUA anchors) is identified by nothing of its own: a CANCEL or BYE that one leg had and
    the B2BUA did not pass on to the other (a B2BUA must, RFC 3261 §9.1, §15.1.2 at each of its
    user agents) then rules it out. On a busy SBC two unrelated calls' events meet by chance
    within ``MIRROR_NEAR`` often enough that one coincidence must not outweigh a contradiction.
    An 18x or final response is not held against it: a B2BUA may ring on its own or hunt."""
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
    only_anchored = False
    if a.from_tag is not None and a.from_tag == b.from_tag:
        weighted.append((2.0, 1.0))
        evidence.append("same From tag")
        identified = True

    _load_sdp(a)
    _load_sdp(b)
    if a.offer is not None and b.offer is not None:
        relayed = any(stream in b.offer_media for stream in a.offer_media)
        same_origin = (
            a.offer.origin is not None and b.offer.origin is not None and a.offer.origin == b.offer.origin
        )
        anchored = _anchored(a, b)
        only_anchored = anchored and not (identified or relayed or same_origin)
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
        ("final response", _mirrored_final(a, b)),
        ("CANCEL", _mirrored_cancel(a, b)),
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
            if only_anchored and name in ("CANCEL", "BYE"):
                identified = False
    total = sum(w for w, _ in weighted)
    score = sum(w * v for w, v in weighted) / total
    if not identified:
        score = min(score, MIN_SCORE - 0.01)  # timing alone never links two legs
    return round(min(score, HEURISTIC_CEILING), 3), evidence
