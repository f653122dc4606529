"""Statistics over an analysis: the counts of ``tshark -z sip,stat``, response times per method,
and the RFC 6076 end-to-end metrics with ASR and NER.

Pure: an ``Analysis`` in, frozen values out. Every metric is the observer's estimate of what the
RFC measures at a user agent, taken at the hop nearest to that agent (the caller's hop for a
session, the first client's hop for a registration, the earliest BYE for a disconnect).

**Sessions.** A session attempt is a call (``CallKind.CALL``) whose caller's leg holds an initial
INVITE (no To tag, RFC 3261 §12.1.2). Its INVITEs are those the caller sent with no To tag: the
first one and any re-sent after a 401/407 challenge (or a 3xx) are *one* attempt, timed from the
first; re-INVITEs, retransmissions and the other hops are not attempts. The attempt's *outcome* is
2xx if any of its INVITEs was answered 2xx, else the final response to its last INVITE; an INVITE
without a final response although the capture went on past timer B (RFC 3261 §17.1.1.2) counts
as a 408, as RFC 3261 §8.1.3.1 has the UAC treat it. An attempt without an outcome when the
capture ended is *pending*: it is left out of every ratio (``Stats.sessions["pending"]``).

**Ratios** are fractions in [0, 1] (RFC 6076 states them ×100, as percentages), ``None`` when
their denominator is 0. **Delays** are means in ms over the measured sessions (``Stats.delays``
gives each distribution), ``None`` when nothing was measured.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sipflow.model.analysis import Analysis
from sipflow.model.call import KIND_STATES, Call, CallKind, Leg
from sipflow.model.caller import caller_view
from sipflow.model.message import Message
from sipflow.model.transaction import TIMER_F, Transaction
from sipflow.sip.message import SipRequest, SipResponse

CHALLENGES = frozenset({401, 407})
"""RFC 3261 §22: a request challenged with these is re-sent with credentials, same attempt."""
SEER_CODES = frozenset({480, 486, 600, 603})
"""RFC 6076 §4.7: final responses besides 200 that count as effective (the user's choice)."""
ISA_CODES = frozenset({408, 500, 503, 504})
"""RFC 6076 §4.8: final responses that make a session attempt ineffective."""
NER_CODES = frozenset({480, 486, 487, 600, 603})
"""ITU-T E.425 / GSMA IR.42 NER: besides answers, the user's outcomes — no answer (480, and 487
when the caller gave up while it rang), user busy (486, 600), terminal reject (603)."""

RFC6076_KEYS = (
    "rrd_ms", "srd_ms", "srd_failed_ms", "sdd_ms", "sdt_s", "ser", "seer", "isa", "scr", "asr", "ner",
)  # fmt: skip
"""The keys of ``Stats.rfc6076``, in the order the renderers show them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Distribution:
    """A set of delays in milliseconds. The percentiles are nearest-rank (each one is a measured
    value: the smallest with at least p % of the values at or below it)."""

    count: int
    """How many values; every other field is None when it is 0."""
    min_ms: float | None = None
    p50_ms: float | None = None
    """The median (nearest rank)."""
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None
    """The arithmetic mean. Every value is rounded to the microsecond (3 decimals)."""

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"negative count {self.count}")

    @classmethod
    def of(cls, values_ms: Iterable[float]) -> Distribution:
        summary = summarize(values_ms)
        if summary is None:
            return cls(count=0)
        count, low, p50, p90, p99, high, mean = summary
        return cls(count=count, min_ms=low, p50_ms=p50, p90_ms=p90, p99_ms=p99, max_ms=high, mean_ms=mean)


def summarize(values: Iterable[float]) -> tuple[int, float, float, float, float, float, float] | None:
    """``(count, min, p50, p90, p99, max, mean)`` of ``values``, each rounded to 3 decimals;
    the percentiles nearest-rank (each a measured value). None when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return None

    def rank(p: int) -> float:
        return _r(ordered[max(math.ceil(p * len(ordered) / 100) - 1, 0)])

    mean = _r(math.fsum(ordered) / len(ordered))
    return len(ordered), _r(ordered[0]), rank(50), rank(90), rank(99), _r(ordered[-1]), mean


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats:
    """What ``sipflow stats`` shows."""

    messages: int
    """SIP messages, retransmissions included (tshark's "Number of SIP messages")."""
    resent: int
    """Messages that repeat one already seen in their transaction (``Message.retransmission``,
    RFC 3261 §17 matching). tshark's "resent" is its own heuristic and may differ."""
    requests: Mapping[str, int]
    """Requests by method, retransmissions included (tshark's "List of SIP Request methods")."""
    responses: Mapping[int, int]
    """Responses by status code, retransmissions included (tshark's "SIP Status Codes")."""
    reasons: Mapping[int, str]
    """The reason phrase seen most often with each status code (packet text: clean it to show)."""
    retransmissions: Mapping[str, int]
    """Retransmitted requests by method (``INVITE``) and retransmitted responses by the method
    they answer (``response to INVITE``); they add up to ``resent``."""
    first_response: Mapping[str, Distribution]
    """Per method: request to its first response (100 Trying included), per transaction at
    every hop where both were captured."""
    final_response: Mapping[str, Distribution]
    """Per method: request to its first final (≥ 200) response, per transaction at every hop."""
    rfc6076: Mapping[str, float | None]
    """RFC 6076 metrics, ASR and NER (keys ``RFC6076_KEYS``):

    ``rrd_ms``  §4.1 Registration Request Delay: first REGISTER of a registration attempt to the
                2xx that ends it, 401/407 challenges and the REGISTERs re-sent with credentials
                included (the wait the registering agent sees); only successful attempts are
                measured (RFC 6076 reports the failed ones apart, as IRA). See ``_registrations``.
    ``srd_ms``  §4.3.1 Session Request Delay, successful setups: the session's first INVITE to
                the first response that tells the caller its status — a 1xx other than 100 or,
                without one, the 2xx (a 401/407 challenge is not one: it is timed through).
    ``srd_failed_ms``  §4.3.2 SRD of failed setups (outcome 4xx–6xx, 408 by timeout included):
                the same, up to the first non-100 provisional or the final failure; kept apart as
                the RFC requires.
    ``sdd_ms``  §4.4 Session Disconnect Delay: per item, its earliest BYE (the one the hanging-up
                agent sent) to the 2xx answering it, or timer F (32 s) when it timed out
                (RFC 6076: "Time of 2XX or Timeout"); a BYE answered non-2xx is not measured.
    ``sdt_s``   §4.5.1 Session Duration Time, successful sessions: the caller's 2xx to the first
                BYE (``Call.duration_s``), in seconds.
    ``ser``     §4.6 Session Establishment Ratio: attempts answered 2xx / (attempts − attempts
                ending 3xx).
    ``seer``    §4.7 Session Establishment Effectiveness Ratio: attempts ending 2xx, 480, 486,
                600 or 603 / (attempts − attempts ending 3xx).
    ``isa``     §4.8 Ineffective Session Attempts: attempts ending 408 (timer B included), 500,
                503 or 504 / attempts.
    ``scr``     §4.9 Session Completion Ratio: attempts answered 2xx whose first BYE was answered
                2xx / attempts (an answered call still up when the capture ended is not complete).
    ``asr``     Answer-Seizure Ratio (ITU-T E.411): attempts answered 2xx / attempts.
    ``ner``     Network Effectiveness Ratio (ITU-T E.425, GSMA IR.42): attempts ending 2xx, 480,
                486, 487, 600 or 603 / attempts.
    """
    delays: Mapping[str, Distribution] = field(default_factory=dict)
    """The measurements behind the RFC 6076 delays: ``rrd``, ``srd``, ``srd_failed``, ``sdd`` and
    ``sdt`` (this one in ms too)."""
    sessions: Mapping[str, int] = field(default_factory=dict)
    """The counts behind the ratios: ``attempts`` (with an outcome), ``pending``, ``answered``,
    ``redirected`` (3xx), ``effective`` (SEER), ``ineffective`` (ISA), ``network_effective``
    (NER), ``completed`` (SCR); ``registrations`` (attempts with an outcome) and
    ``registered`` (ending 2xx)."""
    items: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Items by kind and state when the capture ended (``Call.kind``, ``Call.state``: a
    registration ``registered`` or ``challenged``, an OPTIONS ping ``answered``...), kinds
    and states in the order of ``CallKind`` and ``KIND_STATES``; kinds without items left out."""


def _r(value: float) -> float:
    return round(value, 3)


def _ms(a: float, b: float) -> float:
    return (b - a) * 1000.0


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator > 0 else None


# ---------------------------------------------------------------------------------------------
# Counts and response times


def _counts(
    messages: Sequence[Message],
) -> tuple[Counter[str], Counter[int], dict[int, str], Counter[str]]:
    requests: Counter[str] = Counter()
    responses: Counter[int] = Counter()
    phrases: dict[int, Counter[str]] = {}
    retrans: Counter[str] = Counter()
    for m in messages:
        sip = m.sip
        if isinstance(sip, SipRequest):
            requests[sip.method] += 1
            if m.retransmission:
                retrans[sip.method] += 1
        else:
            responses[sip.status] += 1
            phrases.setdefault(sip.status, Counter())[sip.reason] += 1
            if m.retransmission:
                retrans[f"response to {m.cseq_method or '?'}"] += 1
    reasons = {code: c.most_common(1)[0][0] for code, c in phrases.items()}
    return requests, responses, reasons, retrans


def _response_times(
    transactions: Iterable[Transaction],
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    first: dict[str, list[float]] = {}
    final: dict[str, list[float]] = {}
    for tx in transactions:
        req = tx.request
        if req is None or tx.method == "ACK":
            continue
        after = tx.messages[tx.messages.index(req) + 1 :]
        answers = [m for m in after if isinstance(m.sip, SipResponse)]
        if answers:
            first.setdefault(tx.method, []).append(_ms(req.timestamp, answers[0].timestamp))
        fin = next((m for m in answers if isinstance(m.sip, SipResponse) and m.sip.status >= 200), None)
        if fin is not None:
            final.setdefault(tx.method, []).append(_ms(req.timestamp, fin.timestamp))
    return first, final


# ---------------------------------------------------------------------------------------------
# Sessions (RFC 6076 §4.3–4.9)


def _status(m: Message) -> int:
    return m.sip.status if isinstance(m.sip, SipResponse) else 0


def _initial_request(tx: Transaction) -> Message | None:
    """The transaction's request if it is outside any dialog (no To tag, RFC 3261 §12.1.2)."""
    req = tx.request
    if req is None or req.sip.to_tag is not None:
        return None
    return req


@dataclass(frozen=True, slots=True)
class _Session:
    outcome: int | None
    """2xx if answered, else the last INVITE's final status (408 for a timeout); None: pending."""
    srd_ms: float | None
    completed: bool


def _caller_attempts(leg: Leg) -> list[Transaction]:
    """The caller's initial INVITEs (first and re-sent after a challenge or redirect), in order:
    its attempts (``caller_view``) whose request was captured."""
    view = caller_view(leg)
    if view.kind is not CallKind.CALL:
        return []
    return [tx for tx in view.attempts if tx.method == "INVITE" and _initial_request(tx) is not None]


def _first_bye(call: Call, after: float) -> Transaction | None:
    """The call's earliest BYE sent at or after ``after`` (any leg, any hop)."""
    byes = [
        (req.timestamp, tx)
        for leg in call.legs
        for tx in leg.transactions
        if tx.method == "BYE" and (req := tx.request) is not None and req.timestamp >= after
    ]
    return min(byes, key=lambda pair: pair[0])[1] if byes else None


def _session(call: Call) -> _Session | None:
    attempts = _caller_attempts(call.legs[0])
    if not attempts:
        return None
    first_req = _initial_request(attempts[0])
    assert first_req is not None
    t0 = first_req.timestamp
    answered = next(
        (tx for tx in attempts if tx.final_status is not None and 200 <= tx.final_status < 300), None
    )
    last = attempts[-1]
    if answered is not None:
        outcome: int | None = answered.final_status
        decisive = answered.final
    elif last.final_status is not None:
        outcome, decisive = last.final_status, last.final
    elif last.timed_out:
        outcome, decisive = 408, None
    else:
        outcome, decisive = None, None
    # RFC 6076 §4.3: the first response that shows the caller the status of its request: a
    # provisional other than 100, else the final response that decided the attempt.
    indicative = [m for tx in attempts if (m := tx.first_provisional) is not None]
    if decisive is not None:
        indicative.append(decisive)
    srd = _ms(t0, min(m.timestamp for m in indicative)) if indicative and outcome is not None else None
    completed = False
    if answered is not None and answered.final is not None:
        bye = _first_bye(call, answered.final.timestamp)
        completed = bye is not None and bye.final_status is not None and 200 <= bye.final_status < 300
    return _Session(outcome=outcome, srd_ms=srd, completed=completed)


def _disconnect_delay(call: Call) -> float | None:
    """RFC 6076 §4.4: the item's earliest BYE to its 2xx, or timer F when it timed out."""
    bye = _first_bye(call, -math.inf)
    if bye is None:
        return None
    req = bye.request
    assert req is not None
    fin = bye.final
    if fin is not None and 200 <= _status(fin) < 300:
        return _ms(req.timestamp, fin.timestamp)
    if fin is None and bye.timed_out:
        return TIMER_F * 1000.0
    return None


# ---------------------------------------------------------------------------------------------
# Registrations (RFC 6076 §4.1)


_STALE = re.compile(r"\bstale\s*=\s*\"?true\b", re.IGNORECASE)


def _challenged(tx: Transaction, req: Message) -> bool:
    """The request was answered with a challenge to send credentials, which continues the
    attempt: a 401/407 to a request without credentials for it, or with a stale nonce (RFC 3261
    §22.2, RFC 2617 §3.2.1). A 401/407 to credentials that are not stale refuses them."""
    fin = tx.final
    if fin is None or tx.final_status not in CHALLENGES:
        return False
    proxy = tx.final_status == 407
    if req.sip.headers.get("proxy-authorization" if proxy else "authorization") is None:
        return True
    challenge = fin.sip.headers.get("proxy-authenticate" if proxy else "www-authenticate") or ""
    return _STALE.search(challenge) is not None


def _registrations(leg: Leg) -> list[float | None]:
    """One entry per registration attempt with an outcome: its RRD in ms, or None if it failed.

    An attempt is a run of the first client's REGISTERs in which each but the last was
    challenged (see ``_challenged``); it ends at a 2xx (success), at any other final response,
    a refusal of credentials or a timeout (failure), or unanswered by the capture's end (pending,
    not counted). A challenge never followed by credentials is a failure too.
    """
    registers = sorted(
        (tx for tx in leg.transactions if tx.method == "REGISTER" and tx.request is not None),
        key=lambda tx: tx.start,
    )
    if not registers:
        return []
    client = registers[0].client
    out: list[float | None] = []
    start: float | None = None
    for tx in registers:
        req = tx.request
        if tx.client != client or req is None:
            continue
        headers = req.sip.headers
        if (
            start is not None
            and headers.get("authorization") is None
            and headers.get("proxy-authorization") is None
        ):
            out.append(None)  # the last challenge was never answered with credentials: failed
            start = None
        if start is None:
            start = req.timestamp
        status = tx.final_status
        if _challenged(tx, req):
            continue  # the credentials follow in the next REGISTER
        if status is not None and 200 <= status < 300 and tx.final is not None:
            out.append(_ms(start, tx.final.timestamp))
        elif status is not None or tx.timed_out:
            out.append(None)
        # else: no answer yet when the capture ended: pending, not counted
        start = None
    if start is not None:
        out.append(None)  # the last challenge was never answered with credentials: failed
    return out


# ---------------------------------------------------------------------------------------------


def compute(analysis: Analysis) -> Stats:
    """Every statistic of ``analysis`` (see the module and ``Stats`` for the definitions)."""
    requests, responses, reasons, retrans = _counts(analysis.messages)
    first, final = _response_times(analysis.transactions)

    rrd: list[float] = []
    registrations = 0
    srd_ok: list[float] = []
    srd_failed: list[float] = []
    sdd: list[float] = []
    sdt: list[float] = []
    counts: Counter[str] = Counter()
    for call in analysis.calls:
        for leg in call.legs:
            for value in _registrations(leg):
                registrations += 1
                if value is not None:
                    rrd.append(value)
        delay = _disconnect_delay(call)
        if delay is not None:
            sdd.append(delay)
        if call.kind is not CallKind.CALL:
            continue
        session = _session(call)
        if session is None:
            continue
        outcome = session.outcome
        if outcome is None:
            counts["pending"] += 1
            continue
        counts["attempts"] += 1
        answered = 200 <= outcome < 300
        counts["answered"] += answered
        counts["redirected"] += 300 <= outcome < 400
        counts["effective"] += answered or outcome in SEER_CODES
        counts["ineffective"] += outcome in ISA_CODES
        counts["network_effective"] += answered or outcome in NER_CODES
        counts["completed"] += session.completed
        if session.srd_ms is not None:
            if answered:
                srd_ok.append(session.srd_ms)
            elif outcome >= 400:
                srd_failed.append(session.srd_ms)
        if answered and call.duration_s is not None:
            sdt.append(call.duration_s * 1000.0)

    delays = {
        "rrd": Distribution.of(rrd),
        "srd": Distribution.of(srd_ok),
        "srd_failed": Distribution.of(srd_failed),
        "sdd": Distribution.of(sdd),
        "sdt": Distribution.of(sdt),
    }
    attempts = counts["attempts"]
    not_redirected = attempts - counts["redirected"]
    sdt_mean = delays["sdt"].mean_ms
    rfc6076: dict[str, float | None] = {
        "rrd_ms": delays["rrd"].mean_ms,
        "srd_ms": delays["srd"].mean_ms,
        "srd_failed_ms": delays["srd_failed"].mean_ms,
        "sdd_ms": delays["sdd"].mean_ms,
        "sdt_s": round(sdt_mean / 1000.0, 3) if sdt_mean is not None else None,
        "ser": _ratio(counts["answered"], not_redirected),
        "seer": _ratio(counts["effective"], not_redirected),
        "isa": _ratio(counts["ineffective"], attempts),
        "scr": _ratio(counts["completed"], attempts),
        "asr": _ratio(counts["answered"], attempts),
        "ner": _ratio(counts["network_effective"], attempts),
    }
    session_keys = (
        "attempts", "pending", "answered", "redirected", "effective", "ineffective", "network_effective",
        "completed",
    )  # fmt: skip
    sessions = {key: counts[key] for key in session_keys}
    sessions["registrations"] = registrations
    sessions["registered"] = len(rrd)
    by_kind = Counter((call.kind, call.state) for call in analysis.calls)
    items = {
        kind.value: {state.value: by_kind[kind, state] for state in states if by_kind[kind, state]}
        for kind, states in KIND_STATES.items()
        if any(by_kind[kind, state] for state in states)
    }
    return Stats(
        messages=len(analysis.messages),
        resent=sum(1 for m in analysis.messages if m.retransmission),
        requests=dict(sorted(requests.items(), key=lambda kv: (-kv[1], kv[0]))),
        responses=dict(sorted(responses.items())),
        reasons=dict(sorted(reasons.items())),
        retransmissions=dict(sorted(retrans.items(), key=lambda kv: (-kv[1], kv[0]))),
        first_response={method: Distribution.of(v) for method, v in sorted(first.items())},
        final_response={method: Distribution.of(v) for method, v in sorted(final.items())},
        rfc6076=rfc6076,
        delays=delays,
        sessions=sessions,
        items=items,
    )
