"""Built-in rules about the header fields of one message, each message on its own.

A mandatory header field missing (``missing-header``), a Content-Length that differs from the
body (``content-length-mismatch``), a top Via branch without the RFC 3261 magic cookie
(``branch-without-cookie``), and an 18x or 2xx to an INVITE without a To tag (``no-to-tag``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

from sipflow.checks.finding import Severity
from sipflow.checks.registry import INVITE_DIALOG, Context, Hit, Registry, status_of
from sipflow.model.call import Call
from sipflow.sip.message import SipRequest, canonical_name
from sipflow.sip.parse import MANDATORY_HEADERS

__all__ = ["REGISTRY"]

REGISTRY: Final = Registry()
"""This module's rules, in order (``sipflow.checks.rules`` gathers them into the catalogue)."""


@REGISTRY.rule(
    "missing-header",
    Severity.ERROR,
    "A message lacks a mandatory header field.",
    "Every SIP message needs To, From, Call-ID, CSeq and Via, requests also Max-Forwards (an "
    "ACK's: see ack-no-max-forwards), and an INVITE and its 2xx a Contact (RFC 3261 §8.1.1, "
    "§12.1.1); peers may reject or misroute the message. Usual causes: a hand-written scenario "
    "or a buggy header manipulation.",
)
def _missing_header(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for m in leg.messages:
            if m.retransmission:
                continue
            sip = m.sip
            names = list(MANDATORY_HEADERS)  # §8.1.1
            if isinstance(sip, SipRequest):
                if sip.method != "ACK":  # an ACK's: ack-no-max-forwards, a warning
                    names.append("Max-Forwards")  # §8.1.1.6
                if sip.method == "INVITE":
                    names.append("Contact")  # §8.1.1.8
            elif 200 <= sip.status < 300 and sip.cseq is not None and sip.cseq.method == "INVITE":
                names.append("Contact")  # §13.3.1.4
            # One pass over the header lines for every name (``get`` of each would be one each).
            found = sip.headers.collect(tuple(names))
            missing = [n for n in names if canonical_name(n) not in found]
            if missing:
                listed = ", ".join(missing)
                plural = "s" if len(missing) > 1 else ""
                yield Hit(f"{ctx.at(m)} from {m.src} has no {listed} header{plural}", (m,))


@REGISTRY.rule(
    "ack-no-max-forwards",
    Severity.WARNING,
    "The ACK of a 2xx has no Max-Forwards.",
    "The ACK of a 2xx is a request of its own (RFC 3261 §13.2.2.4) and should carry "
    "Max-Forwards (§8.1.1.6); many UAs leave it out and proxies add it, so it seldom breaks a "
    "call, but a strict peer may drop the ACK and the callee then hangs up after 32 s. The ACK "
    "of a non-2xx final response is built by the INVITE transaction without one (§17.1.1.3) "
    "and is not reported.",
)
def _ack_no_max_forwards(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        # That ACK is part of the INVITE's transaction (same branch), unlike the ACK of a 2xx.
        hop_acks = {
            id(m)
            for tx in leg.transactions
            if tx.method == "INVITE"
            for m in tx.messages
            if isinstance(m.sip, SipRequest) and m.sip.method == "ACK"
        }
        for m in leg.messages:
            sip = m.sip
            if m.retransmission or not isinstance(sip, SipRequest) or sip.method != "ACK":
                continue
            if id(m) not in hop_acks and sip.headers.get("Max-Forwards") is None:
                yield Hit(f"{ctx.at(m)} from {m.src} has no Max-Forwards header", (m,))


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
    kinds=INVITE_DIALOG,
)
def _no_to_tag(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for leg in call.legs:
        for m in leg.messages:
            status = status_of(m)
            if status is None or m.retransmission or not 100 < status < 300:
                continue
            if m.cseq_method == "INVITE" and m.sip.to_tag is None:
                yield Hit(f"{ctx.at(m)} from {m.src} has no To tag", (m,))
