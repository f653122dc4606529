"""RTP and RTCP over TCP, RFC 4571 (sans-I/O).

Each packet follows its 16-bit length (RFC 4571 §2): RTP (RFC 3550 §5.1), RTCP (§6.4) or, on
an ICE-TCP stream (RFC 6544), STUN (RFC 8489, told apart by RFC 7983 §7). :func:`rfc4571_frame`
and :func:`rfc4571_run` recognise such frames (the sniffer uses them to identify a stream:
:data:`RFC4571_RUN` plausible frames in a row, each under :data:`RFC4571_SNIFFED` octets);
:class:`RtpFramer` counts the packets, as :data:`RTP_OVER_TCP` in
:attr:`CaptureStats.non_sip`, for the media analysis to plug into, and resynchronises on the
next run of frames when the stream is out of step. Memory is bounded per stream by the 16-bit
length (64 KiB).
"""

from __future__ import annotations

import re
from typing import Final

from sipflow.capture import detect
from sipflow.capture.framing.base import Framer, FramerContext, StreamBytes
from sipflow.capture.types import SipPayload

RTP_OVER_TCP: Final = "RTP over TCP"
"""Kind in :attr:`CaptureStats.non_sip`: the frames of an RFC 4571 stream (RTP, RTCP, STUN)."""

RFC4571_RUN: Final = 3
"""RFC 4571 frames in a row (each length leading to the next plausible RTP/RTCP header) that
identify a stream as RTP over TCP, when it is sniffed or resynchronised."""

RFC4571_SNIFFED: Final = 0x0600
"""Frame lengths (RTP/RTCP packet octets) below which a length prefix is plausible when sniffing
or resynchronising: an RTP packet that fits an Ethernet MTU (RFC 4571 streams mostly carry what
was made for UDP: ICE-TCP, RFC 6544), and a first octet (0-5) that no SIP, HEP3, HTTP or TLS
stream starts with, so that none of them is ever taken for RTP or waits on the sniffer."""

_RTP_KIND: Final = detect.RTP_KIND

_RFC4571_CANDIDATE: Final = re.compile(rb"[\x00-%c].[\x80-\xbf]" % ((RFC4571_SNIFFED - 1) >> 8), re.DOTALL)
"""Where an RFC 4571 frame of a sniffed length may begin: length octets, an RTP version-2 octet."""


def rfc4571_frame(buf: bytes | bytearray, i: int) -> int:
    """Octets of the RFC 4571 frame at ``buf[i]`` (2-octet length and packet) when its packet
    begins like an RTP (RFC 3550 §5.1) or RTCP (§6.4) one; 0 while the octets there (fewer
    than 6) do not tell; -1 when it does not.

    RTP: version 2, a payload type of RFC 3551 §6 or dynamic, at least the fixed header and its
    CSRC list. RTCP (RFC 5761 §4 packet types 192-223): version 2, its first packet fitting.
    """
    have = len(buf) - i
    if have < 3:
        return 0
    b0 = buf[i + 2]
    if not 0x80 <= b0 < 0xC0:
        return -1
    kind = _RTP_KIND[buf[i + 3]] if have > 3 else detect.RTP
    if kind is None:
        return -1
    if have < 6:
        return 0
    n = buf[i] << 8 | buf[i + 1]
    if kind is detect.RTP:
        ok = n >= 12 + 4 * (b0 & 0x0F)
    elif kind is detect.RTCP:
        ok = n >= 8 and 4 * ((buf[i + 4] << 8 | buf[i + 5]) + 1) <= n
    else:
        ok = False
    return 2 + n if ok else -1


def rfc4571_run(buf: bytes | bytearray, i: int, limit: int = RFC4571_SNIFFED) -> int:
    """How many RFC 4571 frames of RTP or RTCP follow each other from ``buf[i]``, each shorter
    than ``limit`` octets, up to :data:`RFC4571_RUN`; -1 when the run breaks before that.

    Less than :data:`RFC4571_RUN`: the run is intact as far as the buffer goes (more octets may
    complete it).
    """
    count = 0
    while count < RFC4571_RUN:
        n = rfc4571_frame(buf, i)
        if n == 0:
            return count
        if n < 0 or n - 2 >= limit:
            return -1
        count += 1
        i += n
    return count


class RtpFramer(Framer):
    """RTP and RTCP packets, each after its 16-bit length (RFC 4571 §2), counted.

    The length is trusted while in step; a packet that does not begin like RTP, RTCP or STUN
    (RFC 7983 §7: first octet 0-3; ICE-TCP, RFC 6544) shows the stream out of step, which is
    then searched for the next :data:`RFC4571_RUN` frames in a row. A hole inside a frame of
    known length keeps the stream in step. The media analysis is to plug in at
    :meth:`_packet`.
    """

    __slots__ = ("hunting", "others", "rtcp", "rtp", "skip")

    def __init__(self, ctx: FramerContext) -> None:
        super().__init__(ctx, RTP_OVER_TCP)
        self.hunting = False
        """Searching for the next run of frames (after junk or a hole)."""
        self.skip = 0
        """Octets of a frame cut by a hole still to be dropped (the stream is still in step)."""
        self.rtp = 0
        """RTP packets framed."""
        self.rtcp = 0
        """RTCP (compound) packets framed."""
        self.others = 0
        """Other packets framed (STUN)."""

    def feed(self, b: StreamBytes, out: list[SipPayload]) -> Framer:
        buf = b.data
        while buf:
            if self.skip:
                n = min(self.skip, len(buf))
                self.skip -= n
                b.consume(n, RTP_OVER_TCP)
                continue
            if self.hunting and not self._hunt(b):
                return self
            if len(buf) < 3:
                return self
            total = 2 + (buf[0] << 8 | buf[1])
            b0 = buf[2]
            if 0x80 <= b0 < 0xC0:
                n = rfc4571_frame(buf, 0)
                if n == 0:
                    return self  # the RTP/RTCP header is still arriving
                ok = n > 0
            else:
                ok = b0 < 4 and total >= 22  # RFC 8489 §5: a 20-octet STUN header
            if not ok:
                if not b.warned:
                    b.warned = True
                    self.ctx.warn_stream(
                        b,
                        "data that is not an RTP, RTCP or STUN packet on an RFC 4571 stream; "
                        "resynchronising on the next run of RTP/RTCP packets",
                        b.first_frame,
                    )
                b.consume(1, RTP_OVER_TCP)
                self.hunting = True
                continue
            if len(buf) < total:
                return self
            self._packet(b, total)
            b.consume(total, RTP_OVER_TCP)
        return self

    def gap(self, b: StreamBytes, nbytes: int, out: list[SipPayload]) -> Framer:
        if self.skip >= nbytes:
            self.skip -= nbytes
            return self
        buf = b.data
        if not self.hunting and not self.skip and len(buf) >= 2:
            left = 2 + (buf[0] << 8 | buf[1]) - len(buf)  # octets of the frame in progress to come
            if nbytes <= left:
                self.skip = left - nbytes  # the hole ends inside the frame: still in step
                b.consume(len(buf), RTP_OVER_TCP)
                return self
        self.skip = 0
        self.end(b, out)
        self.hunting = True
        return self

    def end(self, b: StreamBytes, out: list[SipPayload]) -> None:
        if b.data:
            b.consume(len(b.data), RTP_OVER_TCP)

    def _hunt(self, b: StreamBytes) -> bool:
        """Drop octets up to the next run of frames; False while none is in the buffer."""
        buf = b.data
        i = 0
        while True:
            m = _RFC4571_CANDIDATE.search(buf, i)
            if m is None:
                i = max(i, len(buf) - 2)  # the last two octets may begin a frame
                break
            i = m.start()
            run_ = rfc4571_run(buf, i)
            if run_ >= RFC4571_RUN:
                if i:
                    b.consume(i, RTP_OVER_TCP)
                self.hunting = False
                return True
            if run_ >= 0:
                break  # a run still arriving: wait for it there
            i += 1
        if i > 0:
            b.consume(i, RTP_OVER_TCP)
        return False

    def _packet(self, b: StreamBytes, total: int) -> None:
        """One RFC 4571 frame of ``total`` octets at the front of ``b``: RTP, RTCP or STUN."""
        buf = b.data
        if buf[2] < 0x80:
            self.others += 1
            kind = detect.STUN
        elif _RTP_KIND[buf[3]] is detect.RTCP:
            self.rtcp += 1
            kind = detect.RTCP
        else:
            self.rtp += 1
            kind = detect.RTP
        sink = self.ctx.sink
        if sink is not None:
            # The segment holding the frame's last octet completed it.
            left = total
            for seg in b.segs:
                if seg.left >= left:
                    break
                left -= seg.left
            sink.framed(kind, seg.frame, seg.timestamp, b.src, b.dst, buf, 2, total)
