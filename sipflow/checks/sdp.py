"""Built-in rules about SDP offer/answer: the media a call's negotiation sets up.

An answer with no codec from its offer (``sdp-no-common-codec``), and media offered at 0.0.0.0
or at a private address across what looks like NAT (``sdp-unreachable-media``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Final

from sipflow.checks.finding import Severity
from sipflow.checks.registry import INVITE_DIALOG, Context, Hit, Registry
from sipflow.model.call import Call
from sipflow.model.message import Message
from sipflow.sip.sdp import Codec, Media

__all__ = ["REGISTRY"]

REGISTRY: Final = Registry()
"""This module's rules, in order (``sipflow.checks.rules`` gathers them into the catalogue)."""


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
    kinds=INVITE_DIALOG,
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


@lru_cache(maxsize=4096)
def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Cached: a capture's messages name the same few hosts (a proxy's, an SBC's) again and again.
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _private(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(addr.version == net.version and addr in net for net in _PRIVATE_NETS)


@lru_cache(maxsize=4096)
def _public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return addr.is_global and not _private(addr)


def _nat_evidence(message: Message) -> str | None:
    """Why the message looks like it crosses NAT, or None."""
    for host in (message.src.host, message.dst.host):
        addr = _ip(host)
        if addr is not None and _public(addr):
            return f"sent {'from' if host == message.src.host else 'to'} public address {host}"
    for via in message.sip.vias:
        received = _ip(via.param("received"))
        if received is None or received == _ip(via.host):
            continue
        if _public(received):
            return f"a Via says received={received}"
    return None


@REGISTRY.rule(
    "sdp-unreachable-media",
    Severity.WARNING,
    "SDP offers media at 0.0.0.0, or at a private address across what looks like NAT.",
    "Media sent to 0.0.0.0 goes nowhere (RFC 2543-style hold; RFC 3264 §8.4 recommends "
    "a=sendonly/inactive instead), and a private (RFC 1918) address is unreachable from "
    "across NAT: one-way or no audio unless an SBC, ALG or ICE fixes it.",
    kinds=INVITE_DIALOG,
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
