"""sipflow: turn packet captures into SIP call flows.

    import sipflow
    analysis = sipflow.analyze(["samples/proxy-call.pcap"])
    for call in analysis.select():
        print(call.index, call.state, call.final_status, call.id)

The names below are loaded on first use, so ``import sipflow.sip`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "analyze": "sipflow.pipeline",
    "AnalysisOptions": "sipflow.pipeline",
    "Analysis": "sipflow.model.analysis",
    "Summary": "sipflow.model.analysis",
    "Call": "sipflow.model.call",
    "CallKind": "sipflow.model.call",
    "CallState": "sipflow.model.call",
    "Leg": "sipflow.model.call",
    "Dialog": "sipflow.model.dialog",
    "DialogState": "sipflow.model.dialog",
    "Malformed": "sipflow.model.message",
    "Message": "sipflow.model.message",
    "Transaction": "sipflow.model.transaction",
    "CaptureError": "sipflow.errors",
    "ParseError": "sipflow.errors",
    "SipflowError": "sipflow.errors",
}

if TYPE_CHECKING:
    from sipflow.errors import CaptureError, ParseError, SipflowError
    from sipflow.model.analysis import Analysis, Summary
    from sipflow.model.call import Call, CallKind, CallState, Leg
    from sipflow.model.dialog import Dialog, DialogState
    from sipflow.model.message import Malformed, Message
    from sipflow.model.transaction import Transaction
    from sipflow.pipeline import AnalysisOptions, analyze


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sipflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Analysis",
    "AnalysisOptions",
    "Call",
    "CallKind",
    "CallState",
    "CaptureError",
    "Dialog",
    "DialogState",
    "Leg",
    "Malformed",
    "Message",
    "ParseError",
    "SipflowError",
    "Summary",
    "Transaction",
    "__version__",
    "analyze",
]
