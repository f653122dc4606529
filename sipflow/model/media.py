"""Which call each RTP stream belongs to: the SDP that described its destination (RFC 3264).

A stream is sent to the address and port its receiver put in its SDP (the ``c=`` and ``m=``
lines of its offer or answer, RFC 3264 §5, §6). The call of a stream is the call with the
latest description of the stream's destination before the stream's first packet (a re-INVITE
that moves the media describes the new address from then on); a stream that starts before any
description of its destination goes to the first call that describes it afterwards, and one
that no SDP of the capture describes is unlinked. Linking is by address and time, never by
port alone.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from sipflow.media.collector import RtpStream
from sipflow.model.call import Call


def streams_by_call(calls: Sequence[Call], streams: Sequence[RtpStream]) -> dict[int, list[RtpStream]]:
    """``calls_of_streams`` by ``Call.index``; the unlinked streams under key -1."""
    out: dict[int, list[RtpStream]] = {}
    for stream, call in zip(streams, calls_of_streams(calls, streams), strict=True):
        out.setdefault(call.index if call is not None else -1, []).append(stream)
    return out


def calls_of_streams(calls: Sequence[Call], streams: Sequence[RtpStream]) -> list[Call | None]:
    """For each of ``streams``, the call among ``calls`` whose SDP describes its destination."""
    described: dict[tuple[str, int], list[tuple[float, int, Call]]] = {}
    for order, call in enumerate(calls):
        for leg in call.legs:
            by_index = {m.index: m for m in leg.messages}
            for index, (_role, sd) in leg.negotiation.roles.items():
                message = by_index.get(index)
                if message is None:
                    continue
                for media in sd.media:
                    if media.port and media.connection is not None:
                        key = (media.connection, media.port)
                        described.setdefault(key, []).append((message.timestamp, order, call))
    for entries in described.values():
        entries.sort(key=lambda e: (e[0], e[1]))
    out: list[Call | None] = []
    for stream in streams:
        found = described.get((stream.dst.host, stream.dst.port))
        if not found:
            out.append(None)
            continue
        i = bisect.bisect_right([e[0] for e in found], stream.first_time)
        out.append(found[i - 1][2] if i else found[0][2])
    return out
