"""Dialogs as an observer sees them (RFC 3261 §12; subscriptions RFC 6665 §4.1).

A dialog is identified by Call-ID, local tag and remote tag (§12). The observer has no
"local" side: it names the tags after the request that created the dialog, ``from_tag``
(the UAC's tag) and ``to_tag`` (the UAS's tag), and finds in-dialog requests sent either way.

The life cycle is one table, ``TRANSITIONS``: the code, the tests and the docs read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class DialogState(StrEnum):
    """RFC 3261 §12: early (a provisional response with a To tag), confirmed (a 2xx), terminated."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogEvent(StrEnum):
    """What the observer saw that moves a dialog."""

    PROVISIONAL = "1xx with To tag to the creating request"  # §12.1
    SUCCESS = "2xx to the creating request"  # §12.1
    FAILURE = "non-2xx final response to the creating request"  # §12.3 (early dialogs end)
    BYE = "BYE in the dialog"  # §15
    NO_DIALOG = "481/408 to an in-dialog request"  # §12.2.1.2
    SUBSCRIPTION_TERMINATED = "NOTIFY with Subscription-State: terminated"  # RFC 6665 §4.1.3


_S, _E = DialogState, DialogEvent
TRANSITIONS: dict[tuple[DialogState | None, DialogEvent], DialogState] = {
    (None, _E.PROVISIONAL): _S.EARLY,
    (None, _E.SUCCESS): _S.CONFIRMED,
    (_S.EARLY, _E.PROVISIONAL): _S.EARLY,
    (_S.EARLY, _E.SUCCESS): _S.CONFIRMED,
    (_S.EARLY, _E.FAILURE): _S.TERMINATED,
    (_S.EARLY, _E.BYE): _S.TERMINATED,
    (_S.EARLY, _E.NO_DIALOG): _S.TERMINATED,
    (_S.EARLY, _E.SUBSCRIPTION_TERMINATED): _S.TERMINATED,
    (_S.CONFIRMED, _E.PROVISIONAL): _S.CONFIRMED,
    (_S.CONFIRMED, _E.SUCCESS): _S.CONFIRMED,
    (_S.CONFIRMED, _E.FAILURE): _S.CONFIRMED,
    (_S.CONFIRMED, _E.BYE): _S.TERMINATED,
    (_S.CONFIRMED, _E.NO_DIALOG): _S.TERMINATED,
    (_S.CONFIRMED, _E.SUBSCRIPTION_TERMINATED): _S.TERMINATED,
}
"""(state, event) → next state. A pair not listed leaves the state unchanged (a terminated
dialog stays terminated whatever arrives late, e.g. a retransmitted 200 after BYE)."""


def next_state(state: DialogState | None, event: DialogEvent) -> DialogState | None:
    return TRANSITIONS.get((state, event), state)


class DialogId(NamedTuple):
    """Call-ID and the two tags, oriented after the creating request (see module doc)."""

    call_id: str
    from_tag: str
    to_tag: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Dialog:
    """One dialog, with the transactions that belong to it."""

    id: DialogId
    state: DialogState
    """The state when the capture ended."""
    created_by: str
    """Method of the request that created it (INVITE, SUBSCRIBE...)."""
    transactions: tuple[int, ...]
    """Ids of the transactions in the dialog, the creating one first."""
    created_at: float
    """Time of the first response that carried the remote tag."""
    confirmed_at: float | None
    terminated_at: float | None

    @property
    def call_id(self) -> str:
        return self.id.call_id

    @property
    def from_tag(self) -> str:
        return self.id.from_tag

    @property
    def to_tag(self) -> str:
        return self.id.to_tag


@dataclass(slots=True)
class DialogBuilder:
    """The mutable state of a dialog while messages are fed."""

    id: DialogId
    created_by: str
    created_at: float
    state: DialogState | None = None
    transactions: list[int] = field(default_factory=list)
    confirmed_at: float | None = None
    terminated_at: float | None = None

    def apply(self, event: DialogEvent, now: float) -> None:
        new = next_state(self.state, event)
        if new is DialogState.CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = now
        if new is DialogState.TERMINATED and self.state is not DialogState.TERMINATED:
            self.terminated_at = now
        self.state = new

    def add_transaction(self, tx_id: int) -> None:
        if tx_id not in self.transactions:
            self.transactions.append(tx_id)

    def build(self) -> Dialog:
        return Dialog(
            id=self.id,
            state=self.state or DialogState.EARLY,
            created_by=self.created_by,
            transactions=tuple(self.transactions),
            created_at=self.created_at,
            confirmed_at=self.confirmed_at,
            terminated_at=self.terminated_at,
        )
