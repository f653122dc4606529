"""Legs and calls: what a person means by "a call".

A *leg* is everything captured with one Call-ID: its transactions hop by hop (a stateful
proxy keeps the Call-ID, RFC 3261 §16.6, so caller → proxy → callee is one leg with two
hops) and its dialogs. A *call* holds one or more legs; correlating legs that carry
different Call-IDs (B2BUAs, topology hiding) into one call is done by ``sipflow.correlate``.
The call's state and timings are the caller's view, measured on the caller's hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sipflow.capture.packet import Endpoint
from sipflow.model.dialog import Dialog
from sipflow.model.message import Message
from sipflow.model.transaction import Transaction
from sipflow.sip.message import NameAddr, SipRequest


class CallKind(StrEnum):
    """What a Call-ID is for, from the methods it carries."""

    CALL = "call"
    REGISTRATION = "registration"
    SUBSCRIPTION = "subscription"
    OPTIONS = "options"
    MESSAGE = "message"
    OTHER = "other"


class CallState(StrEnum):
    """The caller's view of a call when the capture ended."""

    SETUP = "setup"
    """INVITE sent, no ringing and no final response yet."""
    RINGING = "ringing"
    """A provisional response above 100 (180, 183...), no final response yet."""
    IN_CALL = "in-call"
    """Answered (2xx), no BYE yet."""
    COMPLETED = "completed"
    """Answered, then a BYE (whatever its answer: a 481 to BYE is a finding, not a state)."""
    CANCELLED = "cancelled"
    """The caller sent CANCEL and the INVITE ended without a 2xx (normally 487)."""
    REJECTED = "rejected"
    """A final 3xx–6xx refusal (404, 486, 603...) other than those under FAILED."""
    FAILED = "failed"
    """No final response within timer B, or a final response reporting a timeout or a
    server failure (408, 5xx)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """Why two legs of a call belong together (found by ``sipflow.correlate``)."""

    legs: tuple[int, int]
    """Indices in ``Call.legs`` (the earlier leg first)."""
    method: str
    """``header:NAME``, ``p-charging-vector``, ``session-id`` or ``b2bua-heuristic``."""
    confidence: float
    evidence: tuple[str, ...]
    """One sentence per piece of evidence, for ``--explain``."""


def _is_failure(status: int) -> bool:
    return status == 408 or 500 <= status < 600


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    """Everything captured with one Call-ID."""

    call_id: str
    from_: NameAddr | None
    """From of the first request (the caller, for a call)."""
    to: NameAddr | None
    hops: tuple[tuple[Endpoint, Endpoint], ...]
    """(client, server) of the leg's initial request at each hop, in time order."""
    dialogs: tuple[Dialog, ...]
    transactions: tuple[Transaction, ...]
    messages: tuple[Message, ...]

    @property
    def caller(self) -> Endpoint:
        return self.hops[0][0] if self.hops else self.messages[0].src

    @property
    def callee(self) -> Endpoint:
        return self.hops[-1][1] if self.hops else self.messages[0].dst

    @property
    def retransmissions(self) -> int:
        return sum(1 for m in self.messages if m.retransmission)

    @property
    def start(self) -> float:
        return self.messages[0].timestamp

    @property
    def end(self) -> float:
        return self.messages[-1].timestamp


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One call (or, for other kinds, one registration, subscription, OPTIONS ping...)."""

    index: int
    """1-based position in the analysis, in order of start time (``--call N``)."""
    id: str
    """The Call-ID of the caller's leg."""
    kind: CallKind
    state: CallState
    final_status: int | None
    """The final response the caller saw to its (last) initial request, or None."""
    final_reason: str | None
    start: float
    end: float
    pdd_ms: float | None
    """Post-dial delay: caller's first INVITE to the first 18x it received."""
    setup_ms: float | None
    """Caller's first INVITE to the 2xx it received."""
    duration_s: float | None
    """Answer (2xx) to the first BYE; None when not answered or not yet hung up."""
    legs: tuple[Leg, ...]
    """The caller's leg first, then the others in order of their first INVITE."""
    correlation: tuple[Link, ...] = ()
    """Why the legs belong together (see ``sipflow.correlate``)."""
    related: tuple[str, ...] = ()
    """Call-IDs of calls related by a transfer (REFER, Replaces), not merged into this one."""

    @property
    def from_(self) -> NameAddr | None:
        return self.legs[0].from_

    @property
    def to(self) -> NameAddr | None:
        return self.legs[0].to

    @property
    def messages(self) -> tuple[Message, ...]:
        if len(self.legs) == 1:
            return self.legs[0].messages
        return tuple(sorted((m for leg in self.legs for m in leg.messages), key=lambda m: m.index))

    @property
    def retransmissions(self) -> int:
        return sum(leg.retransmissions for leg in self.legs)

    @property
    def call_ids(self) -> tuple[str, ...]:
        return tuple(leg.call_id for leg in self.legs)


def leg_kind(leg: Leg) -> CallKind:
    methods = {tx.method for tx in leg.transactions}
    if "INVITE" in methods or "CANCEL" in methods:  # CANCEL only ever targets an INVITE (§9)
        return CallKind.CALL
    if "REGISTER" in methods:
        return CallKind.REGISTRATION
    if "SUBSCRIBE" in methods or "NOTIFY" in methods:
        return CallKind.SUBSCRIPTION
    if methods == {"OPTIONS"}:
        return CallKind.OPTIONS
    if "MESSAGE" in methods:
        return CallKind.MESSAGE
    return CallKind.OTHER


def _initial(tx: Transaction) -> bool:
    """A request outside any dialog: no To tag (RFC 3261 §12.1.2)."""
    req = tx.request
    if req is None:
        first = tx.messages[0].sip
        return first.cseq is not None and first.cseq.method == tx.method and tx.method != "ACK"
    return req.sip.to is None or req.sip.to.tag is None


_MAIN_METHOD = {
    CallKind.CALL: "INVITE",
    CallKind.REGISTRATION: "REGISTER",
    CallKind.SUBSCRIPTION: "SUBSCRIBE",
    CallKind.OPTIONS: "OPTIONS",
    CallKind.MESSAGE: "MESSAGE",
}


def initial_transactions(leg: Leg, kind: CallKind) -> list[Transaction]:
    """The leg's initial requests of its main method (every hop, every attempt), in time order."""
    method = _MAIN_METHOD.get(kind)
    txs = [tx for tx in leg.transactions if (method is None or tx.method == method) and _initial(tx)]
    if not txs and method is not None:
        txs = [tx for tx in leg.transactions if tx.method == method]
    if not txs:
        txs = [tx for tx in leg.transactions if tx.method != "ACK"] or list(leg.transactions)
    return sorted(txs, key=lambda t: t.start)


def leg_hops(transactions: list[Transaction]) -> tuple[tuple[Endpoint, Endpoint], ...]:
    hops: list[tuple[Endpoint, Endpoint]] = []
    for tx in transactions:
        pair = (tx.client, tx.server)
        if pair not in hops:
            hops.append(pair)
    return tuple(hops)


def _ms(a: float, b: float) -> float:
    return round((b - a) * 1000.0, 3)


def build_call(
    index: int, legs: tuple[Leg, ...], correlation: tuple[Link, ...] = (), related: tuple[str, ...] = ()
) -> Call:
    """Derive a call's kind, state and timings from its legs (the first is the caller's)."""
    leg = legs[0]
    kind = leg_kind(leg)
    initial = initial_transactions(leg, kind)
    caller = initial[0].client if initial else leg.messages[0].src
    # The caller's hop: the initial requests the caller itself sent (every attempt, e.g.
    # the INVITE challenged with 407 and the one re-sent with credentials).
    attempts = [tx for tx in initial if tx.client == caller] or initial
    start = min(m.timestamp for lg in legs for m in lg.messages)
    end = max(m.timestamp for lg in legs for m in lg.messages)
    first_request = attempts[0].request if attempts else None
    t0 = first_request.timestamp if first_request is not None else (attempts[0].start if attempts else start)

    pdd = setup = duration = None
    final_status: int | None = None
    final_reason: str | None = None

    answered = next(
        (tx for tx in attempts if tx.final_status is not None and 200 <= tx.final_status < 300), None
    )
    # A call is answered if any attempt was; anything else is judged by its last attempt
    # (a REGISTER refreshed many times is as good as its latest answer).
    last_attempt = attempts[-1] if attempts else None
    decisive = (answered or last_attempt) if kind is CallKind.CALL else last_attempt
    if decisive is not None and decisive.final is not None:
        fin = decisive.final
        final_status = decisive.final_status
        final_reason = getattr(fin.sip, "reason", None)

    if kind is CallKind.CALL:
        ringing = [m for tx in attempts if (m := tx.first_provisional) is not None]
        if ringing:
            pdd = _ms(t0, min(m.timestamp for m in ringing))
        if answered is not None and answered.final is not None:
            answer_time = answered.final.timestamp
            setup = _ms(t0, answer_time)
            byes = [
                m
                for lg in legs
                for m in lg.messages
                if isinstance(m.sip, SipRequest) and m.sip.method == "BYE" and m.timestamp >= answer_time
            ]
            if byes:
                duration = round(byes[0].timestamp - answer_time, 3)
                state = CallState.COMPLETED
            else:
                state = CallState.IN_CALL
        else:
            last = attempts[-1] if attempts else None
            cancelled = last is not None and (
                last.cancelled_by is not None
                or any(
                    tx.method == "CANCEL" and tx.client == caller and tx.start >= last.start
                    for tx in leg.transactions
                )
            )
            if last is None:
                state = CallState.SETUP
            elif cancelled and (last.final_status is None or last.final_status == 487):
                state = CallState.CANCELLED
            elif last.final_status is not None:
                state = CallState.FAILED if _is_failure(last.final_status) else CallState.REJECTED
            elif last.timed_out:
                state = CallState.FAILED
            elif ringing:
                state = CallState.RINGING
            else:
                state = CallState.SETUP
    else:
        last = attempts[-1] if attempts else None
        if last is None or last.final_status is None:
            state = CallState.FAILED if last is not None and last.timed_out else CallState.SETUP
        elif 200 <= last.final_status < 300:
            state = CallState.COMPLETED
        else:
            state = CallState.FAILED if _is_failure(last.final_status) else CallState.REJECTED

    return Call(
        index=index,
        id=leg.call_id,
        kind=kind,
        state=state,
        final_status=final_status,
        final_reason=final_reason,
        start=start,
        end=end,
        pdd_ms=pdd,
        setup_ms=setup,
        duration_s=duration,
        legs=legs,
        correlation=correlation,
        related=related,
    )


def leg_outcome(leg: Leg) -> tuple[CallState, int | None]:
    """A leg's own state and final status, as its caller side saw them."""
    alone = build_call(0, (leg,))
    return alone.state, alone.final_status
