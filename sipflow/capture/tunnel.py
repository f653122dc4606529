"""Tunnels of the frame decoder (sans-I/O): GRE, and the ERSPAN mirrors it carries.

:class:`Tunnels` is the mixin of :class:`~sipflow.capture.decode.Decoder` that opens a GRE
packet (IP protocol 47) and hands what it carries back to the layer of that kind:

* GRE (RFC 2784 §2.1: checksum present bit, version 0) with the key and sequence number fields
  of RFC 2890 §2; source-routed GRE (RFC 1701) and other versions (PPTP's enhanced GRE) are
  counted as unsupported;
* carrying IPv4, IPv6, transparent Ethernet bridging (0x6558, RFC 1701 §3.3) or ERSPAN: type I
  and II (0x88BE; type I without a sequence number and header, type II with an 8-octet header,
  draft-foschiano-erspan §4.1) and type III (0x22EB, a 12-octet header and an optional
  platform-specific subheader, then Ethernet or IP, §4.3).

The other tunnels are one branch each where their packet is recognised, so that they cost no
call: IP in IP (IPv4 or IPv6 in IPv4 or IPv6, RFC 2003, RFC 2473, RFC 4213) in the protocol
dispatch of :mod:`.transport`, VXLAN (RFC 7348 §5, UDP port 4789) in its UDP datagrams, and
an MPLS pseudowire (RFC 4448) in :mod:`.link`. Nesting is bounded by :data:`.layer.MAX_DEPTH`.
"""

from __future__ import annotations

from typing import Final

from sipflow.capture import detect
from sipflow.capture.layer import Layer
from sipflow.capture.link import ET_IPV4, ET_IPV6
from sipflow.capture.types import SipPayload

_ET_TEB: Final = 0x6558  # transparent Ethernet bridging (RFC 1701 §3.3)
_ET_ERSPAN_2: Final = 0x88BE
_ET_ERSPAN_3: Final = 0x22EB


class Tunnels(Layer):
    """GRE and ERSPAN headers, down to the Ethernet frame or IP packet they carry."""

    def _gre(
        self, frame: int, ts: float, data: bytes, p: int, end: int, cut: bool, depth: int
    ) -> list[SipPayload]:
        # RFC 2784 §2.1 (C bit, version 0) with RFC 2890 §2 key (K) and sequence number (S).
        if end - p < 4:
            return self._malformed(frame, "GRE", "header cut short")
        flags = data[p] << 8 | data[p + 1]
        proto = data[p + 2] << 8 | data[p + 3]
        version = flags & 7
        if version != 0:
            self.stats.count_unsupported(f"GRE version {version}")
            return []
        if flags & 0x4000:
            self.stats.count_unsupported("GRE with source routing")
            return []
        q = p + 4
        if flags & 0x8000:
            q += 4
        if flags & 0x2000:
            q += 4
        has_seq = flags & 0x1000
        if has_seq:
            q += 4
        if q > end:
            return self._malformed(frame, "GRE", "optional fields cut short")
        if proto == ET_IPV4:
            return self._ipv4(frame, ts, data, q, end, cut, depth)
        if proto == ET_IPV6:
            return self._ipv6(frame, ts, data, q, end, cut, depth)
        if proto == _ET_TEB:
            return self._ethernet(frame, ts, data, q, end, cut, depth)
        if proto == _ET_ERSPAN_2:
            if not has_seq:
                return self._ethernet(frame, ts, data, q, end, cut, depth)  # ERSPAN type I: no header
            # ERSPAN type II (draft-foschiano-erspan §4.1): 8-octet header, version 1.
            if end - q < 8 or data[q] >> 4 != 1:
                return self._malformed(frame, "ERSPAN", "type II header cut short or wrong version")
            return self._ethernet(frame, ts, data, q + 8, end, cut, depth)
        if proto == _ET_ERSPAN_3:
            # ERSPAN type III (draft-foschiano-erspan §4.3): 12 octets, version 2, then an
            # optional 8-octet platform-specific subheader (O flag); frame type 0 = Ethernet, 2 = IP.
            if end - q < 12 or data[q] >> 4 != 2:
                return self._malformed(frame, "ERSPAN", "type III header cut short or wrong version")
            frame_type = (data[q + 10] >> 2) & 0x1F
            r = q + 12 + (8 if data[q + 11] & 1 else 0)
            if frame_type == 0:
                return self._ethernet(frame, ts, data, r, end, cut, depth)
            if frame_type == 2:
                return self._raw_ip(frame, ts, data, r, end, cut, depth)
            self.stats.count_unsupported(f"ERSPAN frame type {frame_type}")
            return []
        return self._count(detect.OTHER_IP)
