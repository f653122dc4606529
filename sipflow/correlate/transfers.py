"""Transfers: calls related by Replaces (RFC 3891) or by a REFER (RFC 3515), never merged."""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import NamedTuple

from sipflow.correlate.facts import _initial_invites, _normalize_user, _request_user, _user_key, _users_match
from sipflow.correlate.options import CorrelationStats
from sipflow.model.call import Leg
from sipflow.sip.message import SipRequest
from sipflow.sip.parse import parse_name_addr

TRANSFER_WINDOW = 32.0
"""Seconds after a REFER within which the INVITE it asks for is looked for (64·T1)."""


class TransferFacts(NamedTuple):
    """What one leg says about transfers (``transfer_facts``), small enough to pickle."""

    call_id: str
    replaces: tuple[str, ...]
    """The Call-IDs its INVITEs' Replaces and its REFERs' Refer-To ``replaces=`` name."""
    refers: tuple[tuple[float, str], ...]
    """(time, target user normalized) of each REFER whose Refer-To names a user."""


def transfer_facts(leg: Leg) -> TransferFacts:
    replaces: list[str] = []
    refers: list[tuple[float, str]] = []
    for message in leg.messages:
        sip = message.sip
        if not isinstance(sip, SipRequest) or message.retransmission:
            continue
        if sip.method == "INVITE":
            value = sip.headers.get("Replaces")
            if value:
                replaces.append(value.split(";", 1)[0].strip())
        elif sip.method == "REFER":
            refer_to = sip.headers.get("Refer-To")
            if refer_to:
                try:
                    uri = parse_name_addr(refer_to).uri
                except Exception:
                    continue
                if "replaces=" in uri.raw.lower():
                    match = re.search(r"replaces=([^;&>]+)", uri.raw, re.IGNORECASE)
                    replaces.append(match.group(1).replace("%40", "@") if match else "")
                if uri.user:
                    refers.append((message.timestamp, _normalize_user(uri.user)))
    return TransferFacts(leg.call_id, tuple(replaces), tuple(refers))


def _first_invites(legs: Sequence[Leg]) -> Iterator[tuple[float, str, str]]:
    """(time, Request-URI user normalized, Call-ID) of each leg's first initial INVITE."""
    for leg in legs:
        first = _initial_invites(leg)
        if first and (invite := first[0].request) is not None:
            yield invite.timestamp, _request_user(invite), leg.call_id


def related_calls(legs: Sequence[Leg], *, stats: CorrelationStats | None = None) -> dict[str, set[str]]:
    """Transfers: Call-ID → Call-IDs related to it by Replaces (RFC 3891) or by a REFER whose
    Refer-To (RFC 3515) names the target of a later INVITE. Related calls are not merged."""
    return related_from_facts(
        [transfer_facts(leg) for leg in legs], {leg.call_id for leg in legs}, lambda: _first_invites(legs),
        stats=stats,
    )  # fmt: skip


def related_from_facts(
    facts: Iterable[TransferFacts],
    call_ids: Collection[str],
    invites: Callable[[], Iterable[tuple[float, str, str]]],
    *,
    stats: CorrelationStats | None = None,
) -> dict[str, set[str]]:
    """``related_calls`` on what it reads of the legs: the ``transfer_facts`` of those that
    have any, every leg's Call-ID, and ``invites``: (time, Request-URI user normalized,
    Call-ID) of each leg's first initial INVITE, asked for only when there is a REFER."""
    stats = stats if stats is not None else CorrelationStats()
    related: dict[str, set[str]] = defaultdict(set)
    refers: list[tuple[float, str, str]] = []  # (time, Call-ID of the REFER, target user)
    for f in facts:
        for target in f.replaces:
            if target in call_ids and target != f.call_id:
                related[f.call_id].add(target)
                related[target].add(f.call_id)
        refers.extend((time, f.call_id, user) for time, user in f.refers)
    if not refers:
        return related
    # The first initial INVITE of each leg, by its target user (``_user_key``) and time.
    by_user: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
    for timestamp, user, call_id in invites():
        if (key := _user_key(user)) is not None:
            by_user[key].append((timestamp, user, call_id))
    for entries in by_user.values():
        entries.sort(key=lambda e: e[0])
    times = {key: [e[0] for e in entries] for key, entries in by_user.items()}
    for time, refer_call_id, user in refers:
        key = _user_key(user)
        if key is None or key not in by_user:
            continue
        entries = by_user[key]
        lo = bisect.bisect_left(times[key], time - 1e-6)
        hi = bisect.bisect_right(times[key], time + TRANSFER_WINDOW + 1e-6)
        for timestamp, invite_user, call_id in entries[lo:hi]:
            stats.transfer_checks += 1
            if call_id == refer_call_id:
                continue
            if 0 <= timestamp - time <= TRANSFER_WINDOW and _users_match(invite_user, user):
                related[refer_call_id].add(call_id)
                related[call_id].add(refer_call_id)
    return related
