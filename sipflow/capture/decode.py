"""Frame decoding, sans-I/O: link layer → IP → UDP/TCP → SIP candidates.

:class:`Decoder` is fed one captured frame at a time (frame number, timestamp, link type,
bytes) and returns the SIP-bearing :class:`SipPayload` objects it yields: one per UDP datagram
whose payload starts with a SIP start line, one per SIP message framed out of a TCP stream.
It never opens a file and never raises on packet content: whatever cannot be decoded is
counted in :attr:`stats` (and described in :attr:`warnings`) and skipped.

Supported encapsulations:

* link types: Ethernet (1) with 802.1Q / 802.1ad / QinQ tags, LLC/SNAP, MPLS and PPPoE;
  Linux cooked SLL (113) and SLL2 (276); raw IP (101; 12 and 14 as written by some
  platforms; 228 IPv4; 229 IPv6); BSD NULL (0) and OpenBSD LOOP (108) in either byte order;
  PPP (9, 50);
* tunnels: IPv4/IPv6 in IPv4/IPv6 (RFC 2003, RFC 2473, RFC 4213), GRE (RFC 2784, RFC 2890
  key and sequence fields) carrying IP, transparent Ethernet bridging (0x6558) or ERSPAN
  type I/II (0x88BE) and III (0x22EB), and VXLAN (RFC 7348, UDP 4789);
* IPv4 and IPv6 fragments (reassembled by :mod:`sipflow.capture.ip`), IPv6 extension
  headers and AH (skipped), ESP (counted: encrypted).

Speed: most frames of a VoIP capture are RTP. On Ethernet/IPv4/UDP the decoder reaches the
first payload octet with a handful of index operations and rejects RTP on that octet through
:data:`detect.TOKEN_START` before creating any object.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import struct
from types import ModuleType
from typing import Final

from sipflow.capture import detect, fallback, hep
from sipflow.capture.ip import (
    FragmentReassembler,
    MalformedHeader,
    PendingDatagram,
    format_address,
    walk_ipv6_extensions,
)
from sipflow.capture.sink import PayloadSink
from sipflow.capture.tcp import TcpReassembler
from sipflow.capture.types import (
    CaptureStats,
    CaptureWarning,
    Endpoint,
    SipPayload,
    Transport,
    make_sip_payload,
)

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
_ET_IPV4: Final = 0x0800
_ET_ARP: Final = 0x0806
_ET_RARP: Final = 0x8035
_ET_IPV6: Final = 0x86DD
_ET_VLAN_TAGS: Final = frozenset((0x8100, 0x88A8, 0x9100, 0x9200, 0x9300))  # 802.1Q, 802.1ad, legacy QinQ
_ET_MPLS: Final = frozenset((0x8847, 0x8848))
_ET_PPPOE_SESSION: Final = 0x8864
_ET_TEB: Final = 0x6558  # transparent Ethernet bridging (RFC 1701 §3.3)
_ET_ERSPAN_2: Final = 0x88BE
_ET_ERSPAN_3: Final = 0x22EB

# BSD loopback address families (DLT_NULL / DLT_LOOP): AF_INET everywhere, AF_INET6 per OS.
_AF_INET: Final = 2
_AF_INET6: Final = frozenset((24, 28, 30))  # NetBSD/OpenBSD, FreeBSD, Darwin

_PROTO_ICMP: Final = 1
_PROTO_IPIP: Final = 4
_PROTO_TCP: Final = 6
_PROTO_UDP: Final = 17
_PROTO_IPV6: Final = 41
_PROTO_GRE: Final = 47
_PROTO_ESP: Final = 50
_PROTO_AH: Final = 51
_PROTO_ICMPV6: Final = 58
_PROTO_SCTP: Final = 132

_VXLAN_PORT: Final = 4789
_DNS_PORTS: Final = frozenset((53, 5353, 5355))

_SCTP_CHUNK: Final = struct.Struct("!BBH").unpack_from
_SCTP_DATA: Final = struct.Struct("!IHHI").unpack_from
_SCTP_MAX_PENDING: Final = 1024
"""Fragmented SCTP messages waiting for their last fragment (oldest dropped beyond this)."""

TLS_CONVERSATIONS: Final = "TLS conversations (encrypted)"
"""Key in :attr:`CaptureStats.unsupported`: TCP conversations (not frames) that opened with TLS."""

_MAX_DEPTH: Final = 8
"""Tunnels nested deeper than this are not followed (a loop in a crafted packet)."""

_TCP_HEADER: Final = struct.Struct("!HHII")
# Ethernet type, IPv4 version/IHL, total length, flags/fragment octets, protocol, UDP ports,
# first two payload octets: everything the RTP fast path needs, at fixed offsets.
_FAST_RTP: Final = struct.Struct("!12xHBxH2xBBxB10xHH4xBB").unpack_from
_RTP_KIND: Final = detect.RTP_KIND
_RTP: Final = detect.RTP
_RTCP: Final = detect.RTCP
_EMPTY: Final[tuple[int, ...]] = ()

_fast: ModuleType | None = None
if not os.environ.get("SIPFLOW_PURE_PYTHON"):
    with contextlib.suppress(ImportError):  # built where a C compiler was at hand at install
        _fast = importlib.import_module("sipflow.capture._fastpath")
COMPILED: Final = _fast is not None
"""Whether the compiled media fast path (``sipflow/capture/_fastpath.c``) is in use: runs of
RTP/RTCP frames on :meth:`Decoder.feed`'s fast path are counted in C (``Decoder.skipper``).
Without it every frame goes through ``feed``, with the same results."""


class Decoder:
    """Turns captured frames into SIP-bearing packets; the sans-I/O core of the capture layer.

    Feed frames in capture order with :meth:`feed`, then call :meth:`finish` once at the end of
    the capture to flush TCP streams and pending fragments. ``stats`` and ``warnings`` fill in
    as frames are fed.
    """

    def __init__(
        self,
        *,
        file: str = "",
        stats: CaptureStats | None = None,
        warnings: list[CaptureWarning] | None = None,
        max_warnings: int = 1000,
        fragment_timeout: float = 30.0,
        tcp: TcpReassembler | None = None,
        sink: PayloadSink | None = None,
    ) -> None:
        self.file = file
        """Name of the capture, copied into every packet and warning."""
        self.stats = stats if stats is not None else CaptureStats()
        self.warnings: list[CaptureWarning] = warnings if warnings is not None else []
        self.max_warnings = max_warnings
        """Warnings kept; later ones are only counted in a final summary warning."""
        self._suppressed = 0
        self._unknown_linktypes: set[int] = set()
        self._frag4 = FragmentReassembler(timeout=fragment_timeout)
        self._frag6 = FragmentReassembler(timeout=fragment_timeout)
        self._tcp = (
            tcp if tcp is not None else TcpReassembler(stats=self.stats, warn=self.warn, file=file, sink=sink)
        )
        self._finished = False
        self._sctp_pending: dict[tuple[bytes, int, bytes, int, int], tuple[int, list[bytes], list[int]]] = {}
        self._ip_id: int | None = None
        """Identification of the innermost IPv4 header decoded last (None after IPv6)."""
        self.sink = sink
        """Where the payloads that carry no SIP go besides being counted (:mod:`.sink`)."""

    # --- public ------------------------------------------------------------------------------

    def feed(
        self,
        frame: int,
        timestamp: float,
        linktype: int,
        data: bytes,
        orig_len: int,
        start: int = 0,
        end: int | None = None,
    ) -> list[SipPayload]:
        """Decode one frame; return the SIP packets it completes (usually none).

        ``data[start:end]`` is the captured frame (``start``/``end`` let a reader pass a record
        inside a larger buffer without copying it); ``orig_len`` is its length on the wire.
        """
        if end is None:
            end = len(data)
        stats = self.stats
        stats.frames += 1
        try:
            if linktype == 1:
                # IEEE 802.3 Ethernet II, the common case. Fast path first: Ethernet + IPv4
                # without options or fragmentation + UDP between unprivileged ports + a
                # payload that starts like RTP/RTCP is counted with one struct call.
                if end - start >= 54:
                    et, vihl, total, flags, frag, proto, sport, dport, b0, b1 = _FAST_RTP(data, start)
                    if (
                        0x80 <= b0 < 0xC0
                        and et == 0x0800
                        and vihl == 0x45
                        and proto == 17
                        and total >= 40
                        and not (flags & 0x3F or frag)
                        and sport >= 1024
                        and dport >= 1024
                        and sport not in _DNS_PORTS
                        and dport not in _DNS_PORTS
                    ):
                        kind = _RTP_KIND[b1]
                        if kind is not None:
                            c = stats.non_sip
                            c[kind] = c.get(kind, 0) + 1
                            if self.sink is not None:
                                self._fast_datagram(kind, frame, timestamp, data, start, end, sport, dport)
                            return []
                elif end - start < 14:
                    return self._malformed(frame, "Ethernet", "frame shorter than an Ethernet header")
                et = data[start + 12] << 8 | data[start + 13]
                if et == 0x0800:
                    return self._ipv4(frame, timestamp, data, start + 14, end, orig_len > end - start, 0)
                return self._ethernet(frame, timestamp, data, start, end, orig_len > end - start, 0)
            return self._link(frame, timestamp, linktype, data, start, end, orig_len > end - start)
        except (IndexError, ValueError, struct.error) as exc:  # a bug guard: never end the run
            return self._malformed(frame, "frame", f"undecodable frame ({type(exc).__name__}: {exc})")

    @property
    def skipper(self) -> Decoder | None:
        """This decoder as a :class:`~sipflow.capture.records.Skipper` for the record walk, when
        the compiled fast path is there and no sink wants the payloads; else None."""
        return self if _fast is not None and self.sink is None else None

    def skip_pcap(self, buf: bytes, pos: int, big_endian: bool, header_length: int) -> tuple[int, int]:
        """Count the run of fast-path media records of a pcap buffer from ``pos``."""
        assert _fast is not None
        pos, frames, rtp, rtcp = _fast.skip_pcap(buf, pos, big_endian, header_length)
        if frames:
            self._count_run(frames, rtp, rtcp)
        return pos, frames

    def skip_pcapng(self, buf: bytes, pos: int, big_endian: bool, ethernet: bytes) -> tuple[int, int, int]:
        """Count the run of fast-path media Enhanced Packet Blocks of a pcapng buffer."""
        assert _fast is not None
        pos, frames, rtp, rtcp, last = _fast.skip_pcapng(buf, pos, big_endian, ethernet)
        if frames:
            self._count_run(frames, rtp, rtcp)
        return pos, frames, last

    def _count_run(self, frames: int, rtp: int, rtcp: int) -> None:
        stats = self.stats
        stats.frames += frames
        c = stats.non_sip
        if rtp:
            c[_RTP] = c.get(_RTP, 0) + rtp
        if rtcp:
            c[_RTCP] = c.get(_RTCP, 0) + rtcp

    def _fast_datagram(
        self, kind: str, frame: int, ts: float, data: bytes, start: int, end: int, sport: int, dport: int
    ) -> None:
        """The sink's share of the fast path: Ethernet, a 20-octet IPv4 header, then UDP."""
        assert self.sink is not None
        p = start + 34
        ip_end = start + 14 + (data[start + 16] << 8 | data[start + 17])
        ulen = data[p + 4] << 8 | data[p + 5]
        if ulen >= 8 and p + ulen <= ip_end:
            ip_end = p + ulen
        self.sink.datagram(
            kind, frame, ts, data[start + 26 : start + 30], sport, data[start + 30 : p], dport, data, p + 8,
            min(ip_end, end),
        )  # fmt: skip

    def finish(self) -> list[SipPayload]:
        """End of capture: flush TCP streams (incomplete messages flagged truncated) and fragments."""
        if self._finished:
            return []
        self._finished = True
        out = self._tcp.finish()
        self.stats.sip_packets += len(out)
        for reassembler, label in ((self._frag4, "IPv4"), (self._frag6, "IPv6")):
            self._dropped_fragments(reassembler.drain(), label, "the capture ended first")
        tls = len(self._tcp.tls_conversations)
        if tls:
            # Encrypted SIP is never guessed at; tshark decrypts it given the session keys.
            self.stats.count_unsupported(TLS_CONVERSATIONS, tls)
            name = self.file or "FILE"
            self.warn(
                f"{tls} TLS conversation{'s' if tls != 1 else ''} not decoded (encrypted); with a key log "
                f"file, tshark can decrypt them: tshark -o tls.keylog_file:KEYS -r {name} -Y sip"
            )
        if self._suppressed:
            self.warnings.append(
                CaptureWarning(file=self.file, message=f"{self._suppressed} more warnings not shown")
            )
            self._suppressed = 0
        return out

    def warn(self, message: str, frame: int | None = None) -> None:
        """Record a warning (at most ``max_warnings``; the rest are counted)."""
        if len(self.warnings) < self.max_warnings:
            self.warnings.append(CaptureWarning(file=self.file, message=message, frame=frame))
        else:
            self._suppressed += 1

    # --- helpers -----------------------------------------------------------------------------

    def _malformed(self, frame: int, layer: str, why: str) -> list[SipPayload]:
        self.stats.count_unsupported(f"malformed {layer}")
        self.warn(f"malformed {layer}: {why}; skipped", frame)
        return []

    def _count(self, kind: str, n: int = 1) -> list[SipPayload]:
        c = self.stats.non_sip
        c[kind] = c.get(kind, 0) + n
        return []

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

    # --- link layer --------------------------------------------------------------------------

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
        if et == _ET_IPV4:
            return self._ipv4(frame, ts, data, off, end, trunc, depth)
        if et == _ET_IPV6:
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
        if version == 0 and depth < _MAX_DEPTH:
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
                _EMPTY,
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
            _EMPTY,
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
            frame, ts, data[off + 9], src, dst, data, off + ihl, end, True, 0, depth, _EMPTY
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
        if nh not in (_PROTO_UDP, _PROTO_TCP):
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
        return self._transport(frame, ts, nh, src, dst, data, p, ip_end, cut, missing, depth, _EMPTY)

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
            return self._ipv6_upper(frame, ts, next_header, src, dst, data, start, ip_end, cut, depth, _EMPTY)
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

    # --- transport ---------------------------------------------------------------------------

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
        if proto == _PROTO_UDP:
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
        if proto == _PROTO_TCP:
            return self._tcp_segment(frame, ts, src, dst, data, p, end, missing)
        if depth < _MAX_DEPTH:
            if proto == _PROTO_IPIP:  # RFC 2003
                return self._ipv4(frame, ts, data, p, end, cut, depth + 1)
            if proto == _PROTO_IPV6:  # RFC 2473 / RFC 4213
                return self._ipv6(frame, ts, data, p, end, cut, depth + 1)
            if proto == _PROTO_GRE:
                return self._gre(frame, ts, data, p, end, cut, depth + 1)
            if proto == _PROTO_AH and len(src) == 4:
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
                    _EMPTY,
                )
        elif proto in (_PROTO_IPIP, _PROTO_IPV6, _PROTO_GRE, _PROTO_AH):
            return self._malformed(frame, "tunnel", f"encapsulation nested more than {_MAX_DEPTH} deep")
        if proto == _PROTO_ESP:
            return self._count(detect.ESP)
        if proto in (_PROTO_ICMP, _PROTO_ICMPV6):
            return self._count(detect.ICMP)
        if proto == _PROTO_SCTP:
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
        if dport == _VXLAN_PORT and end - u >= 8 and data[u] & 0x08 and depth < _MAX_DEPTH:
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
                pkt = self._sctp_data(
                    frame, ts, src, sport, dst, dport, tsn, stream, cflags, data[q + 16 : q + clen]
                )
                if pkt is not None:
                    out.append(pkt)
            q += (clen + 3) & ~3
        if not out:
            return self._count(detect.SCTP)
        self.stats.sip_packets += len(out)
        return out

    def _sctp_data(
        self,
        frame: int,
        ts: float,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        tsn: int,
        stream: int,
        flags: int,
        chunk: bytes,
    ) -> SipPayload | None:
        """One DATA chunk; fragments (B/E flags, RFC 9260 §6.9) are joined in TSN order."""
        key = (src, sport, dst, dport, stream)
        begin, last = flags & 0x02, flags & 0x01
        frames: tuple[int, ...]
        if begin and last:
            payload, frames = chunk, (frame,)
        else:
            pending = self._sctp_pending
            if begin:
                if len(pending) >= _SCTP_MAX_PENDING:
                    pending.pop(next(iter(pending)))
                pending[key] = (tsn, [chunk], [frame])
                return None
            got = pending.get(key)
            if got is None or (got[0] + 1) & 0xFFFFFFFF != tsn:
                pending.pop(key, None)
                return None
            got[1].append(chunk)
            got[2].append(frame)
            if not last:
                pending[key] = (tsn, got[1], got[2])
                return None
            del pending[key]
            payload, frames = b"".join(got[1]), tuple(sorted(set(got[2])))
        if not detect.is_sip_start(payload):
            return None
        return make_sip_payload(
            frame=frame,
            frames=frames,
            timestamp=ts,
            src=Endpoint(format_address(src), sport),
            dst=Endpoint(format_address(dst), dport),
            transport=Transport.SCTP,
            payload=payload,
            file=self.file,
        )

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

    # --- tunnels -----------------------------------------------------------------------------

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
        if proto == _ET_IPV4:
            return self._ipv4(frame, ts, data, q, end, cut, depth)
        if proto == _ET_IPV6:
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
