"""Frame decoding, sans-I/O: link layer → IP → UDP/TCP/SCTP → SIP candidates.

:class:`Decoder` is fed one captured frame at a time (frame number, timestamp, link type,
bytes) and returns the SIP-bearing :class:`SipPayload` objects it yields: one per UDP datagram
whose payload starts with a SIP start line, one per SIP message framed out of a TCP stream or
carried in an SCTP user message. It never opens a file and never raises on packet content:
whatever cannot be decoded is counted in :attr:`stats` (and described in :attr:`warnings`)
and skipped.

This module holds the decoder's core: its construction, :meth:`Decoder.feed` with the fast
path for RTP, the compiled skipper, and :meth:`Decoder.finish`. Each layer is a mixin of its
own module, which lists what it decodes and the RFC sections it follows:

* :mod:`.link`: link types (Ethernet, Linux SLL/SLL2, raw IP, BSD loopback, PPP) with VLAN
  tags, LLC/SNAP, MPLS and PPPoE, and :data:`SUPPORTED_LINKTYPES`;
* :mod:`.tunnel`: GRE (RFC 2784, RFC 2890) carrying IP, Ethernet or ERSPAN type I/II/III;
* :mod:`.network`: IPv4 (RFC 791) and IPv6 (RFC 8200) with their fragments (reassembled by
  :mod:`.ip`) and extension headers;
* :mod:`.transport`: UDP with HEP and VXLAN (RFC 7348), TCP (streams in :mod:`.tcp`), SCTP
  (DATA chunks joined by :mod:`.sctp`), IP in IP (RFC 2003, RFC 2473, RFC 4213), AH skipped
  and ESP counted (encrypted);
* :mod:`.layer`: what they share (state, counting, warnings).

Speed: most frames of a VoIP capture are RTP. On Ethernet/IPv4/UDP the decoder reaches the
first payload octet with a handful of index operations and rejects RTP on that octet through
:data:`detect.TOKEN_START` before creating any object. The layers call one another as methods
of one class, so the split into modules costs no call and no indirection per frame.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from sipflow.capture import detect
from sipflow.capture.fastpath import FASTPATH
from sipflow.capture.ip import FragmentReassembler
from sipflow.capture.link import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_PPP,
    LINKTYPE_PPP_HDLC,
    LINKTYPE_RAW,
    LINKTYPE_RAW_BSD,
    LINKTYPE_RAW_OPENBSD,
    SUPPORTED_LINKTYPES,
    LinkLayer,
)
from sipflow.capture.network import NetworkLayer
from sipflow.capture.sctp import SctpReassembler
from sipflow.capture.sink import PayloadSink
from sipflow.capture.tcp import TcpReassembler
from sipflow.capture.transport import TransportLayer
from sipflow.capture.tunnel import Tunnels
from sipflow.capture.types import CaptureStats, CaptureWarning, Endpoint, SipPayload, Transport

__all__ = [
    "COMPILED",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NULL",
    "LINKTYPE_PPP",
    "LINKTYPE_PPP_HDLC",
    "LINKTYPE_RAW",
    "LINKTYPE_RAW_BSD",
    "LINKTYPE_RAW_OPENBSD",
    "SUPPORTED_LINKTYPES",
    "TLS_CONVERSATIONS",
    "Decoder",
]

_DNS_PORTS: Final = frozenset((53, 5353, 5355))

TLS_CONVERSATIONS: Final = "TLS conversations (encrypted)"
"""Key in :attr:`CaptureStats.unsupported`: TCP conversations (not frames) that opened with TLS."""

# Ethernet type, IPv4 version/IHL, total length, flags/fragment octets, protocol, UDP ports,
# first two payload octets: everything the RTP fast path needs, at fixed offsets.
_FAST_RTP: Final = struct.Struct("!12xHBxH2xBBxB10xHH4xBB").unpack_from
_RTP_KIND: Final = detect.RTP_KIND
_RTP: Final = detect.RTP
_RTCP: Final = detect.RTCP

_fast: Final = FASTPATH
COMPILED: Final = _fast is not None
"""Whether the compiled media fast path (:mod:`.fastpath`) is in use: runs of RTP/RTCP frames
on :meth:`Decoder.feed`'s fast path are counted in C (``Decoder.skipper``), and their RTP
measured there for a sink that has ``fast_streams``. Without it every frame goes through
``feed``, with the same results."""


class Decoder(LinkLayer, Tunnels, NetworkLayer, TransportLayer):
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
        self._sctp_reassembler = SctpReassembler(file=file)
        self._ip_id: int | None = None
        """Identification of the innermost IPv4 header decoded last (None after IPv6)."""
        self.sink = sink
        """Where the payloads that carry no SIP go besides being counted (:mod:`.sink`)."""
        self._maker: Any = None
        """The ``_fastpath.SipMaker`` of :meth:`skip_pcap`, made on first use."""
        self._streams: object | None = None
        """The sink's ``fast_streams``, while :attr:`skipper` is in use with a sink."""

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
        the compiled fast path is there and the sink (if any) measures its RTP with it (its
        ``fast_streams``, a ``_fastpath.StreamTable``); else None."""
        if _fast is None:
            return None
        if self.sink is None:
            self._streams = None
            return self
        streams = getattr(self.sink, "fast_streams", None)
        if streams is None:
            return None
        self._streams = streams
        return self

    def skip_pcap(
        self, buf: bytes, pos: int, big_endian: bool, header_length: int, frame: int, scale: float
    ) -> tuple[int, int, list[SipPayload]]:
        """Count (and measure) the run of fast-path media records of a pcap buffer from ``pos``,
        and make the packets of the plain SIP-over-UDP records among them (``_fastpath.SipMaker``:
        what ``feed`` would make of them)."""
        assert _fast is not None
        maker = self._maker
        if maker is None:
            maker = self._maker = _fast.SipMaker(SipPayload, Endpoint, Transport.UDP, self.file)
        pos, frames, rtp, rtcp = _fast.skip_pcap(
            buf, pos, big_endian, header_length, self._streams, frame, scale, maker
        )
        packets: list[SipPayload] = []
        if frames:
            self._count_run(frames, rtp, rtcp)
            sip = frames - rtp - rtcp
            if sip:
                packets = maker.take()
                self.stats.sip_packets += sip
        return pos, frames, packets

    def skip_pcapng(
        self, buf: bytes, pos: int, big_endian: bool, ethernet: bytes, frame: int, clocks: bytes
    ) -> tuple[int, int, int]:
        """Count (and measure) the run of fast-path media Enhanced Packet Blocks of a pcapng buffer."""
        assert _fast is not None
        pos, frames, rtp, rtcp, last = _fast.skip_pcapng(
            buf, pos, big_endian, ethernet, self._streams, frame, clocks
        )
        if frames:
            self._count_run(frames, rtp, rtcp)
        return pos, frames, last

    def _count_run(self, frames: int, rtp: int, rtcp: int) -> None:
        self.stats.frames += frames
        if rtp:
            self._count(_RTP, rtp)
        if rtcp:
            self._count(_RTCP, rtcp)

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
