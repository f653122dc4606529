"""Expectations: the calls a trace should hold, written in YAML, checked against an analysis.

```yaml
calls:
  - name: alice calls bob and hangs up
    match: {from: alice, to: bob}
    outcome: completed
    flow: [INVITE, 100?, 180*, 200, ACK, BYE, 200]
count: {calls: 1, completed: 1}
```

This module is the API of ``sipflow check --expect``; the work is done in three modules:
``sipflow.checks.expectations`` reads and validates a file (its format is documented there)
into ``Expectations``, raising ``ExpectationError`` with the line; ``sipflow.checks.flow``
holds the flow patterns (``FlowPattern``) and a call's flow (``call_flow``, what its caller
saw); ``sipflow.checks.evaluation`` checks them against an analysis: ``evaluate`` gives one
``ExpectationResult`` per call expectation, and one for ``count``.
"""

from __future__ import annotations

from sipflow.checks.evaluation import ExpectationResult, evaluate
from sipflow.checks.expectations import (
    CallExpectation,
    CallMatch,
    ExpectationError,
    Expectations,
    load_expectations,
    parse_expectations,
)
from sipflow.checks.flow import FlowPattern, FlowToken, call_flow

__all__ = [
    "CallExpectation",
    "CallMatch",
    "ExpectationError",
    "ExpectationResult",
    "Expectations",
    "FlowPattern",
    "FlowToken",
    "call_flow",
    "evaluate",
    "load_expectations",
    "parse_expectations",
]
