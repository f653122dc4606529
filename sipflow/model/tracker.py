"""The observer: fed SIP messages in capture order, it builds transactions, dialogs and legs.

Sans-I/O: ``Tracker.feed`` takes a packet's metadata and its parsed message; time is the
packet's capture time, never the wall clock (timers run on ``capture_end``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from sipflow.capture.types import Endpoint, SipPayload
from sipflow.model.call import Leg, initial_transactions, leg_hops, leg_kind
from sipflow.model.dialog import Dialog, DialogBuilder, DialogEvent, DialogId, DialogState
from sipflow.model.message import Malformed, Message
from sipflow.model.transaction import TIMER_B, TIMER_F, Transaction, TransactionBuilder, TransactionTable
from sipflow.sip.message import SipRequest, SipResponse

DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})
"""Methods whose 1xx/2xx responses with a To tag create a dialog (RFC 3261 §12.1, RFC 6665 §4.1,
RFC 3515 §2.4.4)."""

_id = tuple.__new__
"""A ``DialogId`` made as ``_id(DialogId, (call_id, from_tag, to_tag))``: without the named
tuple's Python-level ``__new__`` (the tracker looks dialogs up for nearly every message)."""

QUIET: Final = max(TIMER_B, TIMER_F)
"""Capture time after its last message before ``Tracker.retire`` may let a leg go: by then
every transaction of it that is still open has timed out (timers B and F), so freezing it now
gives what freezing it at the capture's end would, if nothing more comes for its Call-ID."""

_ENDPOINTS_SHARED = 1 << 16
"""Distinct endpoints shared between messages; beyond that (a flood from random ports) each
message keeps its own, as sharing would then cost more than it saves."""


@dataclass(slots=True)
class _LegBuilder:
    call_id: str
    messages: list[Message] = field(default_factory=list)
    transactions: dict[int, None] = field(default_factory=dict)
    """Transaction ids in order of first message (a dict used as an ordered set)."""
    dialogs: list[DialogId] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Tally:
    """What a ``Summary`` counts of the messages fed: how many, their retransmissions, the
    first and last capture time (None without messages)."""

    messages: int = 0
    retransmissions: int = 0
    first_time: float | None = None
    last_time: float | None = None

    def __add__(self, other: Tally) -> Tally:
        firsts = [t for t in (self.first_time, other.first_time) if t is not None]
        lasts = [t for t in (self.last_time, other.last_time) if t is not None]
        return Tally(
            self.messages + other.messages,
            self.retransmissions + other.retransmissions,
            min(firsts) if firsts else None,
            max(lasts) if lasts else None,
        )

    @classmethod
    def of(cls, messages: tuple[Message, ...] | list[Message]) -> Tally:
        times = [m.timestamp for m in messages]
        return cls(
            len(messages),
            sum(1 for m in messages if m.retransmission),
            min(times) if times else None,
            max(times) if times else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResult:
    """What the tracker hands out when the capture ends."""

    messages: tuple[Message, ...]
    malformed: tuple[Malformed, ...]
    transactions: tuple[Transaction, ...]
    """Every transaction, indexed by its id."""
    dialogs: tuple[Dialog, ...]
    legs: tuple[Leg, ...]
    """One leg per Call-ID, in order of first message (of a ``retiring`` tracker: those it
    still held)."""
    tally: Tally
    """Of every message fed, those of retired legs included."""


class Tracker:
    """Builds the protocol model from SIP messages fed in capture-time order.

    A ``retiring`` tracker keeps no list of every message: ``retire`` hands out the legs that
    are over and forgets them, so what it holds is bounded by the calls up at once, and
    ``finish`` gives the rest (its ``messages`` and ``transactions`` are then those of the
    legs it still held; ``tally`` counts them all). It is fed each message's ``index``."""

    def __init__(self, *, retiring: bool = False) -> None:
        self._retiring = retiring
        self._tally = Tally()
        """Of the legs retired (``retire``): what ``finish`` adds to the tally of the rest."""
        self._table = TransactionTable()
        self._messages: list[Message] = []
        self._malformed: list[Malformed] = []
        self._dialogs: dict[DialogId, DialogBuilder] = {}
        self._tx_dialogs: dict[int, list[DialogId]] = {}
        self._legs: dict[str, _LegBuilder] = {}
        self._initial_tx: dict[int, bool] = {}
        self._endpoints: dict[Endpoint, Endpoint] = {}
        self._last_time = 0.0
        self._retired: set[str] = set()

    @property
    def messages(self) -> list[Message]:
        return self._messages

    @property
    def last_time(self) -> float:
        """The latest capture time fed (the default ``capture_end`` of ``finish``)."""
        return self._last_time

    @property
    def leg_count(self) -> int:
        """Distinct Call-IDs fed so far (one leg each)."""
        return len(self._legs)

    def has_leg(self, call_id: str | None) -> bool:
        """Whether a message with this Call-ID was fed already."""
        return (call_id or "") in self._legs

    def feed(
        self,
        packet: SipPayload,
        sip: SipRequest | SipResponse,
        *,
        copies: tuple[tuple[str, int], ...] = (),
        index: int | None = None,
    ) -> Message:
        """Account for one parsed message; returns its record (retransmission flag set).

        ``copies``: (file, frame) of the same message captured in other files. ``index``: the
        message's ``Message.index``, default the count fed before it; given, it must grow from
        message to message (a shard of a capture numbers its messages as the whole does)."""
        endpoints = self._endpoints
        src = endpoints.get(packet.src) or self._endpoint(packet.src)
        dst = endpoints.get(packet.dst) or self._endpoint(packet.dst)
        call_id = sip.call_id or ""
        leg = self._legs.get(call_id)
        candidates = leg.transactions if leg is not None else ()
        if isinstance(sip, SipRequest):
            tx, retrans, matched_by = self._table.match_request(sip, src, dst, candidates)
            if not retrans and sip.method == tx.method:
                self._initial_tx.setdefault(tx.id, sip.to_tag is None)
        else:
            tx, retrans, matched_by = self._table.match_response(sip, src, dst, candidates)
        msg = Message.from_payload(
            len(self._messages) if index is None else index,  # retiring: always given
            packet,
            sip,
            retransmission=retrans,
            copies=copies,
            matched_by=matched_by,
            src=src,
            dst=dst,
        )
        if not self._retiring:
            self._messages.append(msg)
        tx.messages.append(msg)
        self._last_time = max(self._last_time, packet.timestamp)

        if leg is None:
            leg = self._legs[call_id] = _LegBuilder(call_id)
        leg.messages.append(msg)
        leg.transactions[tx.id] = None
        if not retrans and sip.call_id is not None:
            self._track_dialog(msg, sip, tx, leg)
        return msg

    def _endpoint(self, endpoint: Endpoint) -> Endpoint:
        """One shared object per address and port: messages keep a reference, not a copy."""
        known = self._endpoints.get(endpoint)
        if known is not None:
            return known
        if len(self._endpoints) < _ENDPOINTS_SHARED:
            self._endpoints[endpoint] = endpoint
        return endpoint

    def feed_malformed(self, packet: SipPayload, reason: str) -> Malformed:
        item = Malformed.from_payload(packet, reason)
        self._malformed.append(item)
        self._last_time = max(self._last_time, packet.timestamp)
        return item

    # RFC 3261 §12: dialogs -------------------------------------------------------------

    def _find_dialog(self, call_id: str, tag_a: str | None, tag_b: str | None) -> DialogBuilder | None:
        if tag_a is None or tag_b is None:
            return None
        return self._dialogs.get(_id(DialogId, (call_id, tag_a, tag_b))) or self._dialogs.get(
            _id(DialogId, (call_id, tag_b, tag_a))
        )

    def _attach(self, dialog: DialogBuilder, tx: TransactionBuilder, leg: _LegBuilder) -> None:
        dialog.add_transaction(tx.id)
        ids = self._tx_dialogs.setdefault(tx.id, [])
        if dialog.id not in ids:
            ids.append(dialog.id)
        if dialog.id not in leg.dialogs:
            leg.dialogs.append(dialog.id)

    def _track_dialog(
        self, msg: Message, sip: SipRequest | SipResponse, tx: TransactionBuilder, leg: _LegBuilder
    ) -> None:
        call_id = sip.call_id or ""
        from_tag = sip.from_tag
        to_tag = sip.to_tag
        now = msg.timestamp
        if isinstance(sip, SipResponse):
            creating = tx.method in DIALOG_CREATING and self._initial_tx.get(tx.id, True)
            if creating and from_tag is not None:
                if to_tag is not None and 100 < sip.status < 300:
                    dialog_id = _id(DialogId, (call_id, from_tag, to_tag))
                    dialog = self._dialogs.get(dialog_id)
                    if dialog is None:
                        dialog = DialogBuilder(id=dialog_id, created_by=tx.method, created_at=now)
                        self._dialogs[dialog.id] = dialog
                    self._attach(dialog, tx, leg)
                    event = DialogEvent.PROVISIONAL if sip.status < 200 else DialogEvent.SUCCESS
                    dialog.apply(event, now)
                elif sip.status >= 300:
                    # §12.3 / §13.2.2.3: a non-2xx final response ends every early dialog of it.
                    for dialog_id in self._tx_dialogs.get(tx.id, []):
                        self._dialogs[dialog_id].apply(DialogEvent.FAILURE, now)
                return
            for dialog_id in self._tx_dialogs.get(tx.id, []):
                if sip.status in (481, 408):
                    self._dialogs[dialog_id].apply(DialogEvent.NO_DIALOG, now)
            return

        if to_tag is None or sip.method != tx.method:
            # No To tag: outside any dialog. An ACK inside the INVITE transaction acknowledges
            # a non-2xx final response (§17.1.1.3): it belongs to no dialog either.
            return
        dialog = self._find_dialog(call_id, from_tag, to_tag)
        if dialog is None:
            if from_tag is None:
                return
            # The dialog was set up before the capture started: infer it, confirmed.
            dialog = DialogBuilder(id=DialogId(call_id, from_tag, to_tag), created_by="", created_at=now)
            dialog.apply(DialogEvent.SUCCESS, now)
            self._dialogs[dialog.id] = dialog
        self._attach(dialog, tx, leg)
        if sip.method == "BYE":
            dialog.apply(DialogEvent.BYE, now)
        elif sip.method == "NOTIFY":
            state = sip.headers.get("subscription-state")
            if state is not None and state.split(";", 1)[0].strip().lower() == "terminated":
                dialog.apply(DialogEvent.SUBSCRIPTION_TERMINATED, now)

    # -----------------------------------------------------------------------------------

    def retire(self, *, quiet: float = QUIET) -> Iterator[Leg]:
        """The legs that are over, frozen, in order of first message; the tracker forgets
        them (``retiring`` only). A leg is over when its last message came ``quiet`` seconds
        (at least ``QUIET``) before the latest time fed, each of its dialogs is terminated and
        each INVITE of it that had a provisional response has a final one; a leg of
        registrations (refreshed on the same Call-ID) and that of messages without a Call-ID
        are kept. Should a message of a retired leg's Call-ID come after all, feeding it would
        start a new leg: the caller asks ``has_retired`` first (``sipflow.shard`` builds such a
        Call-ID again in a second pass).

        A generator: the legs are frozen and handed out one at a time (no list of them all is
        held). Take it to the end before feeding again."""
        assert self._retiring, "retire() needs Tracker(retiring=True)"
        assert quiet >= QUIET, "a leg retired sooner could still change at the capture's end"
        cutoff = self._last_time - quiet
        builders = self._table.builders
        dialogs = self._dialogs
        done = [
            leg
            for leg in self._legs.values()
            if leg.messages[-1].timestamp <= cutoff
            and leg.call_id
            and self._over(leg, builders, dialogs)
            # Captured out of order, a message before the last may be the latest.
            and max(m.timestamp for m in leg.messages) <= cutoff
        ]
        end = self._last_time
        done.reverse()
        while done:
            leg = done.pop()
            txs = {}
            for i in leg.transactions:
                tx = builders[i]
                assert tx is not None
                txs[i] = tx.build(end)
            frozen_dialogs = {d: dialogs[d].build() for d in leg.dialogs}
            frozen = self._freeze_leg(leg, txs, frozen_dialogs)
            self._tally += Tally.of(leg.messages)
            self._forget(leg)
            del leg, txs, frozen_dialogs
            yield frozen
            del frozen

    def has_retired(self, call_id: str | None) -> bool:
        """Whether the leg of this Call-ID was retired (``retire``)."""
        return (call_id or "") in self._retired

    @staticmethod
    def _over(
        leg: _LegBuilder,
        builders: list[TransactionBuilder | None],
        dialogs: dict[DialogId, DialogBuilder],
    ) -> bool:
        for d in leg.dialogs:
            if dialogs[d].state is not DialogState.TERMINATED:
                return False
        for i in leg.transactions:
            tx = builders[i]
            assert tx is not None
            if tx.method == "REGISTER":
                return False
            if tx.final_status is None and tx.method == "INVITE" and tx.seen_responses:
                return False  # proceeding: it may still be answered
        return True

    def _forget(self, leg: _LegBuilder) -> None:
        self._retired.add(leg.call_id)
        del self._legs[leg.call_id]
        for d in leg.dialogs:
            self._dialogs.pop(d, None)
        for i in leg.transactions:
            self._table.release(i)
            self._tx_dialogs.pop(i, None)
            self._initial_tx.pop(i, None)

    def _freeze_leg(
        self, builder: _LegBuilder, transactions: dict[int, Transaction] | tuple[Transaction, ...],
        dialogs: dict[DialogId, Dialog],
    ) -> Leg:  # fmt: skip
        txs = tuple(transactions[i] for i in builder.transactions)
        skeleton = Leg(
            call_id=builder.call_id,
            from_=None,
            to=None,
            hops=(),
            dialogs=tuple(dialogs[d] for d in builder.dialogs),
            transactions=txs,
            messages=tuple(builder.messages),
        )
        initial = initial_transactions(skeleton, leg_kind(skeleton))
        first = next((tx.request for tx in initial if tx.request is not None), None)
        head = first.sip if first is not None else builder.messages[0].sip
        return Leg(
            call_id=builder.call_id,
            from_=head.from_,
            to=head.to,
            hops=leg_hops(initial),
            dialogs=skeleton.dialogs,
            transactions=txs,
            messages=skeleton.messages,
        )

    def finish(self, capture_end: float | None = None, *, release: bool = False) -> ModelResult:
        """Freeze everything; ``capture_end`` (default: last packet time) drives the timers.

        With ``release``, each builder is let go as soon as it is frozen, so the mutable and
        the frozen model are never both held whole (lower peak memory); the tracker is then
        spent. Without it, the tracker can be fed further and finished again."""
        end = self._last_time if capture_end is None else capture_end
        transactions = self._table.freeze(end, release=release)
        by_id: dict[int, Transaction] | tuple[Transaction, ...] = (
            {tx.id: tx for tx in transactions} if self._retiring else transactions
        )
        dialogs = {dialog_id: b.build() for dialog_id, b in self._dialogs.items()}
        builders = list(self._legs.values())
        if release:
            self._dialogs, self._tx_dialogs, self._initial_tx, self._endpoints = {}, {}, {}, {}
            self._legs = {}
        legs = []
        held: list[Message] = []
        builders.reverse()
        while builders:
            builder = builders.pop()
            if self._retiring:
                held += builder.messages
            legs.append(self._freeze_leg(builder, by_id, dialogs))
        messages = tuple(self._messages)
        tally = Tally.of(messages) if not self._retiring else self._tally + Tally.of(held)
        if self._retiring:
            held.sort(key=lambda m: m.index)
            messages = tuple(held)
        return ModelResult(
            messages=messages,
            malformed=tuple(self._malformed),
            transactions=transactions,
            dialogs=tuple(dialogs.values()),
            legs=tuple(legs),
            tally=tally,
        )
