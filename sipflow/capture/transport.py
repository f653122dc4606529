"""The transport layer of the frame decoder (sans-I/O): UDP, TCP and SCTP, SIP found in each.

:class:`TransportLayer` is the mixin of :class:`~sipflow.capture.decode.Decoder` that takes an
IP payload by its protocol number to the SIP it carries:

* UDP (RFC 768): a datagram whose payload starts with a SIP start line (RFC 3261 §7.1, §18.3:
  one message a datagram) is one packet; else it may be HEP (v1/v2 and HEP3, on any port,
  :mod:`.hep`) carrying SIP, or VXLAN (RFC 7348 §5, UDP port 4789: an 8-octet header with the
  I flag, then an Ethernet frame); the rest is classified (:func:`.detect.classify_udp`:
  RTP, RTCP, STUN, DNS ...), counted and handed to the sink;
* TCP (RFC 9293 §3.1): the header is read here, the stream is :mod:`.tcp`'s to reassemble and
  frame;
* SCTP (RFC 9260 §3): the common header and the chunks, DATA chunks (§3.3.1) to
  :class:`~sipflow.capture.sctp.SctpReassembler`, SIP over SCTP being RFC 4168;
* IP in IP (RFC 2003, RFC 2473, RFC 4213) and GRE (:mod:`.tunnel`) back to the layer below,
  nested at most :data:`.layer.MAX_DEPTH` deep; IPv4 AH (RFC 4302 §2) skipped; ESP
  (RFC 4303), ICMP and ICMPv6 counted.

Fragments of a reassembled datagram other than the completing one count as ``IP fragment``
unless the datagram turns out to be SIP.
"""

from __future__ import annotations

import struct
from typing import Final

from sipflow.capture import detect, hep
from sipflow.capture.ip import format_address
from sipflow.capture.layer import EMPTY, MAX_DEPTH, Layer
from sipflow.capture.network import (
    PROTO_AH,
    PROTO_ESP,
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_IPIP,
    PROTO_IPV6,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
)
from sipflow.capture.types import Endpoint, SipPayload, Transport, make_sip_payload

_VXLAN_PORT: Final = 4789

_SCTP_CHUNK: Final = struct.Struct("!BBH").unpack_from
_SCTP_DATA: Final = struct.Struct("!IHHI").unpack_from
_TCP_HEADER: Final = struct.Struct("!HHII")


class TransportLayer(Layer):
    """UDP datagrams, TCP segments and SCTP packets, to the SIP messages they carry."""

    def _transport(
        self,
        frame: int,
        ts: float,
        proto: int,
        src: bytes,
        dst: bytes,
        data: bytes,
        p: int,
        end: int,
        cut: bool,
        missing: int,
        depth: int,
        frames: tuple[int, ...],
    ) -> list[SipPayload]:
        """Dispatch an IP payload ``data[p:end]`` by protocol number."""
        # Fragments before the completing one: not SIP unless a SIP datagram says so.
        others = len(frames) - 1 if frames else 0
        if proto == PROTO_UDP:
            if end - p < 8:
                return self._malformed(frame, "UDP", "header cut short")
            ulen = data[p + 4] << 8 | data[p + 5]
            if ulen >= 8:
                if p + ulen <= end:
                    end = p + ulen
                else:
                    cut = True
            return self._udp(frame, ts, src, dst, data, p, end, cut, depth, frames)
        if others:
            self._count(detect.IP_FRAGMENT, others)
        if proto == PROTO_TCP:
            return self._tcp_segment(frame, ts, src, dst, data, p, end, missing)
        if depth < MAX_DEPTH:
            if proto == PROTO_IPIP:  # RFC 2003
                return self._ipv4(frame, ts, data, p, end, cut, depth + 1)
            if proto == PROTO_IPV6:  # RFC 2473 / RFC 4213
                return self._ipv6(frame, ts, data, p, end, cut, depth + 1)
            if proto == PROTO_GRE:
                return self._gre(frame, ts, data, p, end, cut, depth + 1)
            if proto == PROTO_AH and len(src) == 4:
                # RFC 4302 §2: skip the Authentication Header (IPv6 AH is an extension header).
                if end - p < 8:
                    return self._malformed(frame, "AH", "header cut short")
                nxt = data[p]
                return self._transport(
                    frame,
                    ts,
                    nxt,
                    src,
                    dst,
                    data,
                    p + (data[p + 1] + 2) * 4,
                    end,
                    cut,
                    missing,
                    depth + 1,
                    EMPTY,
                )
        elif proto in (PROTO_IPIP, PROTO_IPV6, PROTO_GRE, PROTO_AH):
            return self._malformed(frame, "tunnel", f"encapsulation nested more than {MAX_DEPTH} deep")
        if proto == PROTO_ESP:
            return self._count(detect.ESP)
        if proto in (PROTO_ICMP, PROTO_ICMPV6):
            return self._count(detect.ICMP)
        if proto == PROTO_SCTP:
            return self._sctp(frame, ts, src, dst, data, p, end, cut)
        return self._count(detect.OTHER_IP)

    def _udp(
        self,
        frame: int,
        ts: float,
        src: bytes,
        dst: bytes,
        data: bytes,
        p: int,
        end: int,
        cut: bool,
        depth: int,
        frames: tuple[int, ...],
    ) -> list[SipPayload]:
        """A UDP datagram ``data[p:end]`` (header included): one packet if it carries SIP."""
        u = p + 8
        if detect.is_sip_start(data, u, end) or (cut and detect.is_partial_sip_start(data, u, end)):
            sport = data[p] << 8 | data[p + 1]
            dport = data[p + 2] << 8 | data[p + 3]
            self.stats.sip_packets += 1
            return [
                make_sip_payload(
                    frame=frame,
                    frames=frames,
                    timestamp=ts,
                    src=Endpoint(format_address(src), sport),
                    dst=Endpoint(format_address(dst), dport),
                    transport=Transport.UDP,
                    payload=data[u:end],
                    truncated=cut,
                    file=self.file,
                    ip_id=self._ip_id,
                )
            ]
        if len(frames) > 1:
            self._count(detect.IP_FRAGMENT, len(frames) - 1)
        sport = data[p] << 8 | data[p + 1]
        dport = data[p + 2] << 8 | data[p + 3]
        if hep.looks_like_hep(data, u, end):
            out = self._hep(frame, ts, data, u, end, frames, cut)
            if out is not None:
                return out
        if dport == _VXLAN_PORT and end - u >= 8 and data[u] & 0x08 and depth < MAX_DEPTH:
            # RFC 7348 §5: 8-octet VXLAN header (I flag set), then an Ethernet frame.
            return self._ethernet(frame, ts, data, u + 8, end, cut, depth + 1)
        kind = detect.classify_udp(data, u, end, sport, dport)
        if self.sink is not None:
            self.sink.datagram(kind, frame, ts, src, sport, dst, dport, data, u, end)
        return self._count(kind)

    def _hep(
        self, frame: int, ts: float, data: bytes, u: int, end: int, frames: tuple[int, ...], cut: bool
    ) -> list[SipPayload] | None:
        """A HEP message (any port): the SIP it carries, with the inner addresses and time."""
        h = hep.decode(data, u, end, cut=cut and data[u : u + 4] == hep.HEP3_MAGIC)
        if h is not None:
            pkt = hep.to_packet(h, frame=frame, frames=frames, timestamp=ts, file=self.file, truncated=cut)
            if pkt is not None:
                self.stats.sip_packets += 1
                return [pkt]
        # Only the HEP3 magic is evidence enough; a v1/v2-looking header around no SIP is left
        # to the ordinary classification.
        return self._count(detect.HEP) if data[u : u + 4] == hep.HEP3_MAGIC else None

    def _sctp(
        self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, p: int, end: int, cut: bool
    ) -> list[SipPayload]:
        """An SCTP packet (RFC 9260 §3): DATA chunks carrying SIP (RFC 4168), one message each."""
        if end - p < 12:
            return self._malformed(frame, "SCTP", "common header cut short")
        sport = data[p] << 8 | data[p + 1]
        dport = data[p + 2] << 8 | data[p + 3]
        out: list[SipPayload] = []
        q = p + 12
        while q + 4 <= end:
            ctype, cflags, clen = _SCTP_CHUNK(data, q)
            if clen < 4:
                break
            if ctype == 0 and clen >= 16 and q + clen <= end:
                # RFC 9260 §3.3.1 DATA: flags U B E, TSN, stream id, stream sequence, PPID.
                # The PPID is not checked: RFC 4168 leaves it 0, content decides (as for UDP).
                tsn, stream, _ssn, _ppid = _SCTP_DATA(data, q + 4)
                pkt = self._sctp_reassembler.data(
                    frame, ts, src, sport, dst, dport, tsn, stream, cflags, data[q + 16 : q + clen]
                )
                if pkt is not None:
                    out.append(pkt)
            q += (clen + 3) & ~3
        if not out:
            return self._count(detect.SCTP)
        self.stats.sip_packets += len(out)
        return out

    def _tcp_segment(
        self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, p: int, end: int, missing: int
    ) -> list[SipPayload]:
        # RFC 9293 §3.1 header: ports, sequence, acknowledgment, data offset, flags.
        if end - p < 20:
            return self._malformed(frame, "TCP", "header cut short")
        doff = (data[p + 12] >> 4) << 2
        if doff < 20 or p + doff > end:
            if p + doff > end and missing:
                self.stats.count_non_sip(detect.OTHER_TCP)
                return []
            return self._malformed(frame, "TCP", f"data offset {doff}")
        sport, dport, seq, ack = _TCP_HEADER.unpack_from(data, p)
        out = self._tcp.segment(
            frame, ts, src, sport, dst, dport, seq, ack, data[p + 13], data[p + doff : end], missing
        )
        if out:
            self.stats.sip_packets += len(out)
        return out
