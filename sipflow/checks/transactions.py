"""Built-in rules about transactions: whether each request got its answer, and how.

An INVITE that got no final response (``invite-no-final``), a 2xx to an INVITE never ACKed or
ACKed late (``2xx-not-acked``, ``2xx-acked-late``), a response that matches no captured request
(``response-without-request``), a response or non-2xx ACK whose Via does not carry its
request's (``via-mismatch``), and requests or responses sent more often than a threshold
(``retransmissions``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

from sipflow.checks.finding import Severity
from sipflow.checks.registry import INVITE_DIALOG, Context, Hit, Registry, status_of
from sipflow.model.call import Call, Leg
from sipflow.model.message import MatchedBy, Message
from sipflow.model.transaction import TIMER_B, Transaction
from sipflow.sip.message import SipRequest

__all__ = ["REGISTRY"]

REGISTRY: Final = Registry()
"""This module's rules, in order (``sipflow.checks.rules`` gathers them into the catalogue)."""


def _is_request(message: Message, method: str | None = None) -> bool:
    sip = message.sip
    return isinstance(sip, SipRequest) and (method is None or sip.method == method)


@REGISTRY.rule(
    "invite-no-final",
    Severity.ERROR,
    "An INVITE transaction got no final response.",
    "The callee (or the next hop) never answered the INVITE with a final response (RFC 3261 "
    "§17.1.1): it is down, unreachable, or overloaded, a firewall drops its responses, or the "
    "capture stopped before the call was decided.",
    kinds=INVITE_DIALOG,
)
def _invite_no_final(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for tx in leg.transactions:
            request = tx.request
            if tx.method != "INVITE" or request is None or tx.final_status is not None:
                continue
            copies = [m for m in tx.messages if _is_request(m, "INVITE")]
            text = f"{ctx.at(request)} from {request.src} to {request.dst} got no final response"
            if len(copies) > 1:
                text += f" (sent {len(copies)} times, {ctx.frames(copies[1:])})"
            provisional = [m for m in tx.messages if not m.is_request and not m.retransmission]
            if provisional:
                text += f"; last response {ctx.at(provisional[-1])}"
            waited = ctx.end - request.timestamp
            text += f"; the capture ends {waited:.1f} s after it"
            if not provisional and (tx.timed_out or waited >= TIMER_B):
                text += " (past timer B, 32 s)"
            yield Hit(text, (request, *copies[1:], *provisional))


def _acks_by_dialog(leg: Leg) -> dict[tuple[int, str | None], list[Message]]:
    out: dict[tuple[int, str | None], list[Message]] = {}
    for m in leg.messages:
        if _is_request(m, "ACK") and m.sip.cseq is not None:
            out.setdefault((m.sip.cseq.seq, m.sip.to_tag), []).append(m)
    return out


def _first_2xx(tx: Transaction) -> list[tuple[Message, list[Message]]]:
    """Each distinct 2xx of an INVITE transaction (per To tag and sender) with its copies."""
    groups: dict[tuple[str | None, object], list[Message]] = {}
    for m in tx.messages:
        status = status_of(m)
        if status is not None and 200 <= status < 300:
            groups.setdefault((m.sip.to_tag, m.src), []).append(m)
    return [(copies[0], copies) for copies in groups.values()]


def _ack_for(ok: Message, acks: list[Message]) -> Message | None:
    """The ACK of a 2xx at the hop it was seen: sent by its receiver or to its sender."""
    later = [a for a in acks if a.index > ok.index]
    for ack in later:
        if ack.src == ok.dst or ack.dst == ok.src:
            return ack
    return later[0] if later else None


def _twoxx_acks(ctx: Context, call: Call) -> Iterator[tuple[Message, list[Message], Message | None]]:
    for leg in call.legs:
        acks = _acks_by_dialog(leg)
        for tx in leg.transactions:
            if tx.method != "INVITE" or tx.cseq is None:
                continue
            for ok, copies in _first_2xx(tx):
                yield ok, copies, _ack_for(ok, acks.get((tx.cseq, ok.sip.to_tag), []))


@REGISTRY.rule(
    "2xx-not-acked",
    Severity.ERROR,
    "A 2xx response to an INVITE was never ACKed.",
    "The caller must ACK every 2xx to an INVITE (RFC 3261 §13.2.2.4); without it the callee "
    "retransmits the 2xx and hangs up after 32 s. Usual causes: a wrong Contact or "
    "Record-Route in the 2xx (ACK sent elsewhere), NAT, or the ACK being lost.",
    thresholds={"wait_ms": 500.0},
    kinds=INVITE_DIALOG,
)
def _2xx_not_acked(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for ok, copies, ack in _twoxx_acks(ctx, call):
        waited = ctx.end - ok.timestamp
        if ack is not None or waited * 1000.0 < limits["wait_ms"]:
            continue
        text = f"{ctx.at(ok)} from {ok.src} to {ok.dst} was never ACKed"
        if len(copies) > 1:
            text += f" (sent {len(copies)} times, {ctx.frames(copies[1:])})"
        text += f"; the capture ends {waited:.1f} s after it"
        yield Hit(text, tuple(copies))


@REGISTRY.rule(
    "2xx-acked-late",
    Severity.WARNING,
    "The ACK for a 2xx to an INVITE came later than a threshold.",
    "The callee retransmits its 2xx until the ACK arrives (RFC 3261 §13.3.1.4, from T1 = "
    "500 ms on); a late ACK points at a slow or overloaded caller or proxy, or a lost first ACK.",
    thresholds={"max_ms": 500.0},
    kinds=INVITE_DIALOG,
)
def _2xx_acked_late(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for ok, copies, ack in _twoxx_acks(ctx, call):
        if ack is None:
            continue
        delay = (ack.timestamp - ok.timestamp) * 1000.0
        if delay <= limits["max_ms"]:
            continue
        text = f"{ctx.at(ok)} was ACKed {delay:.0f} ms later, at {ctx.frames([ack])}"
        resent = [m for m in copies[1:] if m.timestamp <= ack.timestamp]
        if resent:
            text += f", after {len(resent)} retransmission{'s' if len(resent) > 1 else ''} of the 2xx"
        text += f" (limit {limits['max_ms']:g} ms)"
        yield Hit(text, (ok, ack, *resent))


@REGISTRY.rule(
    "response-without-request",
    Severity.ERROR,
    "A response matches no captured request.",
    "Responses are matched to requests by top Via branch, sent-by and CSeq method (RFC 3261 "
    "§17.1.3); one that matches nothing was sent with a mangled Via, CSeq or Call-ID, or its "
    "request was not captured (capture started late, another path, another interface).",
)
def _response_without_request(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for tx in leg.transactions:
            if tx.request is not None:
                continue
            responses = [m for m in tx.messages if not m.is_request]
            if not responses:
                continue
            first = responses[0]
            via = first.sip.top_via
            branch = via.branch if via is not None else None
            text = (
                f"{ctx.at(first)} from {first.src} to {first.dst} matches no captured request "
                f"(top Via branch {branch or 'missing'})"
            )
            if len(responses) > 1:
                text += f"; also {ctx.frames(responses[1:])}"
            yield Hit(text, tuple(responses))


def _via_path(message: Message) -> list[tuple[str | None, str]]:
    return [(via.branch, via.sent_by) for via in message.sip.vias]


@REGISTRY.rule(
    "via-mismatch",
    Severity.ERROR,
    "A response's Via differs from its request's, or (a non-2xx ACK's too) names no transaction.",
    "A response must carry the Via header fields of its request, top branch and sent-by "
    "unchanged (RFC 3261 §8.2.6.2, §17.1.3), and the ACK of a non-2xx response the INVITE's "
    "branch (§17.1.1.3). When the top Via names no transaction, sipflow matched the message "
    "by Call-ID, CSeq and addresses instead; when only lower Vias differ, the hop above "
    "cannot route the response back. Usual causes: a UAS that answers the INVITE with the "
    "Via of the CANCEL, an ALG or SBC that rewrites Via. A missing Via is missing-header's.",
)
def _via_mismatch(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for tx in leg.transactions:
            request = tx.request
            for m in tx.messages:
                if m.retransmission or m is request or m.sip.top_via is None:
                    continue  # a missing Via is missing-header's
                if m.is_request and m.matched_by is not MatchedBy.CSEQ:
                    continue  # only a non-2xx ACK the fallback matched
                via = m.sip.top_via
                if m.matched_by is MatchedBy.CSEQ:
                    answered = f"the {tx.method}" + (f" at {ctx.frames([request])}" if request else "")
                    expected = ""
                    if request is not None and request.sip.top_via is not None:
                        theirs = request.sip.top_via
                        expected = f", not {theirs.branch or 'none'} ({theirs.sent_by})"
                    yield Hit(
                        f"{ctx.at(m)} from {m.src} has top Via branch {via.branch or 'none'} "
                        f"({via.sent_by}){expected}; matched to {answered} by Call-ID and CSeq",
                        (m, request) if request is not None else (m,),
                    )
                elif request is not None and _via_path(m) != _via_path(request):
                    # §8.2.6.2: the response's Via values are the request's (``received`` and
                    # ``rport`` added to the top one aside): same branches and sent-by, in order.
                    ours, theirs_n = len(m.sip.vias), len(request.sip.vias)
                    yield Hit(
                        f"{ctx.at(m)} from {m.src} carries {ours} Via header field value"
                        f"{'s' if ours != 1 else ''} where the {tx.method} it answers "
                        f"({ctx.frames([request])}) had {theirs_n}"
                        + ("" if ours != theirs_n else ", with other branches or sent-by")
                        + " (§8.2.6.2: a response carries its request's Vias, or the hops above "
                        "it cannot route it back)",
                        (m, request),
                    )


@REGISTRY.rule(
    "retransmissions",
    Severity.WARNING,
    "A request or a response was retransmitted more often than a threshold.",
    "Over UDP a request is resent until a response arrives and a final response to an "
    "INVITE until the ACK arrives (RFC 3261 §17); many copies mean packet loss, a peer "
    "that is down or slow, or responses going to the wrong address (NAT, Via, rport).",
    thresholds={"max_request": 2.0, "max_response": 4.0},
)
def _retransmissions(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    max_request = limits["max_request"]
    max_response = limits["max_response"]
    for leg in call.legs:
        for tx in leg.transactions:
            requests = [m for m in tx.messages if _is_request(m, tx.method)]
            resent = [m for m in requests if m.retransmission]
            answers = [m for m in tx.messages if not m.is_request]
            if len(resent) > max_request:
                text = (
                    f"{ctx.at(requests[0])} from {requests[0].src} to {requests[0].dst} was "
                    f"retransmitted {len(resent)} times ({ctx.frames(resent)}; limit {max_request:g})"
                )
                text += f"; first response {ctx.at(answers[0])}" if answers else "; no response"
                yield Hit(text, tuple(requests))
            groups: dict[tuple[int, str | None, object], list[Message]] = {}
            for m in tx.messages:
                status = status_of(m)
                if status is not None:
                    groups.setdefault((status, m.sip.to_tag, m.src), []).append(m)
            for copies in groups.values():
                resent = [m for m in copies if m.retransmission]
                if len(resent) > max_response:
                    first = copies[0]
                    yield Hit(
                        f"{ctx.at(first)} from {first.src} to {first.dst} was retransmitted "
                        f"{len(resent)} times ({ctx.frames(resent)}; limit {max_response:g})",
                        tuple(copies),
                    )
