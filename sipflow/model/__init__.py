"""The protocol model: transactions, dialogs, legs and calls, built by an observer."""

from sipflow.model.call import Call, CallKind, CallState, Leg, build_call
from sipflow.model.dialog import Dialog, DialogId, DialogState
from sipflow.model.message import Malformed, Message
from sipflow.model.tracker import ModelResult, Tracker
from sipflow.model.transaction import Transaction, TransactionKey

__all__ = [
    "Call",
    "CallKind",
    "CallState",
    "Dialog",
    "DialogId",
    "DialogState",
    "Leg",
    "Malformed",
    "Message",
    "ModelResult",
    "Tracker",
    "Transaction",
    "TransactionKey",
    "build_call",
]
