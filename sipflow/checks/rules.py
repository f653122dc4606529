"""The built-in rules of ``sipflow check``: protocol and quality problems as ``Finding`` records.

Each rule is a function registered in ``REGISTRY`` by a decorator carrying its stable id, its
default severity, a one-line summary, an explanation (what a finding means and its usual
causes) and its thresholds with their defaults (``sipflow.checks.registry``); ``RULES`` is the
catalogue (the docs and the check configuration read it). After the protocol rules come the
parser's defect codes, one rule each (``sipflow.checks.defects``, the ``sip.malformed``
family). ``run_rules`` applies every enabled rule to every item of an analysis its
``Rule.kinds`` cover: most rules hold for calls and non-call items alike (a missing header in
a REGISTER is as wrong as in an INVITE), those about INVITE dialogs (ACKs, PDD, SDP
offer/answer...) skip registrations, subscriptions, OPTIONS and MESSAGE items, and
``register-storm`` looks at registrations only. The findings come ordered by call, then by
frame; those of no call (payloads that could not be parsed) come last.

The observer sees each hop of a proxied call, so a message relayed with the same defect is
reported once per hop, each time with its own frames.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final

from sipflow.checks import defects
from sipflow.checks.finding import Finding, Severity
from sipflow.checks.registry import Context, Hit, Registry, Rule, Scope, Settings, label
from sipflow.model.analysis import Analysis
from sipflow.model.call import Call, CallKind, Leg, contacts, granted_expiry, requested_expiry
from sipflow.model.caller import caller_view
from sipflow.model.dialog import Dialog
from sipflow.model.message import MatchedBy, Message
from sipflow.model.transaction import TIMER_B, Transaction
from sipflow.sip.message import SipRequest, SipResponse
from sipflow.sip.parse import MANDATORY_HEADERS
from sipflow.sip.sdp import Codec, Media

__all__ = ["REGISTRY", "RULES", "Rule", "rule", "run_rules"]

REGISTRY: Final = Registry()
"""The one registry of built-in rules: the decorators below fill it, in this order."""

_INVITE_DIALOG: Final = frozenset({CallKind.CALL, CallKind.OTHER})
"""Items that can hold an INVITE dialog or a piece of one: calls, and the other Call-IDs (a BYE
or UPDATE whose INVITE was not captured); not registrations, subscriptions, OPTIONS, MESSAGE."""


def _is_request(message: Message, method: str | None = None) -> bool:
    sip = message.sip
    return isinstance(sip, SipRequest) and (method is None or sip.method == method)


def _status(message: Message) -> int | None:
    sip = message.sip
    return sip.status if isinstance(sip, SipResponse) else None


def _to_tag(message: Message) -> str | None:
    return message.sip.to_tag


def _from_tag(message: Message) -> str | None:
    return message.sip.from_tag


# ---------------------------------------------------------------------------- the checks


@REGISTRY.rule(
    "invite-no-final",
    Severity.ERROR,
    "An INVITE transaction got no final response.",
    "The callee (or the next hop) never answered the INVITE with a final response (RFC 3261 "
    "§17.1.1): it is down, unreachable, or overloaded, a firewall drops its responses, or the "
    "capture stopped before the call was decided.",
    kinds=_INVITE_DIALOG,
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
            out.setdefault((m.sip.cseq.seq, _to_tag(m)), []).append(m)
    return out


def _first_2xx(tx: Transaction) -> list[tuple[Message, list[Message]]]:
    """Each distinct 2xx of an INVITE transaction (per To tag and sender) with its copies."""
    groups: dict[tuple[str | None, object], list[Message]] = {}
    for m in tx.messages:
        status = _status(m)
        if status is not None and 200 <= status < 300:
            groups.setdefault((_to_tag(m), m.src), []).append(m)
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
                yield ok, copies, _ack_for(ok, acks.get((tx.cseq, _to_tag(ok)), []))


@REGISTRY.rule(
    "2xx-not-acked",
    Severity.ERROR,
    "A 2xx response to an INVITE was never ACKed.",
    "The caller must ACK every 2xx to an INVITE (RFC 3261 §13.2.2.4); without it the callee "
    "retransmits the 2xx and hangs up after 32 s. Usual causes: a wrong Contact or "
    "Record-Route in the 2xx (ACK sent elsewhere), NAT, or the ACK being lost.",
    thresholds={"wait_ms": 500.0},
    kinds=_INVITE_DIALOG,
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
    kinds=_INVITE_DIALOG,
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
                status = _status(m)
                if status is not None:
                    groups.setdefault((status, _to_tag(m), m.src), []).append(m)
            for copies in groups.values():
                resent = [m for m in copies if m.retransmission]
                if len(resent) > max_response:
                    first = copies[0]
                    yield Hit(
                        f"{ctx.at(first)} from {first.src} to {first.dst} was retransmitted "
                        f"{len(resent)} times ({ctx.frames(resent)}; limit {max_response:g})",
                        tuple(copies),
                    )


@REGISTRY.rule(
    "cseq-not-increasing",
    Severity.ERROR,
    "A new request in a dialog does not have a higher CSeq than the previous one.",
    "Each side of a dialog must raise its CSeq by one or more with each new request (RFC 3261 "
    "§12.2.1.1); the peer answers a lower one with 500. Usual causes: a B2BUA or SBC that "
    "rewrites CSeq, or a UA that restarted and lost its dialog state.",
)
def _cseq_not_increasing(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    # RFC 3261 §12.2.1.1: each side's new requests in a dialog carry increasing CSeq numbers.
    # Grouped by the sending side (From tag) and by hop (the client): a proxy relays the same
    # request with the same CSeq one hop further.
    for dialog in (d for call_id in call.call_ids for d in ctx.dialogs.get(call_id, [])):
        sides: dict[tuple[str | None, object], list[Message]] = {}
        for tx_id in dialog.transactions:
            tx = ctx.transactions[tx_id]
            request = tx.request
            if tx.method in ("ACK", "CANCEL") or request is None or request.sip.cseq is None:
                continue
            sides.setdefault((_from_tag(request), request.src), []).append(request)
        for requests in sides.values():
            requests.sort(key=lambda m: m.index)
            for previous, current in itertools.pairwise(requests):
                assert previous.sip.cseq is not None and current.sip.cseq is not None
                if current.sip.cseq.seq <= previous.sip.cseq.seq:
                    yield Hit(
                        f"{ctx.at(current)} from {current.src} follows {ctx.at(previous)} "
                        "in the same dialog without a higher CSeq",
                        (current, previous),
                    )


def _dialog_end(ctx: Context, dialog: Dialog) -> tuple[float, Message, tuple[str | None, int]] | None:
    """When the dialog's first BYE completed: (time of its first final response, the BYE, its key)."""
    byes = [
        ctx.transactions[i]
        for i in dialog.transactions
        if ctx.transactions[i].method == "BYE" and ctx.transactions[i].request is not None
    ]
    if not byes:
        return None
    first = min(byes, key=lambda tx: tx.start)
    request = first.request
    assert request is not None and request.sip.cseq is not None
    key = (_from_tag(request), request.sip.cseq.seq)
    # The same BYE relayed hop by hop: same sender tag and CSeq.
    finals = [
        tx.final.timestamp
        for tx in byes
        if tx.request is not None and tx.final is not None and (_from_tag(tx.request), tx.cseq) == key
    ]
    if not finals:
        return None
    return min(finals), request, key


@REGISTRY.rule(
    "request-outside-dialog",
    Severity.ERROR,
    "A BYE or re-INVITE was sent outside a confirmed dialog.",
    "BYE and re-INVITE belong to a confirmed dialog (RFC 3261 §12.2, §15; only the caller may "
    "send BYE in an early dialog): tags that match no dialog, a request after the dialog ended, "
    "or before the 2xx, mean the two sides disagree about the call.",
    kinds=_INVITE_DIALOG,
)
def _request_outside_dialog(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        created_here = [d for d in leg.dialogs if d.created_by]
        for tx in leg.transactions:
            request = tx.request
            if tx.method not in ("BYE", "INVITE") or request is None:
                continue
            to_tag = _to_tag(request)
            if to_tag is None:
                if tx.method == "BYE":
                    yield Hit(f"{ctx.at(request)} has no To tag: it belongs to no dialog", (request,))
                continue
            what = "re-INVITE" if tx.method == "INVITE" else "BYE"
            dialogs = ctx.tx_dialogs.get(tx.id, [])
            dialog = dialogs[0] if dialogs else None
            if dialog is None or not dialog.created_by:
                if created_here:
                    yield Hit(
                        f"{what} {ctx.at(request)} carries tags (From {_from_tag(request)}, To "
                        f"{to_tag}) of no dialog set up in the capture",
                        (request,),
                    )
                continue
            t = request.timestamp
            if dialog.confirmed_at is None or dialog.confirmed_at > t:
                # RFC 3261 §15: the caller may send BYE in an early dialog, the callee may not.
                if tx.method == "BYE" and _from_tag(request) == dialog.from_tag:
                    continue
                text = f"{what} {ctx.at(request)} was sent in an early dialog, before any 2xx"
                yield Hit(text, (request,))
                continue
            end = _dialog_end(ctx, dialog)
            if end is not None:
                ended_at, bye, key = end
                if t > ended_at and (_from_tag(request), tx.cseq) != key:
                    yield Hit(
                        f"{what} {ctx.at(request)} was sent after the dialog ended with {ctx.at(bye)}",
                        (request, bye),
                    )


@REGISTRY.rule(
    "481-in-dialog",
    Severity.ERROR,
    "A request was answered 481 Call/Transaction Does Not Exist.",
    "The peer does not know the dialog the request belongs to (RFC 3261 §12.2.2): it already "
    "ended the call (timeout, restart, lost BYE), or a proxy or B2BUA changed the Call-ID or tags.",
)
def _481_in_dialog(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for tx in leg.transactions:
            final = tx.final
            if tx.final_status != 481 or tx.method == "CANCEL" or final is None:
                continue
            request = tx.request
            if request is None:
                yield Hit(f"{ctx.at(final)} answers a request that was not captured", (final,))
                continue
            yield Hit(
                f"{ctx.at(request)} from {request.src} to {request.dst} was answered {ctx.at(final)}",
                (request, final),
            )


def _cancelled_invite(ctx: Context, leg: Leg, cancel: Transaction) -> Transaction | None:
    if cancel.cancels is not None:
        return ctx.transactions.get(cancel.cancels)
    # A CANCEL whose branch matched no INVITE: the INVITE with its CSeq number, same client.
    candidates = [
        tx
        for tx in leg.transactions
        if tx.method == "INVITE" and tx.cseq == cancel.cseq and tx.start <= cancel.start
    ]
    same_client = [tx for tx in candidates if tx.client == cancel.client]
    pick = same_client or candidates
    return pick[-1] if pick else None


@REGISTRY.rule(
    "cancel-after-final",
    Severity.WARNING,
    "A CANCEL was sent for an INVITE that already had its final response.",
    "A CANCEL has no effect once the INVITE got a final response (RFC 3261 §9.1); the caller "
    "should have sent ACK (and BYE after a 2xx). Usual causes: a race with the 200, a caller "
    "that ignores responses, or a 481 because the server no longer knows the INVITE.",
    kinds=_INVITE_DIALOG,
)
def _cancel_after_final(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for tx in leg.transactions:
            request = tx.request
            if tx.method != "CANCEL" or request is None:
                continue
            invite = _cancelled_invite(ctx, leg, tx)
            final = invite.final if invite is not None else None
            if final is not None and final.timestamp < request.timestamp:
                yield Hit(
                    f"{ctx.at(request)} from {request.src} was sent after the INVITE had its "
                    f"final response {ctx.at(final)}",
                    (request, final),
                )
            elif tx.final_status == 481 and tx.final is not None:
                yield Hit(
                    f"{ctx.at(request)} was answered {ctx.at(tx.final)}: the server no longer "
                    "knew the INVITE (already answered?)",
                    (request, tx.final),
                )


@REGISTRY.rule(
    "missing-header",
    Severity.ERROR,
    "A message lacks a mandatory header field.",
    "Every SIP message needs To, From, Call-ID, CSeq and Via, requests also Max-Forwards, and "
    "an INVITE and its 2xx a Contact (RFC 3261 §8.1.1, §12.1.1); peers may reject or "
    "misroute the message. Usual causes: a hand-written scenario or a buggy header manipulation.",
)
def _missing_header(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for m in leg.messages:
            if m.retransmission:
                continue
            sip = m.sip
            names = list(MANDATORY_HEADERS)  # §8.1.1
            if isinstance(sip, SipRequest):
                names.append("Max-Forwards")  # §8.1.1.6
                if sip.method == "INVITE":
                    names.append("Contact")  # §8.1.1.8
            elif 200 <= sip.status < 300 and sip.cseq is not None and sip.cseq.method == "INVITE":
                names.append("Contact")  # §13.3.1.4
            missing = [n for n in names if sip.headers.get(n) is None]
            if missing:
                listed = ", ".join(missing)
                plural = "s" if len(missing) > 1 else ""
                yield Hit(f"{ctx.at(m)} from {m.src} has no {listed} header{plural}", (m,))


@REGISTRY.rule(
    "content-length-mismatch",
    Severity.ERROR,
    "Content-Length differs from the length of the body.",
    "Receivers frame the body with Content-Length (RFC 3261 §18.3, §20.14), so a wrong value "
    "cuts the body or breaks the next message on TCP. Usual causes: a body edited (SDP "
    "rewritten by an SBC or ALG) without updating the header.",
)
def _content_length_mismatch(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for m in leg.messages:
            if m.retransmission or m.truncated:
                continue
            sip = m.sip
            header = sip.headers.get("content-length")
            if header is None:
                continue
            if sip.content_length is None:
                yield Hit(f"{ctx.at(m)} has an unusable Content-Length: {header.strip()[:20]!r}", (m,))
            elif sip.content_length != len(sip.body):
                yield Hit(
                    f"{ctx.at(m)} says Content-Length {sip.content_length} but carries "
                    f"{len(sip.body)} bytes of body",
                    (m,),
                )
            elif sip.trailing.strip(b"\r\n\t \x00"):
                yield Hit(
                    f"{ctx.at(m)} says Content-Length {sip.content_length} but "
                    f"{len(sip.trailing)} more bytes follow the body in the same packet",
                    (m,),
                )


@REGISTRY.rule(
    "branch-without-cookie",
    Severity.WARNING,
    "The top Via branch of a request lacks the z9hG4bK magic cookie.",
    "Without the cookie (RFC 3261 §8.1.1.7) peers fall back to RFC 2543 transaction "
    "matching, which mismatches retransmissions, CANCELs and forked responses. Usual cause: "
    "a very old or non-compliant UA or proxy.",
)
def _branch_without_cookie(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for tx in leg.transactions:
            request = tx.request
            via = request.sip.top_via if request is not None else None
            if request is None or via is None or via.rfc3261_branch:
                continue
            branch = via.branch
            said = f"branch {branch!r}" if branch else "no branch"
            yield Hit(
                f"{ctx.at(request)} from {request.src} has top Via {said}, without the z9hG4bK cookie",
                (request,),
            )


@REGISTRY.rule(
    "no-to-tag",
    Severity.ERROR,
    "An 18x or 2xx response to an INVITE has no To tag.",
    "The To tag of a provisional (above 100) or 2xx response names the callee's side of "
    "the dialog (RFC 3261 §8.2.6.2, §12.1.1); without it no dialog can be formed and later "
    "requests (ACK, BYE) cannot be matched.",
    kinds=_INVITE_DIALOG,
)
def _no_to_tag(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for m in leg.messages:
            status = _status(m)
            if status is None or m.retransmission or not 100 < status < 300:
                continue
            if m.cseq_method == "INVITE" and m.sip.to_tag is None:
                yield Hit(f"{ctx.at(m)} from {m.src} has no To tag", (m,))


# RTP formats that do not carry the call's media themselves (RFC 4733, 3389, 2198, 5109, 4588).
_AUXILIARY: Final = frozenset({"telephone-event", "cn", "red", "ulpfec", "flexfec", "rtx"})


def _main_codecs(media: Media) -> list[Codec]:
    return [c for c in media.codecs if (c.name or "").lower() not in _AUXILIARY]


def _same_codec(a: Codec, b: Codec) -> bool:
    if a.name and b.name:
        if a.name.lower() != b.name.lower():
            return False
        return a.clock_rate is None or b.clock_rate is None or a.clock_rate == b.clock_rate
    return a.payload_type == b.payload_type


def _codec_list(codecs: Iterable[Codec]) -> str:
    return ",".join(str(c) for c in codecs) or "none"


@REGISTRY.rule(
    "sdp-no-common-codec",
    Severity.ERROR,
    "An SDP answer has no codec from the offer.",
    "An answer must pick codecs the offer listed (RFC 3264 §6.1); with none in common there "
    "is no audio (or video), or the call is torn down. Usual causes: transcoding or codec "
    "policy of an SBC, or a UA that ignores the offer.",
    kinds=_INVITE_DIALOG,
)
def _sdp_no_common_codec(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for exchange in leg.negotiation.exchanges:
            offer, answer = exchange.offer, exchange.answer
            if answer is None:
                continue
            for pair in exchange.media:
                offered, answered = pair.offer, pair.answer
                if answered is None:
                    break  # an answer with fewer m= lines than the offer: nothing to compare
                if offered.port == 0 or answered.port == 0:
                    continue  # a rejected or disabled stream (RFC 3264 §6)
                mine, theirs = _main_codecs(answered), _main_codecs(offered)
                if not mine and not theirs:
                    continue
                if any(_same_codec(a, b) for a in mine for b in theirs):
                    continue
                yield Hit(
                    f"{ctx.at(answer)} answers {answered.kind} with {_codec_list(answered.codecs)}, "
                    f"none of which {ctx.at(offer)} offered ({_codec_list(offered.codecs)})",
                    (answer, offer),
                )


_PRIVATE_NETS: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
    )
)
"""RFC 1918, RFC 6598 (carrier-grade NAT), RFC 4193 (unique local), IPv6 link-local and the
deprecated site-local (RFC 3879)."""


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _private(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(addr.version == net.version and addr in net for net in _PRIVATE_NETS)


def _nat_evidence(message: Message) -> str | None:
    """Why the message looks like it crosses NAT, or None."""
    for host in (message.src.host, message.dst.host):
        addr = _ip(host)
        if addr is not None and addr.is_global and not _private(addr):
            return f"sent {'from' if host == message.src.host else 'to'} public address {host}"
    for via in message.sip.vias:
        received = _ip(via.param("received"))
        if received is None or received == _ip(via.host):
            continue
        if received.is_global and not _private(received):
            return f"a Via says received={received}"
    return None


@REGISTRY.rule(
    "sdp-unreachable-media",
    Severity.WARNING,
    "SDP offers media at 0.0.0.0, or at a private address across what looks like NAT.",
    "Media sent to 0.0.0.0 goes nowhere (RFC 2543-style hold; RFC 3264 §8.4 recommends "
    "a=sendonly/inactive instead), and a private (RFC 1918) address is unreachable from "
    "across NAT: one-way or no audio unless an SBC, ALG or ICE fixes it.",
    kinds=_INVITE_DIALOG,
)
def _sdp_unreachable_media(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        roles = leg.negotiation.roles
        for m in leg.messages:
            entry = roles.get(m.index)
            if entry is None or m.retransmission:
                continue
            role, sdp = entry
            problems: list[str] = []
            nat = _nat_evidence(m)
            for media in sdp.media:
                addr = _ip(media.connection)
                if media.port == 0 or addr is None:
                    continue
                if addr.is_unspecified:
                    problems.append(f"{media.kind} at {media.connection}")
                elif _private(addr) and nat is not None:
                    problems.append(f"{media.kind} at private {media.connection} ({nat})")
            if problems:
                yield Hit(f"the SDP {role.value} in {ctx.at(m)} puts " + "; ".join(problems), (m,))


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
    kinds=_INVITE_DIALOG,
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
    kinds=_INVITE_DIALOG,
)
def _slow_setup(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    hit = _slow(ctx, call, call.setup_ms, limits["max_ms"], "setup time", caller_view(call.legs[0]).answer)
    if hit is not None:
        yield hit


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


# ------------------------------------------------------------------------------ defects

REGISTRY.family(defects.FAMILY, defects.MESSAGE_RULES, defects.message_defects)
REGISTRY.family(defects.FAMILY, (defects.MALFORMED_RULE,), defects.malformed_payloads, scope=Scope.ANALYSIS)

# ---------------------------------------------------------------------------------- engine

RULES: Final[tuple[Rule, ...]] = REGISTRY.rules
"""The catalogue of built-in rules, in the order their findings sort within a frame."""


def rule(rule_id: str) -> Rule:
    """The rule with this id (``KeyError`` when there is none)."""
    return REGISTRY.get(rule_id)


def run_rules(analysis: Analysis, config: Settings | None = None) -> list[Finding]:
    """Apply every enabled rule to every item of ``analysis``.

    ``config`` (a ``CheckConfig``: ``load_config``) disables rules, changes their thresholds
    and severities; None runs every rule with its defaults. Findings come ordered by call,
    then by the first frame they name, then by the rule's place in ``RULES``; those of no
    call come last.
    """
    return REGISTRY.run(analysis, config)
