"""Built-in rules about a call's media: RTP in one direction only, or none at all.

They read the RTP streams the analysis measured (``analyze(media=True)``, as ``sipflow check``
runs it), each linked to the call whose SDP described its destination (``model.media``). A
capture without any RTP (a SIP-only capture, a port filter) raises neither: it says nothing
about the media.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

from sipflow.capture.types import Endpoint
from sipflow.checks.finding import Severity
from sipflow.checks.registry import INVITE_DIALOG, Context, Hit, Registry
from sipflow.media.collector import RtpStream
from sipflow.model.call import Call, CallKind
from sipflow.model.caller import caller_view
from sipflow.model.media import streams_by_call
from sipflow.sip.sdp import Media, SessionDescription

__all__ = ["REGISTRY"]

REGISTRY: Final = Registry()
"""This module's rules, in order (``sipflow.checks.rules`` gathers them into the catalogue)."""


def _streams(ctx: Context) -> dict[int, list[RtpStream]] | None:
    """The measured streams by call index, computed once per run; None when the media was not
    measured or the capture holds no RTP."""
    key = "media.streams"
    if key not in ctx.shared:
        analysis = ctx.analysis
        found = streams_by_call(analysis.calls, analysis.media) if analysis.media else None
        ctx.shared[key] = found
    value = ctx.shared[key]
    return value if isinstance(value, dict) else None


_NOWHERE: Final = frozenset(("0.0.0.0", "::"))  # RFC 2543-style hold (RFC 3264 §8.4)


def _receives(m: Media) -> bool:
    """Whether the owner of this m= line asks to receive media there: a port, a real address,
    and not ``sendonly`` or ``inactive`` (RFC 3264 §5.1, §8.4: hold)."""
    return bool(m.port) and m.connection is not None and m.connection not in _NOWHERE and m.direction in (
        "sendrecv", "recvonly",
    )  # fmt: skip


def _described(call: Call) -> set[tuple[str, int]]:
    """The (address, port) of every m= line of the call's SDP that asks to receive media."""
    out: set[tuple[str, int]] = set()
    for leg in call.legs:
        for _role, sd in leg.negotiation.roles.values():
            out.update((m.connection, m.port) for m in sd.media if _receives(m) and m.connection is not None)
    return out


def _answered(call: Call) -> float | None:
    """When the call was answered (the caller's 2xx), or None."""
    if call.kind is not CallKind.CALL:
        return None
    return caller_view(call.legs[0]).answer_time


def _audio(sd: SessionDescription | None) -> set[tuple[str, int]]:
    """The (address, port) where the SDP's owner asks to receive audio (a stream on hold, one
    way by design, is not expected there)."""
    if sd is None:
        return set()
    return {(m.connection, m.port) for m in sd.media if m.kind == "audio" and _receives(m) and m.connection}


@REGISTRY.rule(
    "one-way-audio",
    Severity.ERROR,
    "An answered call has RTP audio in one direction only.",
    "Each side of a call sends its RTP to the address the other side put in its SDP; on a leg "
    "whose audio the capture holds, here the streams reach one side's address and none reach "
    "the other's. The usual causes: NAT (a private address in the SDP, media sent where it "
    "cannot arrive), a firewall or SBC that does not open the return path, or a phone muted or "
    "with a broken microphone path. Compare the SDP addresses with the streams (`sipflow media`).",
    kinds=INVITE_DIALOG,
)
def _one_way_audio(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    by_call = _streams(ctx)
    if by_call is None or _answered(call) is None:
        return
    streams = by_call.get(call.index, [])
    reached = {(s.dst.host, s.dst.port) for s in streams}
    for leg in call.legs:
        # RFC 3264: the offerer receives at its offer's addresses, the answerer at its answer's.
        offerer: set[tuple[str, int]] = set()
        answerer: set[tuple[str, int]] = set()
        for exchange in leg.negotiation.exchanges:
            if exchange.answer_sdp is not None:
                offerer |= _audio(exchange.offer_sdp)
                answerer |= _audio(exchange.answer_sdp)
        if not offerer or not answerer or offerer & answerer:
            continue
        to_offerer, to_answerer = reached & offerer, reached & answerer
        if bool(to_offerer) == bool(to_answerer):
            continue  # both ways, or this leg's audio is not in the capture
        heard = to_offerer or to_answerer
        silent = answerer if to_offerer else offerer
        sent = ", ".join(
            f"{s.src} -> {s.dst} ({s.figures.packets} packets)"
            for s in streams
            if (s.dst.host, s.dst.port) in heard
        )
        names = ", ".join(str(Endpoint(h, p)) for h, p in sorted(silent))
        answer = caller_view(leg).answer or leg.messages[0]
        yield Hit(f"RTP audio one way only: {sent}; none to {names}", (answer,))


@REGISTRY.rule(
    "no-media",
    Severity.ERROR,
    "An answered call has no RTP at all, while the capture holds RTP of other calls.",
    "The call was answered but no RTP reached any address its SDP described, although the "
    "capture does carry media and covers the call. The usual causes: media sent elsewhere than "
    "the SDP says (an SBC or ALG rewriting one but not the other), a codec or SRTP mismatch "
    "that stops both sides sending, or a capture point that media bypasses (direct media past a "
    "proxy).",
    thresholds={"min_duration_s": 1.0},
    kinds=INVITE_DIALOG,
)
def _no_media(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    by_call = _streams(ctx)
    answered = _answered(call)
    if by_call is None or answered is None or by_call.get(call.index):
        return
    # Answer to the first BYE; a call not hung up in the capture lasts to its end.
    end = answered + call.duration_s if call.duration_s is not None else ctx.end
    if end - answered < limits["min_duration_s"] or not _described(call):
        return
    media = ctx.analysis.media
    first = min(s.first_time for s in media)
    last = max(s.last_time for s in media)
    if first > end or last < answered:
        return  # the capture's media does not overlap the call: it says nothing of this one
    answer = caller_view(call.legs[0]).answer
    yield Hit(
        f"answered at {ctx.at(answer) if answer is not None else 'its 2xx'} and no RTP to any address "
        "its SDP described",
        (answer,) if answer is not None else (call.legs[0].messages[0],),
    )
