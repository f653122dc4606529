"""The observer: fed SIP messages in capture order, it builds transactions, dialogs and legs.

Sans-I/O: ``Tracker.feed`` takes a packet's metadata and its parsed message; time is the
packet's capture time, never the wall clock (timers run on ``capture_end``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipflow.capture.types import Endpoint, SipPayload
from sipflow.model.call import Leg, initial_transactions, leg_hops, leg_kind
from sipflow.model.dialog import Dialog, DialogBuilder, DialogEvent, DialogId
from sipflow.model.message import Malformed, Message
from sipflow.model.transaction import Transaction, TransactionBuilder, TransactionTable
from sipflow.sip.message import SipRequest, SipResponse

DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})
"""Methods whose 1xx/2xx responses with a To tag create a dialog (RFC 3261 §12.1, RFC 6665 §4.1,
RFC 3515 §2.4.4)."""

_id = tuple.__new__
"""A ``DialogId`` made as ``_id(DialogId, (call_id, from_tag, to_tag))``: without the named
tuple's Python-level ``__new__`` (the tracker looks dialogs up for nearly every message)."""

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


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResult:
    """What the tracker hands out when the capture ends."""

    messages: tuple[Message, ...]
    malformed: tuple[Malformed, ...]
    transactions: tuple[Transaction, ...]
    """Every transaction, indexed by its id."""
    dialogs: tuple[Dialog, ...]
    legs: tuple[Leg, ...]
    """One leg per Call-ID, in order of first message."""


class Tracker:
    """Builds the protocol model from SIP messages fed in capture-time order."""

    def __init__(self) -> None:
        self._table = TransactionTable()
        self._messages: list[Message] = []
        self._malformed: list[Malformed] = []
        self._dialogs: dict[DialogId, DialogBuilder] = {}
        self._tx_dialogs: dict[int, list[DialogId]] = {}
        self._legs: dict[str, _LegBuilder] = {}
        self._initial_tx: dict[int, bool] = {}
        self._endpoints: dict[Endpoint, Endpoint] = {}
        self._last_time = 0.0

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
            len(self._messages) if index is None else index,
            packet,
            sip,
            retransmission=retrans,
            copies=copies,
            matched_by=matched_by,
            src=src,
            dst=dst,
        )
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

    def finish(self, capture_end: float | None = None, *, release: bool = False) -> ModelResult:
        """Freeze everything; ``capture_end`` (default: last packet time) drives the timers.

        With ``release``, each builder is let go as soon as it is frozen, so the mutable and
        the frozen model are never both held whole (lower peak memory); the tracker is then
        spent. Without it, the tracker can be fed further and finished again."""
        end = self._last_time if capture_end is None else capture_end
        transactions = self._table.freeze(end, release=release)
        dialogs = {dialog_id: b.build() for dialog_id, b in self._dialogs.items()}
        builders = list(self._legs.values())
        if release:
            self._dialogs, self._tx_dialogs, self._initial_tx, self._endpoints = {}, {}, {}, {}
            self._legs = {}
        legs = []
        builders.reverse()
        while builders:
            builder = builders.pop()
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
            legs.append(
                Leg(
                    call_id=builder.call_id,
                    from_=head.from_,
                    to=head.to,
                    hops=leg_hops(initial),
                    dialogs=skeleton.dialogs,
                    transactions=txs,
                    messages=skeleton.messages,
                )
            )
        return ModelResult(
            messages=tuple(self._messages),
            malformed=tuple(self._malformed),
            transactions=transactions,
            dialogs=tuple(dialogs.values()),
            legs=tuple(legs),
        )
