"""Built-in rules about how long a call takes to set up, as its caller saw it.

Post-dial delay (``slow-pdd``: first INVITE to first 18x) and setup time (``slow-setup``: first
INVITE to the 2xx) longer than a threshold.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

from sipflow.checks.finding import Severity
from sipflow.checks.registry import INVITE_DIALOG, Context, Hit, Registry
from sipflow.model.call import Call, CallKind
from sipflow.model.caller import caller_view
from sipflow.model.message import Message

__all__ = ["REGISTRY"]

REGISTRY: Final = Registry()
"""This module's rules, in order (``sipflow.checks.rules`` gathers them into the catalogue)."""


def _slow(
    ctx: Context, call: Call, value: float | None, limit: float, what: str, end: Message | None
) -> Hit | None:
    """A hit for a PDD or setup time above ``limit``: from the caller's first INVITE to ``end``
    (the message the measure ends at, ``caller_view``'s)."""
    if call.kind is not CallKind.CALL or value is None or value <= limit:
        return None
    invite = caller_view(call.legs[0]).first_request
    if invite is None:
        return None
    msgs = (invite, end) if end is not None else (invite,)
    reached = f" to {ctx.at(end)}" if end is not None else ""
    return Hit(f"{what} {value:.0f} ms from {ctx.at(invite)}{reached} (limit {limit:g} ms)", msgs)


@REGISTRY.rule(
    "slow-pdd",
    Severity.WARNING,
    "A call took longer than a threshold to ring (post-dial delay).",
    "Post-dial delay is the caller's first INVITE to the first 18x it received; a long one "
    "comes from slow routing (DNS, ENUM, number portability), authentication round trips "
    "or INVITE retransmissions.",
    thresholds={"max_ms": 5000.0},
    kinds=INVITE_DIALOG,
)
def _slow_pdd(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    ringing = caller_view(call.legs[0]).first_provisional
    hit = _slow(ctx, call, call.pdd_ms, limits["max_ms"], "post-dial delay", ringing)
    if hit is not None:
        yield hit


@REGISTRY.rule(
    "slow-setup",
    Severity.WARNING,
    "A call took longer than a threshold to be answered.",
    "Setup time is the caller's first INVITE to the 2xx; beyond the time someone takes to "
    "pick up, it grows with a slow callee, hunting, forking or retransmissions.",
    thresholds={"max_ms": 30000.0},
    kinds=INVITE_DIALOG,
)
def _slow_setup(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    hit = _slow(ctx, call, call.setup_ms, limits["max_ms"], "setup time", caller_view(call.legs[0]).answer)
    if hit is not None:
        yield hit
