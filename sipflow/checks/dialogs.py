"""Built-in rules about dialogs: the requests sent within one, and how it ends.

A new request whose CSeq does not rise (``cseq-not-increasing``), a BYE or re-INVITE sent
outside a confirmed dialog (``request-outside-dialog``), a request the peer answered 481
because it knew no such dialog (``481-in-dialog``), and a CANCEL sent after the INVITE had its
final response (``cancel-after-final``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Final

from sipflow.checks.finding import Severity
from sipflow.checks.registry import INVITE_DIALOG, Context, Hit, Registry
from sipflow.model.call import Call, Leg
from sipflow.model.dialog import Dialog
from sipflow.model.message import Message
from sipflow.model.transaction import Transaction

__all__ = ["REGISTRY"]

REGISTRY: Final = Registry()
"""This module's rules, in order (``sipflow.checks.rules`` gathers them into the catalogue)."""


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
            sides.setdefault((request.sip.from_tag, request.src), []).append(request)
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
    key = (request.sip.from_tag, request.sip.cseq.seq)
    # The same BYE relayed hop by hop: same sender tag and CSeq.
    finals = [
        tx.final.timestamp
        for tx in byes
        if tx.request is not None and tx.final is not None and (tx.request.sip.from_tag, tx.cseq) == key
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
    kinds=INVITE_DIALOG,
)
def _request_outside_dialog(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        created_here = [d for d in leg.dialogs if d.created_by]
        for tx in leg.transactions:
            request = tx.request
            if tx.method not in ("BYE", "INVITE") or request is None:
                continue
            to_tag = request.sip.to_tag
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
                        f"{what} {ctx.at(request)} carries tags (From {request.sip.from_tag}, To "
                        f"{to_tag}) of no dialog set up in the capture",
                        (request,),
                    )
                continue
            t = request.timestamp
            if dialog.confirmed_at is None or dialog.confirmed_at > t:
                # RFC 3261 §15: the caller may send BYE in an early dialog, the callee may not.
                if tx.method == "BYE" and request.sip.from_tag == dialog.from_tag:
                    continue
                text = f"{what} {ctx.at(request)} was sent in an early dialog, before any 2xx"
                yield Hit(text, (request,))
                continue
            end = _dialog_end(ctx, dialog)
            if end is not None:
                ended_at, bye, key = end
                if t > ended_at and (request.sip.from_tag, tx.cseq) != key:
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
    kinds=INVITE_DIALOG,
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
