"""Built-in rules about a call's media: RTP one way or none, from elsewhere than the SDP said,
lossy, jittery, after the hang-up, or in a codec the SDP did not offer.

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
from sipflow.model.media import StreamSdp, stream_sdp, streams_by_call
from sipflow.model.message import Message
from sipflow.sip.message import SipRequest
from sipflow.sip.sdp import Media, SessionDescription

__all__ = ["MEDIA_RULES", "REGISTRY"]

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


def _described_streams(ctx: Context, call: Call) -> list[tuple[RtpStream, StreamSdp | None]]:
    """The call's streams, each with what the call's SDP says of it (``model.media.stream_sdp``);
    empty when the media was not measured."""
    by_call = _streams(ctx)
    if by_call is None:
        return []
    streams = by_call.get(call.index, [])
    return list(zip(streams, stream_sdp(call, streams), strict=True)) if streams else []


def _frames(ctx: Context, anchor: Message, stream: RtpStream) -> tuple[tuple[str, int], ...]:
    """The anchor message's frame and the stream's first and last: what to open in Wireshark.
    A stream knows its frame numbers, not its file: with several files, the message's only."""
    own = ((anchor.file, anchor.frame),)
    if len(ctx.analysis.files) != 1:
        return own
    return (*own, (anchor.file, stream.first_frame), (anchor.file, stream.last_frame))


def _name(stream: RtpStream) -> str:
    frames = f"frames {stream.first_frame}-{stream.last_frame}"
    return f"RTP {stream.src} -> {stream.dst} (SSRC 0x{stream.ssrc:08x}, {frames})"


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


@REGISTRY.rule(
    "media-address-mismatch",
    Severity.WARNING,
    "RTP comes from another address or port than its sender's SDP said.",
    "With symmetric RTP (RFC 4961), which nearly every SIP device uses, a side sends its RTP from "
    "the address and port it put in its SDP to receive on. A stream from elsewhere usually "
    "means NAT (a private address in the SDP, the public one on the wire) or an SBC or media "
    "relay anchoring the media; a device that rejects media from unexpected sources, or a "
    "firewall that opened only the SDP's pinhole, then drops it: one-way audio follows.",
    kinds=INVITE_DIALOG,
)
def _media_address_mismatch(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for stream, sdp in _described_streams(ctx, call):
        if sdp is None or sdp.sdp_matches is not False or sdp.sender is None or sdp.sender_message is None:
            continue
        said = Endpoint(sdp.sender.connection or "?", sdp.sender.port)
        yield Hit(
            f"{_name(stream)} comes from {stream.src}; its sender's SDP ({ctx.at(sdp.sender_message)}) "
            f"said {said}",
            (sdp.sender_message,),
            frames=_frames(ctx, sdp.sender_message, stream),
        )


def _anchor(call: Call, sdp: StreamSdp | None) -> Message:
    if sdp is not None:
        return sdp.receiver_message
    return caller_view(call.legs[0]).answer or call.legs[0].messages[0]


@REGISTRY.rule(
    "rtp-loss",
    Severity.WARNING,
    "An RTP stream lost more packets than the configured share.",
    "The stream's sequence numbers (RFC 3550 A.1) show packets that never reached the capture "
    "point: dropped by a congested link, a Wi-Fi hop, a policer or an overloaded media relay "
    "before it (packets lost after the capture point are not seen). Above about 1 % random "
    "loss, G.711 speech is audibly broken; codecs without concealment suffer sooner.",
    thresholds={"max_loss_pct": 1.0},
    kinds=INVITE_DIALOG,
)
def _rtp_loss(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for stream, sdp in _described_streams(ctx, call):
        f = stream.figures
        share = f.lost_pct
        if share is None or share <= limits["max_loss_pct"]:
            continue
        anchor = _anchor(call, sdp)
        yield Hit(
            f"{_name(stream)} lost {f.lost} of {f.expected} packets ({share:.1f} %, over "
            f"{limits['max_loss_pct']:g} %)",
            (anchor,),
            frames=_frames(ctx, anchor, stream),
        )


@REGISTRY.rule(
    "rtp-jitter",
    Severity.WARNING,
    "An RTP stream's interarrival jitter rose above the configured maximum.",
    "Interarrival jitter (RFC 3550 §6.4.1) is how much the packets' arrival spacing strays "
    "from their sending spacing, smoothed. A receiver's jitter buffer absorbs some; beyond it "
    "late packets are dropped and speech breaks up, as if lost. The usual causes: a congested "
    "or shared link, Wi-Fi, a busy media server, or queues without voice priority (QoS).",
    thresholds={"max_jitter_ms": 30.0},
    kinds=INVITE_DIALOG,
)
def _rtp_jitter(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for stream, sdp in _described_streams(ctx, call):
        f = stream.figures
        if f.max_jitter_ms is None or f.max_jitter_ms <= limits["max_jitter_ms"]:
            continue
        if sdp is not None and sdp.receiver.kind != "audio":
            continue  # a video frame's packets share one timestamp: their jitter is not speech's
        anchor = _anchor(call, sdp)
        mean = f" (mean {f.mean_jitter_ms:.1f} ms)" if f.mean_jitter_ms is not None else ""
        yield Hit(
            f"{_name(stream)} jitter reached {f.max_jitter_ms:.1f} ms{mean}, over "
            f"{limits['max_jitter_ms']:g} ms",
            (anchor,),
            frames=_frames(ctx, anchor, stream),
        )


def _first_bye(call: Call) -> Message | None:
    byes = [
        m
        for leg in call.legs
        for m in leg.messages
        if isinstance(m.sip, SipRequest) and m.sip.method == "BYE"
    ]
    return min(byes, key=lambda m: m.timestamp) if byes else None


@REGISTRY.rule(
    "media-after-bye",
    Severity.WARNING,
    "RTP of a call went on after its BYE.",
    "A side that sends or receives BYE ends the session and stops sending its media (RFC 3261 "
    "§15). RTP that goes on for longer than a moment after the first BYE of the call is a "
    "media server or gateway that did not tear the session down (a BYE lost or not passed on "
    "by a B2BUA, a stuck media relay): it holds a port and a channel, and is often billed.",
    thresholds={"grace_ms": 1000.0},
    kinds=INVITE_DIALOG,
)
def _media_after_bye(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    described = _described_streams(ctx, call)
    if not described:
        return
    bye = _first_bye(call)
    if bye is None:
        return
    grace = limits["grace_ms"] / 1000.0
    for stream, _sdp in described:
        after = stream.last_time - bye.timestamp
        if after <= grace or stream.first_time > bye.timestamp:
            continue  # a stream that began after the BYE belongs to what follows (a new call)
        yield Hit(
            f"{_name(stream)} went on {after:.1f} s after the BYE ({ctx.at(bye)})",
            (bye,),
            frames=_frames(ctx, bye, stream),
        )


@REGISTRY.rule(
    "codec-not-negotiated",
    Severity.ERROR,
    "An RTP stream carries a payload type its receiver's SDP did not list.",
    "A receiver lists in its SDP the payload types it accepts at an address (RFC 3264 §5.1); the "
    "sender must use one of those (§6.1). Another payload type is a sender ignoring the answer "
    "(or an SBC transcoding on one side only, a re-INVITE it did not honour): the receiver "
    "plays silence or noise, or drops the packets.",
    kinds=INVITE_DIALOG,
)
def _codec_not_negotiated(ctx: Context, call: Call, limits: Mapping[str, float]) -> Iterator[Hit]:
    for stream, sdp in _described_streams(ctx, call):
        if sdp is None or not sdp.negotiated:
            continue
        stray = [
            (pt, name)
            for pt, name in zip(stream.figures.payload_types, stream.codecs, strict=False)
            if pt not in sdp.negotiated
        ]
        if not stray:
            continue
        carried = ", ".join(f"{pt} ({name})" if name != str(pt) else str(pt) for pt, name in stray)
        listed = ", ".join(str(pt) for pt in sorted(sdp.negotiated))
        yield Hit(
            f"{_name(stream)} carries payload type {carried}, which its receiver's SDP "
            f"({ctx.at(sdp.receiver_message)}) did not list ({listed})",
            (sdp.receiver_message,),
            frames=_frames(ctx, sdp.receiver_message, stream),
        )


MEDIA_RULES: Final = frozenset(rule.id for rule in REGISTRY.rules)
"""The rules that read the RTP: ``sipflow check`` measures the media unless all are disabled."""
