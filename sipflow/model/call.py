"""Legs and calls: what a person means by "a call".

A *leg* is everything captured with one Call-ID: its transactions hop by hop (a stateful
proxy keeps the Call-ID, RFC 3261 §16.6, so caller → proxy → callee is one leg with two
hops) and its dialogs. A *call* holds one or more legs; correlating legs that carry
different Call-IDs (B2BUAs, topology hiding) into one call is done by ``sipflow.correlate``.
The call's state and timings are the caller's view, measured on the caller's hop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from sipflow.capture.types import Endpoint
from sipflow.model.dialog import Dialog
from sipflow.model.message import Message
from sipflow.model.session import Negotiation, negotiate
from sipflow.model.transaction import Transaction
from sipflow.sip.message import NameAddr, SipRequest, Uri
from sipflow.sip.parse import parse_name_addrs

if TYPE_CHECKING:
    from sipflow.model.caller import CallerView


class CallKind(StrEnum):
    """What a Call-ID is for, from the methods it carries."""

    CALL = "call"
    REGISTRATION = "registration"
    SUBSCRIPTION = "subscription"
    OPTIONS = "options"
    MESSAGE = "message"
    OTHER = "other"


class CallState(StrEnum):
    """What had become of an item when the capture ended, in the words of its kind.

    A call's states are the caller's view; registrations, subscriptions, OPTIONS pings,
    MESSAGEs and other requests have states of their own (``KIND_STATES`` says which states
    each kind takes). ``rejected`` and ``failed`` mean the same for every kind but OPTIONS.
    """

    SETUP = "setup"
    """INVITE sent, no ringing and no final response yet."""
    RINGING = "ringing"
    """A provisional response above 100 (180, 183...), no final response yet."""
    IN_CALL = "in-call"
    """Answered (2xx), no BYE yet."""
    COMPLETED = "completed"
    """Answered, then a BYE (whatever its answer: a 481 to BYE is a finding, not a state)."""
    CANCELLED = "cancelled"
    """The caller sent CANCEL before the final response and the INVITE ended without a 2xx
    (normally 487; 408 or 480 from some servers)."""
    REJECTED = "rejected"
    """A final 3xx–6xx refusal (404, 486, 603...) other than those under FAILED (and, for a
    registration, under CHALLENGED)."""
    FAILED = "failed"
    """No final response within timer B (INVITE) or timer F (other requests), or a final
    response reporting a timeout or a server failure (408, 5xx; for OPTIONS 408 and 504 only)."""
    REGISTERED = "registered"
    """Registration: the last REGISTER was answered 2xx and its binding stands
    (``Call.expires_s``: the expiry the registrar granted, RFC 3261 §10.2.4)."""
    UNREGISTERED = "unregistered"
    """Registration: the last REGISTER removed its bindings (``Expires: 0``, ``expires=0`` on
    its contacts, or ``Contact: *``, §10.2.2) and was answered 2xx."""
    CHALLENGED = "challenged"
    """Registration: the last REGISTER was challenged (401/407) and not re-sent with
    credentials (§22.2)."""
    ANSWERED = "answered"
    """OPTIONS: the last OPTIONS got a final response, whatever its status but 408 and 504 (a
    404 or a 503 still shows the peer is alive; ``final_status`` says what it answered)."""
    ACTIVE = "active"
    """Subscription: the last SUBSCRIBE was answered 2xx (or, none captured, a NOTIFY) and no
    NOTIFY ended it (RFC 6665)."""
    TERMINATED = "terminated"
    """Subscription: a NOTIFY said ``Subscription-State: terminated``, or a SUBSCRIBE with
    ``Expires: 0`` (an unsubscribe) was answered 2xx (RFC 6665 §4.1.2.3, §4.2.2)."""
    DELIVERED = "delivered"
    """MESSAGE: the last MESSAGE was answered 2xx (RFC 3428)."""
    ACCEPTED = "accepted"
    """Other requests (PUBLISH, INFO, a BYE whose INVITE was not captured...): the last one
    was answered 2xx."""
    PENDING = "pending"
    """Not a call: the last request has no final response yet, and the capture ended before
    timer F (32 s) could run out."""


KIND_STATES: Final[Mapping[CallKind, tuple[CallState, ...]]] = MappingProxyType(
    {
        CallKind.CALL: (
            CallState.SETUP,
            CallState.RINGING,
            CallState.IN_CALL,
            CallState.COMPLETED,
            CallState.CANCELLED,
            CallState.REJECTED,
            CallState.FAILED,
        ),
        CallKind.REGISTRATION: (
            CallState.REGISTERED,
            CallState.UNREGISTERED,
            CallState.CHALLENGED,
            CallState.REJECTED,
            CallState.FAILED,
            CallState.PENDING,
        ),
        CallKind.SUBSCRIPTION: (
            CallState.ACTIVE,
            CallState.TERMINATED,
            CallState.REJECTED,
            CallState.FAILED,
            CallState.PENDING,
        ),
        CallKind.OPTIONS: (CallState.ANSWERED, CallState.FAILED, CallState.PENDING),
        CallKind.MESSAGE: (CallState.DELIVERED, CallState.REJECTED, CallState.FAILED, CallState.PENDING),
        CallKind.OTHER: (CallState.ACCEPTED, CallState.REJECTED, CallState.FAILED, CallState.PENDING),
    }
)
"""The states each kind of item can take, in the order the README lists them."""


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
    _negotiation: Negotiation | None = field(default=None, init=False, repr=False, compare=False)
    _caller_view: CallerView | None = field(default=None, init=False, repr=False, compare=False)
    """Kept by ``sipflow.model.caller.caller_view``, which works it out on first use."""

    @property
    def negotiation(self) -> Negotiation:
        """The leg's SDP offers and answers (``sipflow.model.session.negotiate``), read on
        first use and kept: every consumer of the leg's SDP reads this one."""
        found = self._negotiation
        if found is None:
            found = negotiate(self.messages)
            object.__setattr__(self, "_negotiation", found)
        return found

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
    expires_s: int | None = None
    """A registration in state ``registered``: the expiry the registrar granted its binding, in
    seconds (the 2xx's Contact ``expires`` for the contact registered, else its Expires
    header; RFC 3261 §10.2.4); an ``active`` subscription: the 2xx's Expires (RFC 6665
    §4.2.1.1). None otherwise, or when the 2xx did not say."""

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
    return req.sip.to_tag is None


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


# ------------------------------------------------------------------- items that are not calls


def _answer(tx: Transaction | None, success: CallState) -> CallState:
    """The state of an item judged by one request: ``success`` for a 2xx, else as for a call."""
    status = tx.final_status if tx is not None else None
    if tx is None or status is None:
        return CallState.FAILED if tx is not None and tx.timed_out else CallState.PENDING
    if 200 <= status < 300:
        return success
    return CallState.FAILED if _is_failure(status) else CallState.REJECTED


def delta_seconds(value: str | None) -> int | None:
    """An Expires header or ``expires`` parameter (RFC 3261 §20.19, §10.2.1.1), else None."""
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def contacts(message: Message) -> list[NameAddr]:
    """Every Contact value of a message, in order (``Contact: *`` gives a wildcard)."""
    return [addr for value in message.sip.headers.get_all("contact") for addr in parse_name_addrs(value)]


def _same_binding(a: Uri, b: Uri) -> bool:
    """Two contacts name the same binding: RFC 3261 §19.1.4 on scheme, user, host and port."""
    if a.host is None or b.host is None:
        return a.raw == b.raw
    return (a.scheme, a.user, a.host.lower(), a.port) == (b.scheme, b.user, b.host.lower(), b.port)


def granted_expiry(final: Message, asked: list[NameAddr]) -> int | None:
    """The expiry a REGISTER's 2xx (``final``) granted the contacts ``asked`` for: the
    ``expires`` parameter of the binding listed for them (else of the only binding listed),
    else the 2xx's Expires header (RFC 3261 §10.2.4, §10.3 step 8); None when it says neither."""
    listed = contacts(final)
    mine = [c for c in listed if any(_same_binding(c.uri, a.uri) for a in asked)]
    if not mine and len(listed) == 1:
        mine = listed
    for contact in mine:
        value = delta_seconds(contact.param("expires"))
        if value is not None:
            return value
    return delta_seconds(final.sip.headers.get("expires"))


def requested_expiry(request: Message, contact: NameAddr) -> int | None:
    """The expiry a REGISTER asks for one of its contacts: its ``expires`` parameter, else the
    Expires header (RFC 3261 §10.2.1.1); None: the registrar chooses."""
    value = delta_seconds(contact.param("expires"))
    return value if value is not None else delta_seconds(request.sip.headers.get("expires"))


def _registration(last: Transaction | None) -> tuple[CallState, int | None]:
    """State and granted expiry of a registration, judged by its last REGISTER."""
    if last is not None and last.final_status in (401, 407):
        return CallState.CHALLENGED, None  # the attempts are in time order: none re-sent it
    state = _answer(last, CallState.REGISTERED)
    if last is None or state is not CallState.REGISTERED or last.final is None:
        return state, None
    request = last.request
    asked = contacts(request) if request is not None else []
    if any(c.is_wildcard for c in asked):
        return CallState.UNREGISTERED, None  # §10.2.2: Contact: * with Expires: 0
    if request is not None and asked and all(requested_expiry(request, c) == 0 for c in asked):
        return CallState.UNREGISTERED, None
    granted = granted_expiry(last.final, asked)
    if granted == 0 or (not asked and not contacts(last.final)):
        return CallState.UNREGISTERED, None  # nothing left bound (or a query that found nothing)
    return CallState.REGISTERED, granted


def subscription_state(message: Message) -> str | None:
    """The Subscription-State of a NOTIFY, lower-cased, parameters dropped (RFC 6665 §8.2.3)."""
    value = message.sip.headers.get("subscription-state")
    return value.split(";", 1)[0].strip().lower() if value is not None else None


def _subscription(leg: Leg, caller: Endpoint) -> tuple[CallState, Transaction | None, int | None]:
    """State, deciding transaction and granted expiry of a subscription (RFC 6665): its last
    SUBSCRIBE (refreshes included), and whether a NOTIFY sent since ended it."""
    subscribes = [tx for tx in leg.transactions if tx.method == "SUBSCRIBE"]
    mine = [tx for tx in subscribes if tx.client == caller] or subscribes
    last = max(mine, key=lambda tx: tx.start, default=None)
    since = last.start if last is not None else float("-inf")
    notifies = sorted(
        (tx for tx in leg.transactions if tx.method == "NOTIFY" and tx.request is not None),
        key=lambda tx: tx.start,
    )
    ended = any(
        tx.request is not None and tx.start >= since and subscription_state(tx.request) == "terminated"
        for tx in notifies
    )
    if last is None:
        notify = notifies[-1] if notifies else None
        return (CallState.TERMINATED if ended else _answer(notify, CallState.ACTIVE)), notify, None
    state = _answer(last, CallState.ACTIVE)
    if ended and state in (CallState.ACTIVE, CallState.PENDING):
        return CallState.TERMINATED, last, None
    if state is not CallState.ACTIVE or last.final is None:
        return state, last, None
    asked = delta_seconds(last.request.sip.headers.get("expires")) if last.request is not None else None
    granted = delta_seconds(last.final.sip.headers.get("expires"))
    if asked == 0 or granted == 0:
        return CallState.TERMINATED, last, None  # an unsubscribe (§4.1.2.3)
    return CallState.ACTIVE, last, granted


def _item_outcome(
    kind: CallKind, leg: Leg, last: Transaction | None, caller: Endpoint
) -> tuple[CallState, Transaction | None, int | None]:
    """State, the transaction whose final response is the item's, and the granted expiry of an
    item that is not a call, judged by its last request (``last``; see ``CallState``)."""
    if kind is CallKind.REGISTRATION:
        state, expires = _registration(last)
        return state, last, expires
    if kind is CallKind.SUBSCRIPTION:
        return _subscription(leg, caller)
    if kind is CallKind.OPTIONS:
        # Any final response shows the peer alive; 408 and 504 report a timeout (§21.4.9, §21.5.5).
        if last is not None and last.final_status is not None and last.final_status not in (408, 504):
            return CallState.ANSWERED, last, None
        return _answer(last, CallState.ANSWERED), last, None
    success = CallState.DELIVERED if kind is CallKind.MESSAGE else CallState.ACCEPTED
    return _answer(last, success), last, None


def _cancelled_first(invite: Transaction, leg: Leg, caller: Endpoint) -> bool:
    """Whether the caller sent a CANCEL for ``invite`` before its final response came (or with
    none): a CANCEL after the final response does nothing (RFC 3261 §9.1)."""
    final = invite.final
    final_time = final.timestamp if final is not None else None
    for tx in leg.transactions:
        if tx.method != "CANCEL" or tx.start < invite.start:
            continue
        ours = tx.id == invite.cancelled_by or tx.client == caller
        if ours and (final_time is None or tx.start <= final_time):
            return True
    return False


def build_call(
    index: int, legs: tuple[Leg, ...], correlation: tuple[Link, ...] = (), related: tuple[str, ...] = ()
) -> Call:
    """Derive a call's kind, state and timings from its legs (the first is the caller's)."""
    start = min(m.timestamp for lg in legs for m in lg.messages)
    end = max(m.timestamp for lg in legs for m in lg.messages)

    def bye_after(answer_time: float) -> float | None:
        for lg in legs:
            for m in lg.messages:
                if isinstance(m.sip, SipRequest) and m.sip.method == "BYE" and m.timestamp >= answer_time:
                    return m.timestamp
        return None

    kind, state, final_status, final_reason, pdd, setup, duration, expires = _decided(
        caller_outline(legs[0]), bye_after
    )
    return Call(
        index=index,
        id=legs[0].call_id,
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
        expires_s=expires,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerOutline:
    """What a call's outcome reads of its caller's leg: all of it but the BYE that ends an
    answered call, which may come in another leg (``caller_outline``, ``call_outcome``)."""

    kind: CallKind
    state: CallState
    """The call's state unless it was answered (then BYEs decide it)."""
    final_status: int | None
    final_reason: str | None
    pdd_ms: float | None
    setup_ms: float | None
    answer_time: float | None
    """When the call was answered (its first 2xx to an initial INVITE), or None."""
    expires_s: int | None


def caller_outline(leg: Leg) -> CallerOutline:
    """The ``CallerOutline`` of ``leg`` as the first leg of a call."""
    from sipflow.model.caller import caller_view  # noqa: PLC0415  # caller imports this module

    view = caller_view(leg)
    kind, caller, attempts = view.kind, view.caller, view.attempts
    t0 = view.start

    pdd = setup = None
    final_status: int | None = None
    final_reason: str | None = None
    state = CallState.SETUP

    # A call is answered if any attempt was; anything else is judged by its last attempt
    # (a REGISTER refreshed many times is as good as its latest answer).
    last_attempt = view.last
    expires: int | None = None
    if kind is CallKind.CALL:
        decisive = view.decisive
    else:
        state, decisive, expires = _item_outcome(kind, leg, last_attempt, caller)
    if decisive is not None and decisive.final is not None:
        fin = decisive.final
        final_status = decisive.final_status
        final_reason = getattr(fin.sip, "reason", None)

    answer_time = None
    if kind is CallKind.CALL:
        ringing = view.first_provisional
        if ringing is not None:
            pdd = _ms(t0, ringing.timestamp)
        answer_time = view.answer_time
        if answer_time is not None:
            setup = _ms(t0, answer_time)
            state = CallState.IN_CALL
        else:
            last = attempts[-1] if attempts else None
            cancelled = last is not None and _cancelled_first(last, leg, caller)
            if last is None:
                state = CallState.SETUP
            elif cancelled:
                # The caller gave up first: whatever refusal followed (487, or the 408 or 480
                # some servers send instead), the call was cancelled, as sngrep says.
                state = CallState.CANCELLED
            elif last.final_status is not None:
                state = CallState.FAILED if _is_failure(last.final_status) else CallState.REJECTED
            elif last.timed_out:
                state = CallState.FAILED
            elif ringing is not None:
                state = CallState.RINGING
            else:
                state = CallState.SETUP
    return CallerOutline(
        kind=kind,
        state=state,
        final_status=final_status,
        final_reason=final_reason,
        pdd_ms=pdd,
        setup_ms=setup,
        answer_time=answer_time,
        expires_s=expires,
    )


_Outcome = tuple[
    "CallKind", "CallState", int | None, str | None, float | None, float | None, float | None, int | None
]
"""kind, state, final status and reason, PDD, setup time, duration, expiry (``_decided``)."""


def _decided(caller: CallerOutline, bye_after: Callable[[float], float | None]) -> _Outcome:
    """A call's kind, state and timings, from its caller's leg's outline; ``bye_after(t)``:
    the time of the first BYE at or after ``t`` of any of its legs, in the call's order and
    each leg's capture order."""
    state, duration = caller.state, None
    if caller.answer_time is not None:
        bye = bye_after(caller.answer_time)
        if bye is not None:
            duration = round(bye - caller.answer_time, 3)
            state = CallState.COMPLETED
    return (caller.kind, state, caller.final_status, caller.final_reason, caller.pdd_ms, caller.setup_ms,
            duration, caller.expires_s)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LegOutline:
    """What a call's outcome reads of one of its legs (``call_outcome``): what
    ``sipflow.shard`` keeps of a leg, or hands to the process that builds a call in place of
    a leg held by another."""

    call_id: str
    start: float
    """Its first message's time."""
    end: float
    """Its last message's time."""
    byes: tuple[float, ...]
    """The times of its BYE requests, in the order captured."""
    messages: int
    retransmissions: int
    caller: CallerOutline
    """What the call's outcome reads of it where it is the call's first leg."""


def leg_outline(leg: Leg) -> LegOutline:
    """The ``LegOutline`` of ``leg``."""
    times = [m.timestamp for m in leg.messages]
    byes = tuple(m.timestamp for m in leg.messages if isinstance(m.sip, SipRequest) and m.sip.method == "BYE")
    return LegOutline(
        leg.call_id, min(times), max(times), byes, len(leg.messages), leg.retransmissions, caller_outline(leg)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOutcome:
    """A call as ``build_call`` would make it, without its legs: made from an outline of each
    leg (``call_outcome``), so a call whose legs are held by several processes is decided by
    one of them (``sipflow.shard``)."""

    index: int
    id: str
    kind: CallKind
    state: CallState
    final_status: int | None
    final_reason: str | None
    start: float
    end: float
    pdd_ms: float | None
    setup_ms: float | None
    duration_s: float | None
    correlation: tuple[Link, ...]
    related: tuple[str, ...]
    expires_s: int | None
    call_ids: tuple[str, ...]
    """Of every leg, in the call's order (``Call.call_ids``)."""
    messages: int
    """``len(Call.messages)``."""
    retransmissions: int


def call_outcome(
    index: int,
    outlines: Sequence[LegOutline],
    correlation: tuple[Link, ...] = (),
    related: tuple[str, ...] = (),
) -> CallOutcome:
    """What ``build_call(index, legs, correlation, related)`` says of the call, from the
    outline of each of its legs, in the call's order (the first is the caller's)."""

    def bye_after(answer_time: float) -> float | None:
        for outline in outlines:
            for t in outline.byes:
                if t >= answer_time:
                    return t
        return None

    kind, state, final_status, final_reason, pdd, setup, duration, expires = _decided(
        outlines[0].caller, bye_after
    )
    return CallOutcome(
        index=index,
        id=outlines[0].call_id,
        kind=kind,
        state=state,
        final_status=final_status,
        final_reason=final_reason,
        start=min(o.start for o in outlines),
        end=max(o.end for o in outlines),
        pdd_ms=pdd,
        setup_ms=setup,
        duration_s=duration,
        correlation=correlation,
        related=related,
        expires_s=expires,
        call_ids=tuple(o.call_id for o in outlines),
        messages=sum(o.messages for o in outlines),
        retransmissions=sum(o.retransmissions for o in outlines),
    )


def outline_outcome(outline: LegOutline) -> tuple[CallState, int | None]:
    """``leg_outcome`` of the leg ``outline`` outlines."""
    alone = call_outcome(0, (outline,))
    return alone.state, alone.final_status


def leg_outcome(leg: Leg) -> tuple[CallState, int | None]:
    """A leg's own state and final status, as its caller side saw them."""
    alone = build_call(0, (leg,))
    return alone.state, alone.final_status
