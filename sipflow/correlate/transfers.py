"""Transfers: calls related by Replaces (RFC 3891) or by a REFER (RFC 3515), never merged."""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Sequence

from sipflow.correlate.facts import _initial_invites, _normalize_user, _request_user, _user_key, _users_match
from sipflow.correlate.options import CorrelationStats
from sipflow.model.call import Leg
from sipflow.sip.message import SipRequest
from sipflow.sip.parse import parse_name_addr

TRANSFER_WINDOW = 32.0
"""Seconds after a REFER within which the INVITE it asks for is looked for (64·T1)."""


def related_calls(legs: Sequence[Leg], *, stats: CorrelationStats | None = None) -> dict[str, set[str]]:
    """Transfers: Call-ID → Call-IDs related to it by Replaces (RFC 3891) or by a REFER whose
    Refer-To (RFC 3515) names the target of a later INVITE. Related calls are not merged."""
    stats = stats if stats is not None else CorrelationStats()
    related: dict[str, set[str]] = defaultdict(set)
    call_ids = {leg.call_id for leg in legs}
    refers: list[tuple[float, str, str]] = []  # (time, Call-ID of the REFER, target user)
    for leg in legs:
        for message in leg.messages:
            sip = message.sip
            if not isinstance(sip, SipRequest) or message.retransmission:
                continue
            if sip.method == "INVITE":
                replaces = sip.headers.get("Replaces")
                if replaces:
                    target = replaces.split(";", 1)[0].strip()
                    if target in call_ids and target != leg.call_id:
                        related[leg.call_id].add(target)
                        related[target].add(leg.call_id)
            elif sip.method == "REFER":
                refer_to = sip.headers.get("Refer-To")
                if refer_to:
                    try:
                        uri = parse_name_addr(refer_to).uri
                    except Exception:
                        continue
                    if "replaces=" in uri.raw.lower():
                        match = re.search(r"replaces=([^;&>]+)", uri.raw, re.IGNORECASE)
                        target = match.group(1).replace("%40", "@") if match else ""
                        if target in call_ids and target != leg.call_id:
                            related[leg.call_id].add(target)
                            related[target].add(leg.call_id)
                    if uri.user:
                        refers.append((message.timestamp, leg.call_id, _normalize_user(uri.user)))
    if not refers:
        return related
    # The first initial INVITE of each leg, by its target user (``_user_key``) and time.
    invites: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
    for leg in legs:
        first = _initial_invites(leg)
        if first and first[0].request is not None:
            invite = first[0].request
            user = _request_user(invite)
            if (key := _user_key(user)) is not None:
                invites[key].append((invite.timestamp, user, leg.call_id))
    for entries in invites.values():
        entries.sort(key=lambda e: e[0])
    times = {key: [e[0] for e in entries] for key, entries in invites.items()}
    for time, refer_call_id, user in refers:
        key = _user_key(user)
        if key is None or key not in invites:
            continue
        entries = invites[key]
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
