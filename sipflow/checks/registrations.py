"""The built-in rule about registrations: a UA that registers far more often than it needs to.

``register-storm`` groups the REGISTERs of every registration item by address-of-record and
client, over any number of Call-IDs, once per analysis: bursts of REGISTERs that were neither
answers to a challenge nor refreshes due by the granted expiry, and runs of 401/407 challenges
without a 2xx. Each hit is reported on the registration item it starts in.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from sipflow.checks.finding import Severity
from sipflow.checks.registry import Context, Hit, Registry, label
from sipflow.model.call import Call, CallKind, contacts, granted_expiry, requested_expiry
from sipflow.model.message import Message
from sipflow.model.transaction import Transaction

__all__ = ["REGISTRY"]

REGISTRY: Final = Registry()
"""This module's rules, in order (``sipflow.checks.rules`` gathers them into the catalogue)."""


_CHALLENGES: Final = frozenset({401, 407})
_RESEND: Final = _CHALLENGES | {423}
"""Final responses to a REGISTER that call for sending it again at once: a challenge (RFC 3261
§22.2) or 423 Interval Too Brief (§10.3 step 7, with a longer expiry)."""


def _aor(message: Message) -> str | None:
    """The address-of-record a REGISTER is for: its To URI's user@host (RFC 3261 §10.2)."""
    to = message.sip.to
    if to is None:
        return None
    uri = to.uri
    return f"{uri.user}@{uri.host.lower()}" if uri.user and uri.host else (uri.host or uri.raw).lower()


def _unneeded(previous: Transaction, request: Message, early: float) -> str | None:
    """Why a REGISTER was not needed after the UA's ``previous`` one, or None when it was: an
    answer to a challenge or 423, or a refresh once ``early`` of the granted expiry had passed."""
    status = previous.final_status
    final = previous.final
    if status in _RESEND:
        return None
    if status is None or final is None:
        return f"sent while the REGISTER at frame {previous.messages[0].frame} was unanswered"
    gap = request.timestamp - final.timestamp
    if not 200 <= status < 300:
        return f"sent {gap:.1f} s after {label(final)} at frame {final.frame}"
    first = previous.request
    asked = contacts(first) if first is not None else []
    if first is None or not asked or any(c.is_wildcard for c in asked):
        return None  # a query or a removal of every binding: a new REGISTER is a new registration
    granted = granted_expiry(final, asked)
    if granted is None:
        granted = requested_expiry(first, asked[0])
    if granted == 0:
        return None
    if granted is None:
        return f"sent {gap:.1f} s after the 2xx at frame {final.frame}, which granted no expiry"
    if gap >= early * granted:
        return None
    return f"refreshed {gap:.1f} s into the {granted} s granted by the 2xx at frame {final.frame}"


def _burst(times: Sequence[float], limit: float, window: float) -> tuple[int, int] | None:
    """``(i, j)``: ``times[i:j]`` is the first burst of more than ``limit`` times within
    ``window`` seconds, with every later time less than ``window`` after the one before it;
    None when ``limit`` is never exceeded. ``times`` ascend."""
    i = 0
    for j in range(len(times)):
        while times[j] - times[i] > window:
            i += 1
        if j - i + 1 > limit:
            while j + 1 < len(times) and times[j + 1] - times[j] <= window:
                j += 1
            return i, j + 1
    return None


def _storms(ctx: Context, limits: Mapping[str, float]) -> dict[int, list[Hit]]:
    """Every ``register-storm`` hit of the analysis, by the index of the registration it starts in.

    The REGISTERs of every registration item are grouped by address-of-record and client (the
    UA, hop by hop: a proxy relaying them is a client of its own), over any number of Call-IDs."""
    window = limits["window_s"]
    groups: dict[tuple[str, object], list[tuple[int, Transaction, Message]]] = {}
    for call in ctx.analysis.calls:
        if call.kind is not CallKind.REGISTRATION:
            continue
        for leg in call.legs:
            for tx in leg.transactions:
                request = tx.request
                aor = _aor(request) if tx.method == "REGISTER" and request is not None else None
                if request is not None and aor is not None:
                    groups.setdefault((aor, tx.client), []).append((call.index, tx, request))
    out: dict[int, list[Hit]] = {}
    for (aor, client), registers in groups.items():
        registers.sort(key=lambda item: item[2].index)
        limit = limits["max_registers"]
        # Refreshes sent too early, retries after a refusal, REGISTERs over unanswered ones.
        unneeded = [
            (index, request, why)
            for (_, previous, _), (index, _, request) in itertools.pairwise(registers)
            if (why := _unneeded(previous, request, limits["early_fraction"])) is not None
        ]
        found = _burst([m.timestamp for _, m, _ in unneeded], limit, window)
        if found is not None:
            burst = unneeded[found[0] : found[1]]
            index, first, why = burst[0]
            sent = [m for _, m, _ in burst]
            text = (
                f"{len(burst)} REGISTERs for {aor} from {client} in "
                f"{sent[-1].timestamp - first.timestamp:.1f} s ({ctx.frames(sent)}) were neither "
                f"answers to a challenge nor refreshes due by the expiry granted (limit {limit:g} in "
                f"{window:g} s); the first, {ctx.at(first)}, {why}"
            )
            calls = len({i for i, _, _ in burst})
            if calls > 1:
                text += f"; over {calls} Call-IDs"
            out.setdefault(index, []).append(Hit(text, tuple(sent)))
        # Runs of 401/407 answers with no other final response between them.
        limit = limits["max_challenges"]
        runs: list[list[tuple[int, Message, Message]]] = [[]]
        for index, tx, request in registers:
            if tx.final is None:
                continue
            if tx.final_status in _CHALLENGES:
                runs[-1].append((index, request, tx.final))
            elif runs[-1]:
                runs.append([])
        for run in runs:
            found = _burst([final.timestamp for _, _, final in run], limit, window)
            if found is None:
                continue
            loop = run[found[0] : found[1]]
            index, request, _ = loop[0]
            challenges = [final for _, _, final in loop]
            out.setdefault(index, []).append(
                Hit(
                    f"{aor} from {client} was challenged {len(loop)} times in a row in "
                    f"{challenges[-1].timestamp - challenges[0].timestamp:.1f} s without a 2xx "
                    f"({ctx.frames(challenges)}; limit {limit:g} in {window:g} s), from "
                    f"{ctx.at(request)} on; the last: {ctx.at(challenges[-1])}",
                    (request, *challenges),
                )
            )
            break  # one loop per client is enough to say
    return out


@REGISTRY.rule(
    "register-storm",
    Severity.WARNING,
    "A UA registers far more often than it needs to, or is challenged again and again.",
    "A UA refreshes its binding before it expires (RFC 3261 §10.2.1, §10.2.4), answers a "
    "401/407 once with credentials (§22.2) and backs off after a failure (RFC 5626 §4.5); "
    "REGISTERs sent much sooner than the granted expiry, retried at once after a refusal, or "
    "challenged time after time load the registrar and fill its logs. Usual causes: wrong "
    "credentials or a UA too slow to answer before its nonce goes stale, a UA that ignores the "
    "expires granted in the 200 OK or keeps NAT bindings open with REGISTER, or a "
    "registration loop between proxies.",
    thresholds={"max_registers": 5.0, "window_s": 60.0, "early_fraction": 0.25, "max_challenges": 2.0},
    kinds=frozenset({CallKind.REGISTRATION}),
)
def _register_storm(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    storms = ctx.shared.get("register-storm")
    if storms is None:
        storms = ctx.shared["register-storm"] = _storms(ctx, limits)
    assert isinstance(storms, dict)
    yield from storms.get(call.index, [])
