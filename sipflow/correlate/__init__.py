"""Legs → calls: correlate the legs of one phone call that carry different Call-IDs.

Between caller and callee sit proxies, SBCs and B2BUAs. A stateful proxy keeps the Call-ID
(one leg, several hops: see ``model.call``); a B2BUA or a topology-hiding proxy gives each
side its own Call-ID. Each strategy here returns evidence with a confidence in [0, 1]:

1. headers that carry the other leg's Call-ID (``X-CID`` and friends, or any header the user
   names, with an optional regular expression), confidence 0.99;
2. ``P-Charging-Vector`` icid-value (RFC 7315 §4.6) and ``Session-ID`` (RFC 7989), 0.95;
3. the behaviour of a B2BUA when no header says it: an INVITE leaves host H shortly after
   another arrived at H, with matching identities, the same (relayed) or consistently
   anchored SDP, and outcomes mirrored back (18x, final class, CANCEL, BYE). Many calls
   between the same users at once make this an assignment problem: every candidate pair is
   scored and the best consistent assignment is taken (Hungarian method, ``sipflow.assign``),
   never the first or latest match. A leg that hunts (one inbound leg, outbound legs tried
   in turn) keeps each later outbound leg that starts within the window after the previous
   one ended.

The work grows with the number of legs times the candidates of each, not with its square: a
candidate leaves the host within the window after the inbound INVITE arrived, and only a pair
that something ties (a number, the From tag, the SDP; ``_Outbound`` finds them through
indexes) can score ``MIN_SCORE``, so the other pairs in the window are never scored. The
assignment is solved per connected component of the candidate pairs.

Links are merged with union-find, so chains (caller → SBC → B2BUA → callee) give one call.
``related_calls`` finds transfers (REFER, Replaces): related, never merged.

The package, one idea a module, from the bottom up: ``options`` (header rules, options, work
counters), ``facts`` (what one leg's INVITE and outcomes say), ``evidence`` (the header
strategies and the ``_RawLink`` every strategy returns), ``score`` (one B2BUA candidate pair),
``candidates`` (the indexes that find the pairs worth scoring), ``heuristic`` (scoring,
assignment and hunting at each host), ``group`` (``correlate``: links merged into calls) and
``transfers`` (``related_calls``). The few private names imported below are for the tests
that reach into the implementation (``tests/test_correlate_scaling.py``).
"""

from __future__ import annotations

from sipflow.correlate.candidates import _Outbound as _Outbound
from sipflow.correlate.evidence import CHARGING_CONFIDENCE, HEADER_CONFIDENCE, SESSION_ID_CONFIDENCE
from sipflow.correlate.facts import _initial_invites as _initial_invites
from sipflow.correlate.facts import _normalize_user as _normalize_user
from sipflow.correlate.facts import _request_user as _request_user
from sipflow.correlate.facts import _users_match as _users_match
from sipflow.correlate.group import Group, correlate
from sipflow.correlate.options import DEFAULT_HEADERS, CorrelationOptions, CorrelationStats, HeaderRule
from sipflow.correlate.score import HEURISTIC_CEILING, MIN_SCORE, MIRROR_LAG, MIRROR_NEAR, SLACK
from sipflow.correlate.transfers import TRANSFER_WINDOW, related_calls

__all__ = [
    "CHARGING_CONFIDENCE",
    "DEFAULT_HEADERS",
    "HEADER_CONFIDENCE",
    "HEURISTIC_CEILING",
    "MIN_SCORE",
    "MIRROR_LAG",
    "MIRROR_NEAR",
    "SESSION_ID_CONFIDENCE",
    "SLACK",
    "TRANSFER_WINDOW",
    "CorrelationOptions",
    "CorrelationStats",
    "Group",
    "HeaderRule",
    "correlate",
    "related_calls",
]
