"""The caller's view of a leg: what its caller sent and was answered, on the caller's own hop.

A call's state, its timings (PDD, setup, duration) and the RFC 6076 measures are all taken
where the caller stands: a proxied call is seen on several hops, and a call challenged for
credentials is several INVITEs. ``caller_view`` finds, once per leg, which transactions are
the caller's attempts and what decided them; ``sipflow.model.call``, ``sipflow.stats``,
``sipflow.correlate`` and the checks read it instead of deriving it each their own way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipflow.capture.types import Endpoint
from sipflow.model.call import CallKind, Leg, initial_transactions, leg_kind
from sipflow.model.message import Message
from sipflow.model.transaction import Transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerView:
    """A leg as its caller saw it."""

    kind: CallKind
    """What the leg is for (``leg_kind``)."""
    initial: tuple[Transaction, ...]
    """The leg's initial requests of its main method, every hop and every attempt, in time
    order (``initial_transactions``)."""
    caller: Endpoint
    """Who sent the first of them (the first message's sender when there is none)."""
    attempts: tuple[Transaction, ...]
    """The initial requests the caller itself sent, in time order: the first and those re-sent
    after a challenge (RFC 3261 §22.2) or a redirect (§8.1.3.4). All of ``initial`` when the
    caller sent none of them."""
    start: float
    """When the caller's first attempt left: its request's time (else the transaction's
    first message, when the request was not captured)."""
    answered: Transaction | None
    """The first attempt answered 2xx."""
    first_provisional: Message | None
    """The earliest provisional response above 100 to any attempt (RFC 3261 §21.1)."""

    @property
    def last(self) -> Transaction | None:
        """The last attempt: what decides an unanswered call (and every item that is not a call)."""
        return self.attempts[-1] if self.attempts else None

    @property
    def decisive(self) -> Transaction | None:
        """The attempt whose final response is the caller's answer: the answered one, else the last."""
        return self.answered if self.answered is not None else self.last

    @property
    def first_request(self) -> Message | None:
        """The caller's first attempt, as sent (None when the capture missed it): where PDD and
        setup time start."""
        return self.attempts[0].request if self.attempts else None

    @property
    def answer(self) -> Message | None:
        """The 2xx that answered the caller: where setup time ends."""
        return self.answered.final if self.answered is not None else None

    @property
    def answer_time(self) -> float | None:
        """When the 2xx reached the caller."""
        final = self.answered.final if self.answered is not None else None
        return final.timestamp if final is not None else None


def caller_view(leg: Leg) -> CallerView:
    """The caller's view of ``leg``, worked out on first use and kept with the leg."""
    found = leg._caller_view
    if found is not None:
        return found
    kind = leg_kind(leg)
    initial = tuple(initial_transactions(leg, kind))
    caller = initial[0].client if initial else leg.messages[0].src
    attempts = tuple(tx for tx in initial if tx.client == caller) or initial
    first = attempts[0] if attempts else None
    if first is None:
        start = leg.messages[0].timestamp
    else:
        start = first.request.timestamp if first.request is not None else first.start
    answered = next(
        (tx for tx in attempts if tx.final_status is not None and 200 <= tx.final_status < 300), None
    )
    ringing = [m for tx in attempts if (m := tx.first_provisional) is not None]
    view = CallerView(
        kind=kind,
        initial=initial,
        caller=caller,
        attempts=attempts,
        start=start,
        answered=answered,
        first_provisional=min(ringing, key=lambda m: m.timestamp) if ringing else None,
    )
    object.__setattr__(leg, "_caller_view", view)
    return view


def caller_flow(leg: Leg) -> list[Message]:
    """What the caller of ``leg`` saw: the leg's messages it sent or received, retransmissions
    left out, in capture order.

    The caller is matched by IP and port; by IP alone when no other party of the leg shares
    its IP (in-dialog requests over TCP, or to another port of the caller, still count).
    """
    caller = leg.caller
    shared_ip = any(e.host == caller.host and e != caller for m in leg.messages for e in (m.src, m.dst))

    def mine(m: Message) -> bool:
        if caller in (m.src, m.dst):
            return True
        return not shared_ip and caller.host in (m.src.host, m.dst.host)

    return [m for m in leg.messages if not m.retransmission and mine(m)]
