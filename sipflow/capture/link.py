"""The link layer of the frame decoder (sans-I/O): link types, Ethernet, VLAN tags, MPLS, PPP.

:class:`LinkLayer` is the mixin of :class:`~sipflow.capture.decode.Decoder` that takes a frame
by its link-layer header type (https://www.tcpdump.org/linktypes.html) down to its IP packet:

* Ethernet (1): Ethernet II (IEEE 802.3 EtherType), IEEE 802.1Q / 802.1ad tags, any number of
  them (QinQ, and the legacy 0x9100-0x9300 tags), IEEE 802.2 LLC with a SNAP header, MPLS
  label stacks (RFC 3032 §2.1) with IP or a pseudowire control word and Ethernet (RFC 4385 §3,
  RFC 4448), PPPoE sessions (RFC 2516 §4);
* Linux cooked SLL (113) and SLL2 (276);
* raw IP (101; 12 and 14 as written by some platforms; 228 IPv4; 229 IPv6);
* BSD NULL (0) and OpenBSD LOOP (108), their address family in either byte order;
* PPP (9) and PPP in HDLC-like framing (50): RFC 1662 §3.1 address and control, RFC 1661 §6.5
  protocol field, compressed or not.

Other link types go to :mod:`.fallback` (scapy, when installed) or are counted as unsupported,
with one warning per link type. The decoder's fast path for Ethernet and IPv4 is inline in
:meth:`Decoder.feed <sipflow.capture.decode.Decoder.feed>`.
"""

from __future__ import annotations

from typing import Final

from sipflow.capture import detect, fallback
from sipflow.capture.layer import MAX_DEPTH, Layer
from sipflow.capture.types import SipPayload

# Link-layer header types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_PPP: Final = 9
LINKTYPE_RAW_BSD: Final = 12
LINKTYPE_RAW_OPENBSD: Final = 14
LINKTYPE_PPP_HDLC: Final = 50
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276

SUPPORTED_LINKTYPES: Final = frozenset(
    (
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_PPP,
        LINKTYPE_RAW_BSD,
        LINKTYPE_RAW_OPENBSD,
        LINKTYPE_PPP_HDLC,
        LINKTYPE_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    )
)

# EtherTypes (IEEE 802 numbers).
ET_IPV4: Final = 0x0800
ET_IPV6: Final = 0x86DD
_ET_ARP: Final = 0x0806
_ET_RARP: Final = 0x8035
_ET_VLAN_TAGS: Final = frozenset((0x8100, 0x88A8, 0x9100, 0x9200, 0x9300))  # 802.1Q, 802.1ad, legacy QinQ
_ET_MPLS: Final = frozenset((0x8847, 0x8848))
_ET_PPPOE_SESSION: Final = 0x8864

# BSD loopback address families (DLT_NULL / DLT_LOOP): AF_INET everywhere, AF_INET6 per OS.
_AF_INET: Final = 2
_AF_INET6: Final = frozenset((24, 28, 30))  # NetBSD/OpenBSD, FreeBSD, Darwin


class LinkLayer(Layer):
    """Link-layer headers down to the IP packet they carry."""

    def _link(
        self, frame: int, ts: float, linktype: int, data: bytes, off: int, end: int, trunc: bool
    ) -> list[SipPayload]:
        if linktype == LINKTYPE_LINUX_SLL:
            # https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html: protocol at octet 14.
            if end - off < 16:
                return self._malformed(frame, "Linux SLL", "frame shorter than its header")
            et = data[off + 14] << 8 | data[off + 15]
            return self._ethertype(frame, ts, et, data, off + 16, end, trunc, 0)
        if linktype == LINKTYPE_LINUX_SLL2:
            # https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html: protocol at octet 0.
            if end - off < 20:
                return self._malformed(frame, "Linux SLL2", "frame shorter than its header")
            et = data[off] << 8 | data[off + 1]
            return self._ethertype(frame, ts, et, data, off + 20, end, trunc, 0)
        if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_BSD, LINKTYPE_RAW_OPENBSD):
            return self._raw_ip(frame, ts, data, off, end, trunc, 0)
        if linktype == LINKTYPE_IPV4:
            return self._ipv4(frame, ts, data, off, end, trunc, 0)
        if linktype == LINKTYPE_IPV6:
            return self._ipv6(frame, ts, data, off, end, trunc, 0)
        if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            # 4-octet address family, host byte order of the capturing machine (NULL) or
            # network order (LOOP); the value is small, so the non-zero end tells the order.
            if end - off < 4:
                return self._malformed(frame, "loopback", "frame shorter than its header")
            af = data[off] or data[off + 3]
            if af == _AF_INET:
                return self._ipv4(frame, ts, data, off + 4, end, trunc, 0)
            if af in _AF_INET6:
                return self._ipv6(frame, ts, data, off + 4, end, trunc, 0)
            return self._count(detect.OTHER)
        if linktype == LINKTYPE_ETHERNET:
            return self._ethernet(frame, ts, data, off, end, trunc, 0)
        if linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
            return self._ppp(frame, ts, data, off, end, trunc, 0)
        if linktype not in self._unknown_linktypes and fallback.can_dissect(linktype):
            ip = fallback.ip_packet(linktype, bytes(data[off:end]))
            if ip is None:
                return self._count(detect.OTHER)
            return self._raw_ip(frame, ts, ip, 0, len(ip), trunc, 0)
        reason = f"link type {linktype}"
        self.stats.count_unsupported(reason)
        if linktype not in self._unknown_linktypes:
            self._unknown_linktypes.add(linktype)
            self.warn(f"unsupported {reason}: its frames are counted and skipped", frame)
        return []

    def _ethernet(
        self, frame: int, ts: float, data: bytes, off: int, end: int, trunc: bool, depth: int
    ) -> list[SipPayload]:
        if end - off < 14:
            return self._malformed(frame, "Ethernet", "frame shorter than an Ethernet header")
        et = data[off + 12] << 8 | data[off + 13]
        return self._ethertype(frame, ts, et, data, off + 14, end, trunc, depth)

    def _ethertype(
        self, frame: int, ts: float, et: int, data: bytes, off: int, end: int, trunc: bool, depth: int
    ) -> list[SipPayload]:
        # IEEE 802.1Q / 802.1ad tags, any number of them (QinQ).
        while et in _ET_VLAN_TAGS:
            if end - off < 4:
                return self._malformed(frame, "VLAN tag", "tag cut short")
            et = data[off + 2] << 8 | data[off + 3]
            off += 4
        if et == ET_IPV4:
            return self._ipv4(frame, ts, data, off, end, trunc, depth)
        if et == ET_IPV6:
            return self._ipv6(frame, ts, data, off, end, trunc, depth)
        if et in (_ET_ARP, _ET_RARP):
            return self._count(detect.ARP)
        if et < 0x0600:
            # IEEE 802.3 length field: LLC, possibly with a SNAP header carrying an EtherType.
            if end - off >= 8 and data[off] == 0xAA and data[off + 1] == 0xAA and data[off + 2] == 0x03:
                return self._ethertype(
                    frame, ts, data[off + 6] << 8 | data[off + 7], data, off + 8, end, trunc, depth
                )
            return self._count(detect.OTHER)
        if et in _ET_MPLS:
            return self._mpls(frame, ts, data, off, end, trunc, depth)
        if et == _ET_PPPOE_SESSION:
            # RFC 2516 §4: 6-octet PPPoE header, then the PPP protocol field.
            if end - off < 8:
                return self._malformed(frame, "PPPoE", "header cut short")
            return self._ppp_proto(frame, ts, data, off + 6, end, trunc, depth)
        return self._count(detect.OTHER)

    def _mpls(
        self, frame: int, ts: float, data: bytes, off: int, end: int, trunc: bool, depth: int
    ) -> list[SipPayload]:
        # RFC 3032 §2.1: label stack entries until the bottom-of-stack bit.
        while True:
            if end - off < 4:
                return self._malformed(frame, "MPLS", "label stack cut short")
            bottom = data[off + 2] & 1
            off += 4
            if bottom:
                break
        if off >= end:
            return self._count(detect.OTHER)
        version = data[off] >> 4
        if version == 4:
            return self._ipv4(frame, ts, data, off, end, trunc, depth)
        if version == 6:
            return self._ipv6(frame, ts, data, off, end, trunc, depth)
        if version == 0 and depth < MAX_DEPTH:
            # RFC 4385 §3 pseudowire control word, then an Ethernet frame (RFC 4448).
            return self._ethernet(frame, ts, data, off + 4, end, trunc, depth + 1)
        return self._count(detect.OTHER)

    def _ppp(
        self, frame: int, ts: float, data: bytes, off: int, end: int, trunc: bool, depth: int
    ) -> list[SipPayload]:
        # RFC 1662 §3.1: optional address 0xFF and control 0x03.
        if end - off >= 2 and data[off] == 0xFF and data[off + 1] == 0x03:
            off += 2
        return self._ppp_proto(frame, ts, data, off, end, trunc, depth)

    def _ppp_proto(
        self, frame: int, ts: float, data: bytes, off: int, end: int, trunc: bool, depth: int
    ) -> list[SipPayload]:
        if end - off < 1:
            return self._malformed(frame, "PPP", "protocol field missing")
        # RFC 1661 §6.5: a compressed protocol field is one odd octet.
        if data[off] & 1:
            proto = data[off]
            off += 1
        else:
            if end - off < 2:
                return self._malformed(frame, "PPP", "protocol field cut short")
            proto = data[off] << 8 | data[off + 1]
            off += 2
        if proto == 0x21:
            return self._ipv4(frame, ts, data, off, end, trunc, depth)
        if proto == 0x57:
            return self._ipv6(frame, ts, data, off, end, trunc, depth)
        return self._count(detect.OTHER)

    def _raw_ip(
        self, frame: int, ts: float, data: bytes, off: int, end: int, trunc: bool, depth: int
    ) -> list[SipPayload]:
        if off >= end:
            return self._malformed(frame, "IP", "empty packet")
        version = data[off] >> 4
        if version == 4:
            return self._ipv4(frame, ts, data, off, end, trunc, depth)
        if version == 6:
            return self._ipv6(frame, ts, data, off, end, trunc, depth)
        return self._malformed(frame, "IP", f"IP version {version}")
