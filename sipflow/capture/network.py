"""The network layer of the frame decoder (sans-I/O): IPv4 and IPv6 headers and fragments.

:class:`NetworkLayer` is the mixin of :class:`~sipflow.capture.decode.Decoder` that takes an
IP packet to its payload and hands that to the transport layer by protocol number:

* IPv4 (RFC 791 §3.1): version, header length and options, total length (0 as left by TCP
  segmentation offload: the frame tells), the identification kept for the packet handed up,
  and the payload cut by the snapshot length flagged as such;
* IPv6 (RFC 8200 §3): payload length (0 for a jumbogram, RFC 2675, or offload), extension
  headers walked by :func:`~sipflow.capture.ip.walk_ipv6_extensions` (RFC 8200 §4; AH,
  RFC 4302, is skipped there), atomic fragments taken in isolation (RFC 6946 §4);
* fragments reassembled by :class:`~sipflow.capture.ip.FragmentReassembler`: IPv4 per source,
  destination, protocol and identification (RFC 791 §3.2), IPv6 per source, destination and
  identification (RFC 8200 §4.5). Fragments cut by the snapshot length, and datagrams that
  expire, are evicted or grow too large, are counted and warned about, never guessed at.

UDP, the common case, is taken inline from the IPv4 header to the datagram (RFC 768), without
the protocol dispatch of :mod:`.transport`.
"""

from __future__ import annotations

from typing import Final

from sipflow.capture import detect
from sipflow.capture.ip import MalformedHeader, PendingDatagram, walk_ipv6_extensions
from sipflow.capture.layer import EMPTY, Layer
from sipflow.capture.types import SipPayload

# IP protocol numbers (IANA; the IPv4 Protocol and IPv6 Next Header fields).
PROTO_ICMP: Final = 1
PROTO_IPIP: Final = 4
PROTO_TCP: Final = 6
PROTO_UDP: Final = 17
PROTO_IPV6: Final = 41
PROTO_GRE: Final = 47
PROTO_ESP: Final = 50
PROTO_AH: Final = 51
PROTO_ICMPV6: Final = 58
PROTO_SCTP: Final = 132


class NetworkLayer(Layer):
    """IPv4 and IPv6 packets, reassembled from fragments, down to their transport payload."""

    # --- IPv4 (RFC 791) ----------------------------------------------------------------------

    def _ipv4(
        self, frame: int, ts: float, data: bytes, off: int, end: int, trunc: bool, depth: int
    ) -> list[SipPayload]:
        if end - off < 20:
            return self._malformed(frame, "IPv4", "header cut short")
        b0 = data[off]
        ihl = (b0 & 15) << 2
        if b0 >> 4 != 4 or ihl < 20:
            return self._malformed(frame, "IPv4", f"version {b0 >> 4}, header length {ihl}")
        self._ip_id = data[off + 4] << 8 | data[off + 5]
        total = data[off + 2] << 8 | data[off + 3]
        if total == 0:
            # TCP segmentation offload: the stack had not filled the length in yet. Only the
            # frame's own lengths tell whether the capture kept all of it.
            total = end - off
            if trunc:
                return self._ipv4_unsized(frame, ts, data, off, end, depth)
        elif total < ihl:
            return self._malformed(frame, "IPv4", f"total length {total} shorter than the header")
        ip_end = off + total
        cut = ip_end > end  # the capture kept less than the datagram (snapshot length)
        if cut:
            ip_end = end
            if off + ihl > end:
                return self._malformed(frame, "IPv4", "options cut short")
        proto = data[off + 9]
        p = off + ihl
        if data[off + 6] & 0x3F or data[off + 7]:
            return self._fragment4(frame, ts, data, off, p, ip_end, proto, total - ihl, cut, depth)
        if proto == 17:
            # UDP (RFC 768), kept inline: reject the payload on its first octet.
            if ip_end - p < 8:
                return self._malformed(frame, "UDP", "header cut short")
            ulen = data[p + 4] << 8 | data[p + 5]
            if ulen >= 8:
                if p + ulen <= ip_end:
                    ip_end = p + ulen
                else:
                    cut = True  # the UDP length claims more than the IP datagram holds
            return self._udp(
                frame,
                ts,
                data[off + 12 : off + 16],
                data[off + 16 : off + 20],
                data,
                p,
                ip_end,
                cut,
                depth,
                EMPTY,
            )
        missing = total - (ip_end - off) if cut else 0
        return self._transport(
            frame,
            ts,
            proto,
            data[off + 12 : off + 16],
            data[off + 16 : off + 20],
            data,
            p,
            ip_end,
            cut,
            missing,
            depth,
            EMPTY,
        )

    def _ipv4_unsized(
        self, frame: int, ts: float, data: bytes, off: int, end: int, depth: int
    ) -> list[SipPayload]:
        """An IPv4 datagram with total length 0 (offload) in a frame cut by the snapshot length."""
        ihl = (data[off] & 15) << 2
        if off + ihl > end:
            return self._malformed(frame, "IPv4", "options cut short")
        src, dst = data[off + 12 : off + 16], data[off + 16 : off + 20]
        # The datagram was longer than what is here; how much longer is unknown.
        return self._transport(
            frame, ts, data[off + 9], src, dst, data, off + ihl, end, True, 0, depth, EMPTY
        )

    def _fragment4(
        self,
        frame: int,
        ts: float,
        data: bytes,
        off: int,
        p: int,
        ip_end: int,
        proto: int,
        length: int,
        cut: bool,
        depth: int,
    ) -> list[SipPayload]:
        # RFC 791 §3.2: fragments are reassembled per (source, destination, protocol, identification).
        word = data[off + 6] << 8 | data[off + 7]
        offset = (word & 0x1FFF) << 3
        more = bool(word & 0x2000)
        src = data[off + 12 : off + 16]
        dst = data[off + 16 : off + 20]
        ident = data[off + 4] << 8 | data[off + 5]
        piece = data[p:ip_end]
        if cut:
            # A fragment cut by the snapshot length leaves a hole: its datagram cannot complete.
            self.warn("IPv4 fragment cut by the snapshot length; its datagram cannot be rebuilt", frame)
            self._count(detect.IP_FRAGMENT)
            return []
        done, dropped = self._frag4.add((src, dst, proto, ident), offset, more, piece, frame, ts)
        if dropped:
            self._dropped_fragments(dropped, "IPv4", "expired, evicted or oversized")
        if done is None:
            return []
        if done.overlapping:
            self.warn("IPv4 fragments overlap with different content; the first copy was kept", frame)
        payload = done.payload
        return self._transport(
            frame, ts, proto, src, dst, payload, 0, len(payload), False, 0, depth, done.frames
        )

    # --- IPv6 (RFC 8200) ---------------------------------------------------------------------

    def _ipv6(
        self, frame: int, ts: float, data: bytes, off: int, end: int, trunc: bool, depth: int
    ) -> list[SipPayload]:
        if end - off < 40:
            return self._malformed(frame, "IPv6", "header cut short")
        if data[off] >> 4 != 6:
            return self._malformed(frame, "IPv6", f"version {data[off] >> 4}")
        self._ip_id = None
        plen = data[off + 4] << 8 | data[off + 5]
        nh = data[off + 6]
        if plen == 0:
            # A jumbogram (RFC 2675) or segmentation offload: take what was captured.
            plen = end - off - 40
            if trunc:
                return self._malformed(
                    frame, "IPv6", "payload length 0 in a frame cut by the snapshot length"
                )
        ip_end = off + 40 + plen
        cut = ip_end > end
        if cut:
            ip_end = end
        src = data[off + 8 : off + 24]
        dst = data[off + 24 : off + 40]
        p = off + 40
        if nh not in (PROTO_UDP, PROTO_TCP):
            try:
                nh, p, frag = walk_ipv6_extensions(data, nh, p, ip_end)
            except MalformedHeader as exc:
                return self._malformed(frame, "IPv6", str(exc))
            if frag is not None:
                return self._fragment6(
                    frame,
                    ts,
                    src,
                    dst,
                    data,
                    frag.offset,
                    frag.more,
                    frag.ident,
                    frag.next_header,
                    frag.data_start,
                    ip_end,
                    cut,
                    depth,
                )
        missing = (off + 40 + plen) - ip_end if cut else 0
        return self._transport(frame, ts, nh, src, dst, data, p, ip_end, cut, missing, depth, EMPTY)

    def _fragment6(
        self,
        frame: int,
        ts: float,
        src: bytes,
        dst: bytes,
        data: bytes,
        offset: int,
        more: bool,
        ident: int,
        next_header: int,
        start: int,
        ip_end: int,
        cut: bool,
        depth: int,
    ) -> list[SipPayload]:
        if offset == 0 and not more:
            # RFC 6946 §4: an atomic fragment is processed in isolation.
            return self._ipv6_upper(frame, ts, next_header, src, dst, data, start, ip_end, cut, depth, EMPTY)
        if cut:
            self.warn("IPv6 fragment cut by the snapshot length; its datagram cannot be rebuilt", frame)
            self._count(detect.IP_FRAGMENT)
            return []
        # RFC 8200 §4.5: reassembled per (source, destination, identification).
        done, dropped = self._frag6.add(
            (src, dst, ident), offset, more, data[start:ip_end], frame, ts, extra=next_header
        )
        if dropped:
            self._dropped_fragments(dropped, "IPv6", "expired, evicted or oversized")
        if done is None:
            return []
        if done.overlapping:
            self.warn("IPv6 fragments overlap with different content; the first copy was kept", frame)
        payload = done.payload
        return self._ipv6_upper(
            frame, ts, done.extra, src, dst, payload, 0, len(payload), False, depth, done.frames
        )

    def _ipv6_upper(
        self,
        frame: int,
        ts: float,
        nh: int,
        src: bytes,
        dst: bytes,
        data: bytes,
        p: int,
        end: int,
        cut: bool,
        depth: int,
        frames: tuple[int, ...],
    ) -> list[SipPayload]:
        """The fragmentable part of an IPv6 packet: more extension headers, then the payload."""
        try:
            nh, p, frag = walk_ipv6_extensions(data, nh, p, end)
        except MalformedHeader as exc:
            return self._malformed(frame, "IPv6", str(exc))
        if frag is not None:
            return self._malformed(frame, "IPv6", "a fragment inside a fragment")
        return self._transport(frame, ts, nh, src, dst, data, p, end, cut, 0, depth, frames)

    # --- fragments left incomplete -----------------------------------------------------------

    def _dropped_fragments(self, dropped: list[PendingDatagram], label: str, why: str) -> None:
        for d in dropped:
            self._count(detect.IP_FRAGMENT, len(d.frames))
            if d.silent:
                continue  # a fragment of a datagram already reported
            frames = ", ".join(map(str, d.frames[:8])) + (", ..." if len(d.frames) > 8 else "")
            self.warn(
                f"incomplete {label} datagram dropped ({d.reason or why}); fragments in frames {frames}",
                d.frames[-1],
            )
