"""Generate a large, deterministic SIP + RTP capture for benchmarking sipflow.

The output is a classic pcap file (Ethernet / IPv4 / UDP or TCP, microsecond timestamps) holding many
concurrent, realistic SIP calls with SDP offers and answers, plus RTP (PCMU) between the negotiated
media addresses. Records are written with ``struct`` only, so a million packets take seconds.

Scenario mix (exact quotas of ``--calls``, shuffled with the seed):

* 70 % answered: INVITE, 100, 180, 200, ACK, (RTP both ways), BYE (either side), 200
* 10 % challenged: INVITE, 407, ACK, INVITE (with Proxy-Authorization), then as answered
* 8 % cancelled: INVITE, 100, 180, CANCEL, 200 (CANCEL), 487, ACK
* 6 % busy: INVITE, 100, 180, 486, ACK
* 4 % registrations: REGISTER, 401, REGISTER (with Authorization), 200
* 2 % keep-alives: OPTIONS (registrar to phone), 200

A share of initial UDP INVITEs (``--retransmit-fraction``) is retransmitted once after T1 (500 ms)
before the 100 Trying arrives. ``--tcp-fraction`` puts a share of the scenarios on TCP: one
connection per scenario (SYN, SYN/ACK, ACK, one SIP message per segment with exact sequence
numbers, FIN exchange at the end). With the defaults the file holds about 100,000 SIP messages.

Example::

    python benchmarks/generate.py --calls 14300 --rtp-per-call 50 -o /tmp/big.pcap --verify
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import struct
import subprocess
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SEED = 20240601
DEFAULT_CALLS = 14_300
DEFAULT_RTP_PER_CALL = 50
DEFAULT_OUTPUT = Path("benchmarks/out/bench.pcap")
EPOCH_START = 1_700_000_000  # 2023-11-14 22:13:20 UTC: a fixed start keeps the file byte-identical

# Share of each scenario kind; answered takes whatever rounding leaves.
MIX: dict[str, float] = {
    "answered": 0.70,
    "challenged": 0.10,
    "cancelled": 0.08,
    "busy": 0.06,
    "register": 0.04,
    "options": 0.02,
}
INVITE_KINDS = ("answered", "challenged", "cancelled", "busy")

PCAP_HEADER = struct.Struct("<IHHiIII")
REC_HDR = struct.Struct("<IIII")
IP_HDR = struct.Struct("!BBHHHBBH4s4s")
UDP_HDR = struct.Struct("!HHHH")
TCP_HDR = struct.Struct("!HHIIBBHHH")
RTP_HDR = struct.Struct("!BBHII")
PSEUDO_HDR = struct.Struct("!4s4sBBH")
NATIVE_U16 = struct.Struct("=H")

ETH_LEN, IP_LEN, UDP_LEN, TCP_LEN = 14, 20, 8, 20
RTP_PAYLOAD_LEN = 160  # 20 ms of G.711 at 8 kHz
RTP_PACKET_LEN = 12 + RTP_PAYLOAD_LEN  # the 172-byte UDP payload
RTP_PTIME_US = 20_000
T1_US = 500_000

TCP_FIN, TCP_SYN, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x08, 0x10

USER_AGENTS = (
    "Yealink SIP-T46S 66.86.0.15",
    "Grandstream GXP2170 1.0.11.23",
    "Linphone/5.2.0 (belle-sip/5.2.0)",
    "Zoiper rv2.10.19.5",
    "Cisco-CP8845/14.1.1",
    "PolycomVVX-VVX_411-UA/6.4.3.5018",
    "MicroSIP/3.21.3",
    "Asterisk PBX 20.5.0",
)
REGISTRAR_AGENT = "Kamailio (5.7.2 (x86_64/linux))"
DOMAIN = "voip.example.com"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO, UPDATE"


def _checksum(data: bytes) -> int:
    """RFC 1071 one's-complement checksum, computed on native-order words (byte-order independent)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(array("H", data))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _fold(total: int) -> int:
    """Fold a 32-bit sum of big-endian words into the complemented 16-bit Internet checksum."""
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True, slots=True)
class Host:
    """A SIP endpoint: address, MAC, listening port, extension and software."""

    ip: bytes
    """IPv4 address, 4 bytes."""
    addr: str
    """IPv4 address as text."""
    mac: bytes
    port: int
    """SIP listening port (UDP and TCP)."""
    user: str
    agent: str


@dataclass(slots=True)
class Stats:
    """What the generator wrote, counted the way ``tshark -z sip,stat`` counts."""

    frames: int = 0
    bytes: int = 0
    sip_messages: int = 0
    resent: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)
    rtp_packets: int = 0
    tcp_control: int = 0
    scenarios: Counter[str] = field(default_factory=Counter)
    tcp_scenarios: int = 0
    call_ids: int = 0
    hosts: int = 0
    peak_concurrent: int = 0
    """Most scenarios in progress at one instant (first to last packet, RTP included)."""
    span_s: float = 0.0
    """Seconds from the first to the last packet."""

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "frames": self.frames,
            "bytes": self.bytes,
            "sip_messages": self.sip_messages,
            "resent": self.resent,
            "requests": dict(sorted(self.requests.items())),
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "rtp_packets": self.rtp_packets,
            "tcp_control_segments": self.tcp_control,
            "scenarios": dict(sorted(self.scenarios.items())),
            "tcp_scenarios": self.tcp_scenarios,
            "call_ids": self.call_ids,
            "hosts": self.hosts,
            "peak_concurrent": self.peak_concurrent,
            "span_s": round(self.span_s, 3),
        }


class Capture:
    """Collects frames as pcap records keyed by timestamp; ``write`` emits them in time order."""

    def __init__(self, rng: random.Random, *, udp_checksums: bool) -> None:
        self.rng = rng
        self.udp_checksums = udp_checksums
        self.records: list[tuple[int, int, bytes]] = []
        self.stats = Stats()
        self._ip_ids: dict[bytes, int] = {}
        self._ip_base: dict[tuple[bytes, bytes, int], int] = {}

    # -- layers ---------------------------------------------------------------------------------
    def _ip_id(self, src: bytes) -> int:
        ident = self._ip_ids.get(src)
        if ident is None:
            ident = self.rng.randrange(0x10000)
        self._ip_ids[src] = (ident + 1) & 0xFFFF
        return ident

    def _ipv4(self, src: bytes, dst: bytes, proto: int, payload_len: int) -> bytes:
        """An IPv4 header (DF set, TTL 64) with a valid header checksum."""
        key = (src, dst, proto)
        base = self._ip_base.get(key)
        if base is None:
            words = IP_HDR.pack(0x45, 0, 0, 0, 0x4000, 64, proto, 0, src, dst)
            base = sum(struct.unpack("!10H", words))
            self._ip_base[key] = base
        total = IP_LEN + payload_len
        ident = self._ip_id(src)
        csum = _fold(base + total + ident)
        return IP_HDR.pack(0x45, 0, total, ident, 0x4000, 64, proto, csum, src, dst)

    def add(self, ts_us: int, frame: bytes) -> None:
        """Queue one Ethernet frame captured at ``ts_us`` (microseconds since the epoch)."""
        n = len(frame)
        self.records.append(
            (ts_us, len(self.records), REC_HDR.pack(ts_us // 1_000_000, ts_us % 1_000_000, n, n) + frame)
        )

    def udp(self, ts_us: int, src: Host, dst: Host, *, sport: int, dport: int, payload: bytes) -> None:
        """Queue one UDP datagram."""
        ulen = UDP_LEN + len(payload)
        csum = 0
        if self.udp_checksums:
            pseudo = PSEUDO_HDR.pack(src.ip, dst.ip, 0, 17, ulen)
            csum = _checksum(pseudo + UDP_HDR.pack(sport, dport, ulen, 0) + payload) or 0xFFFF
            udp = UDP_HDR.pack(sport, dport, ulen, 0)[:6] + NATIVE_U16.pack(csum)
        else:
            udp = UDP_HDR.pack(sport, dport, ulen, 0)
        eth = dst.mac + src.mac + b"\x08\x00"
        self.add(ts_us, eth + self._ipv4(src.ip, dst.ip, 17, ulen) + udp + payload)

    def tcp(
        self,
        ts_us: int,
        src: Host,
        dst: Host,
        *,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes = b"",
    ) -> None:
        """Queue one TCP segment (no options, window 64240) with a valid TCP checksum."""
        tlen = TCP_LEN + len(payload)
        hdr = TCP_HDR.pack(sport, dport, seq, ack, (TCP_LEN // 4) << 4, flags, 64240, 0, 0)
        pseudo = PSEUDO_HDR.pack(src.ip, dst.ip, 0, 6, tlen)
        csum = _checksum(pseudo + hdr + payload)
        hdr = hdr[:16] + NATIVE_U16.pack(csum) + hdr[18:]
        eth = dst.mac + src.mac + b"\x08\x00"
        self.add(ts_us, eth + self._ipv4(src.ip, dst.ip, 6, tlen) + hdr + payload)
        if not payload:
            self.stats.tcp_control += 1

    def rtp(self, t0_us: int, src: Host, dst: Host, *, sport: int, dport: int, count: int) -> None:
        """Queue ``count`` PCMU packets every 20 ms (±1 ms jitter) from ``src:sport`` to ``dst:dport``."""
        rng = self.rng
        payloads = _PAYLOADS
        eth = dst.mac + src.mac + b"\x08\x00"
        ulen = UDP_LEN + RTP_PACKET_LEN
        frame_len = ETH_LEN + IP_LEN + ulen
        ssrc = rng.getrandbits(32)
        seq = rng.randrange(0x10000)
        stamp = rng.getrandbits(32)
        records = self.records
        rec_pack = REC_HDR.pack
        rtp_pack = RTP_HDR.pack
        udp_plain = UDP_HDR.pack(sport, dport, ulen, 0)
        for i in range(count):
            ts = t0_us + i * RTP_PTIME_US + rng.randrange(-1000, 1000) if i else t0_us
            payload = (
                rtp_pack(
                    0x80,
                    0x80 if i == 0 else 0x00,
                    (seq + i) & 0xFFFF,
                    (stamp + i * RTP_PAYLOAD_LEN) & 0xFFFFFFFF,
                    ssrc,
                )
                + payloads[i & 7]
            )
            if self.udp_checksums:
                pseudo = PSEUDO_HDR.pack(src.ip, dst.ip, 0, 17, ulen)
                csum = _checksum(pseudo + udp_plain + payload) or 0xFFFF
                udp = udp_plain[:6] + NATIVE_U16.pack(csum)
            else:
                udp = udp_plain
            ip = self._ipv4(src.ip, dst.ip, 17, ulen)
            records.append(
                (
                    ts,
                    len(records),
                    rec_pack(ts // 1_000_000, ts % 1_000_000, frame_len, frame_len)
                    + eth
                    + ip
                    + udp
                    + payload,
                )
            )
        self.stats.rtp_packets += count

    # -- output ---------------------------------------------------------------------------------
    def write(self, path: Path) -> None:
        """Sort the queued records by time (stable on ties) and write the pcap file."""
        self.records.sort()
        with path.open("wb") as out:
            out.write(PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            written = PCAP_HEADER.size
            chunk = 65536
            recs = self.records
            for i in range(0, len(recs), chunk):
                blob = b"".join(r[2] for r in recs[i : i + chunk])
                out.write(blob)
                written += len(blob)
        self.stats.frames = len(self.records)
        self.stats.bytes = written


_PAYLOADS: list[bytes] = []


class SignalPath:
    """The signalling path of one scenario between ``a`` (the initiator) and ``b``.

    UDP: datagrams between the two SIP ports. TCP: one connection from an ephemeral port of ``a`` to
    ``b``'s SIP port, with exact sequence numbers, opened by ``open`` and closed by ``close``.
    """

    def __init__(self, cap: Capture, a: Host, b: Host, *, tcp: bool) -> None:
        self.cap = cap
        self.a, self.b = a, b
        self.tcp = tcp
        self.transport = "TCP" if tcp else "UDP"
        rng = cap.rng
        # Ephemeral ports from a range Wireshark 4.0 assigns to no dissector: a port it knows (44322 is
        # PCP's pmproxy) would win over SIP's heuristic dissector and tshark would miss the messages.
        self.a_port = rng.randrange(50000, 54000) if tcp else a.port
        self.b_port = b.port
        self.seq_a = rng.getrandbits(32)
        self.seq_b = rng.getrandbits(32)

    def open(self, ts: int, rtt: int) -> int:
        """Three-way handshake for TCP; returns the time the first message may be sent."""
        if not self.tcp:
            return ts
        cap, a, b = self.cap, self.a, self.b
        cap.tcp(ts, a, b, sport=self.a_port, dport=self.b_port, seq=self.seq_a, ack=0, flags=TCP_SYN)
        self.seq_a = (self.seq_a + 1) & 0xFFFFFFFF
        cap.tcp(
            ts + rtt // 2,
            b,
            a,
            sport=self.b_port,
            dport=self.a_port,
            seq=self.seq_b,
            ack=self.seq_a,
            flags=TCP_SYN | TCP_ACK,
        )
        self.seq_b = (self.seq_b + 1) & 0xFFFFFFFF
        cap.tcp(
            ts + rtt,
            a,
            b,
            sport=self.a_port,
            dport=self.b_port,
            seq=self.seq_a,
            ack=self.seq_b,
            flags=TCP_ACK,
        )
        return ts + rtt + 200

    def send(self, ts: int, from_a: bool, msg: bytes) -> None:
        """One SIP message from ``a`` (``from_a``) or from ``b``."""
        cap = self.cap
        if not self.tcp:
            if from_a:
                cap.udp(ts, self.a, self.b, sport=self.a_port, dport=self.b_port, payload=msg)
            else:
                cap.udp(ts, self.b, self.a, sport=self.b_port, dport=self.a_port, payload=msg)
            return
        flags = TCP_PSH | TCP_ACK
        if from_a:
            cap.tcp(
                ts,
                self.a,
                self.b,
                sport=self.a_port,
                dport=self.b_port,
                seq=self.seq_a,
                ack=self.seq_b,
                flags=flags,
                payload=msg,
            )
            self.seq_a = (self.seq_a + len(msg)) & 0xFFFFFFFF
        else:
            cap.tcp(
                ts,
                self.b,
                self.a,
                sport=self.b_port,
                dport=self.a_port,
                seq=self.seq_b,
                ack=self.seq_a,
                flags=flags,
                payload=msg,
            )
            self.seq_b = (self.seq_b + len(msg)) & 0xFFFFFFFF

    def close(self, ts: int, rtt: int) -> None:
        """FIN exchange for TCP (``a`` closes first); nothing for UDP."""
        if not self.tcp:
            return
        cap, a, b = self.cap, self.a, self.b
        fin_ack = TCP_FIN | TCP_ACK
        cap.tcp(ts, a, b, sport=self.a_port, dport=self.b_port, seq=self.seq_a, ack=self.seq_b, flags=fin_ack)
        self.seq_a = (self.seq_a + 1) & 0xFFFFFFFF
        cap.tcp(
            ts + rtt // 2,
            b,
            a,
            sport=self.b_port,
            dport=self.a_port,
            seq=self.seq_b,
            ack=self.seq_a,
            flags=fin_ack,
        )
        self.seq_b = (self.seq_b + 1) & 0xFFFFFFFF
        cap.tcp(
            ts + rtt,
            a,
            b,
            sport=self.a_port,
            dport=self.b_port,
            seq=self.seq_a,
            ack=self.seq_b,
            flags=TCP_ACK,
        )


# ---------------------------------------------------------------------------------------------------
# SIP text
# ---------------------------------------------------------------------------------------------------
REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    401: "Unauthorized",
    407: "Proxy Authentication Required",
    486: "Busy Here",
    487: "Request Terminated",
}


def _message(start: str, headers: list[str], body: str = "") -> bytes:
    """Assemble a SIP message with CRLF line ends and an exact Content-Length."""
    raw = body.encode("ascii")
    if raw:
        headers = [*headers, "Content-Type: application/sdp"]
    lines = [start, *headers, f"Content-Length: {len(raw)}", "", ""]
    return "\r\n".join(lines).encode("ascii") + raw


def _sdp(rng: random.Random, host: Host, port: int, *, answer: bool) -> str:
    """An SDP offer (PCMU, PCMA, telephone-event) or answer (PCMU, telephone-event)."""
    sess = rng.randrange(10**9, 10**10)
    fmts = "0 101" if answer else "0 8 101"
    lines = [
        "v=0",
        f"o={host.user} {sess} {sess} IN IP4 {host.addr}",
        "s=sipflow-bench",
        f"c=IN IP4 {host.addr}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {fmts}",
        "a=rtpmap:0 PCMU/8000",
        *([] if answer else ["a=rtpmap:8 PCMA/8000"]),
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
        "",
    ]
    return "\r\n".join(lines)


def _hex(rng: random.Random, bits: int) -> str:
    """Random lower-case hex of ``bits`` bits, zero-padded."""
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


@dataclass(slots=True)
class Dialog:
    """The identifiers one scenario needs to write consistent SIP messages."""

    path: SignalPath
    call_id: str
    from_tag: str
    to_tag: str
    a_uri: str
    b_uri: str
    cseq: int = 1
    b_cseq: int = 1

    def via(self, host: Host, branch: str) -> str:
        """The Via a host puts on a request it sends."""
        rport = ";rport" if self.path.transport == "UDP" else ""
        return f"Via: SIP/2.0/{self.path.transport} {host.addr}:{host.port}{rport};branch={branch}"

    def contact(self, host: Host) -> str:
        """The Contact header of ``host``."""
        tp = ";transport=tcp" if self.path.tcp else ""
        return f"Contact: <sip:{host.user}@{host.addr}:{host.port}{tp}>"

    def from_hdr(self) -> str:
        """From of a request sent by ``a``."""
        return f"From: <{self.a_uri}>;tag={self.from_tag}"

    def to_hdr(self, tagged: bool) -> str:
        """To of a request sent by ``a`` (or of a response), with the remote tag if established."""
        return f"To: <{self.b_uri}>" + (f";tag={self.to_tag}" if tagged else "")


def _request(
    d: Dialog,
    method: str,
    *,
    from_a: bool,
    branch: str,
    cseq: int,
    ruri: str,
    tagged: bool,
    extra: tuple[str, ...] = (),
    body: str = "",
) -> bytes:
    """A request from ``a`` (``from_a``) or from ``b`` inside the dialog."""
    host = d.path.a if from_a else d.path.b
    if from_a:
        frm, to = d.from_hdr(), d.to_hdr(tagged)
    else:  # requests from b swap From and To (RFC 3261 §12.2.1.1)
        frm = f"From: <{d.b_uri}>;tag={d.to_tag}"
        to = f"To: <{d.a_uri}>;tag={d.from_tag}"
    headers = [
        d.via(host, branch),
        "Max-Forwards: 70",
        frm,
        to,
        f"Call-ID: {d.call_id}",
        f"CSeq: {cseq} {method}",
    ]
    if method in ("INVITE", "REGISTER", "OPTIONS"):
        headers.append(d.contact(host))
    headers.extend(extra)
    headers.append(f"User-Agent: {host.agent}")
    if method in ("INVITE", "OPTIONS"):
        headers.append(f"Allow: {ALLOW}")
    return _message(f"{method} {ruri} SIP/2.0", headers, body)


def _response(
    d: Dialog,
    code: int,
    request_via: str,
    method: str,
    cseq: int,
    *,
    from_a_request: bool,
    tagged: bool,
    extra: tuple[str, ...] = (),
    body: str = "",
) -> bytes:
    """A response to a request sent by ``a`` (``from_a_request``) or by ``b``; Via copied."""
    responder = d.path.b if from_a_request else d.path.a
    if from_a_request:
        frm, to = d.from_hdr(), d.to_hdr(tagged)
    else:
        frm = f"From: <{d.b_uri}>;tag={d.to_tag}"
        to = f"To: <{d.a_uri}>;tag={d.from_tag}"
    headers = [request_via, frm, to, f"Call-ID: {d.call_id}", f"CSeq: {cseq} {method}"]
    if method == "INVITE" and 180 <= code < 300:
        headers.append(d.contact(responder))
    headers.extend(extra)
    headers.append(f"Server: {responder.agent}")
    return _message(f"SIP/2.0 {code} {REASONS[code]}", headers, body)


# ---------------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------------
class Scenarios:
    """Writes one scenario at a time into a ``Capture``, counting every SIP message."""

    def __init__(self, cap: Capture, registrar: Host, rtp_per_call: int) -> None:
        self.cap = cap
        self.rng = cap.rng
        self.registrar = registrar
        self.rtp_per_call = rtp_per_call

    def _send(self, d: Dialog, ts: int, from_a: bool, msg: bytes, *, resent: bool = False) -> None:
        d.path.send(ts, from_a, msg)
        st = self.cap.stats
        st.sip_messages += 1
        first = msg[: msg.index(b" ")].decode()
        if first == "SIP/2.0":
            st.responses[int(msg[8:11])] += 1
        else:
            st.requests[first] += 1
        if resent:
            st.resent += 1

    def _dialog(self, path: SignalPath) -> Dialog:
        rng = self.rng
        a, b = path.a, path.b
        style = rng.randrange(3)
        if style == 0:
            call_id = f"{_hex(rng, 64)}@{a.addr}"
        elif style == 1:
            u = _hex(rng, 128)
            call_id = f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
        else:
            call_id = f"{rng.getrandbits(31)}-{rng.getrandbits(31)}@{a.addr}"
        self.cap.stats.call_ids += 1
        return Dialog(
            path=path,
            call_id=call_id,
            from_tag=_hex(rng, 32),
            to_tag=_hex(rng, 32),
            a_uri=f"sip:{a.user}@{DOMAIN}",
            b_uri=f"sip:{b.user}@{DOMAIN}",
            cseq=rng.randrange(1, 30000),
            b_cseq=rng.randrange(1, 30000),
        )

    def invite(self, kind: str, a: Host, b: Host, t0: int, *, tcp: bool, retransmit: bool) -> None:
        """An INVITE scenario: answered, challenged, cancelled or busy."""
        rng = self.rng
        path = SignalPath(self.cap, a, b, tcp=tcp)
        d = self._dialog(path)
        auth: tuple[str, ...] = ()
        owd = rng.randrange(1_000, 40_000)  # one-way delay between the capture's two sides
        t = path.open(t0, 2 * owd)
        a_rtp = rng.randrange(8000, 30000) * 2
        b_rtp = rng.randrange(8000, 30000) * 2
        ruri = f"sip:{b.user}@{b.addr}:{b.port}" + (";transport=tcp" if tcp else "")
        offer = _sdp(rng, a, a_rtp, answer=False)
        cseq = d.cseq

        if kind == "challenged":
            branch = "z9hG4bK" + _hex(rng, 48)
            via = d.via(a, branch)
            inv = _request(
                d, "INVITE", from_a=True, branch=branch, cseq=cseq, ruri=ruri, tagged=False, body=offer
            )
            self._send(d, t, True, inv)
            if retransmit:
                t += T1_US
                self._send(d, t, True, inv, resent=True)
                retransmit = False
            nonce = _hex(rng, 128)
            t += 2 * owd + rng.randrange(200, 3000)
            challenge = (
                f'Proxy-Authenticate: Digest realm="{DOMAIN}", nonce="{nonce}", algorithm=MD5, qop="auth"',
            )
            self._send(
                d,
                t,
                False,
                _response(d, 407, via, "INVITE", cseq, from_a_request=True, tagged=True, extra=challenge),
            )
            t += 2 * owd + rng.randrange(100, 2000)
            self._send(
                d, t, True, _request(d, "ACK", from_a=True, branch=branch, cseq=cseq, ruri=ruri, tagged=True)
            )
            cseq += 1
            t += rng.randrange(5_000, 60_000)
            auth = (
                f'Proxy-Authorization: Digest username="{a.user}", realm="{DOMAIN}", nonce="{nonce}", '
                f'uri="{ruri}", response="{_hex(rng, 128)}", algorithm=MD5, cnonce="{_hex(rng, 32)}", '
                "qop=auth, nc=00000001",
            )
            d.to_tag = _hex(rng, 32)  # the new transaction gets a new To tag

        branch = "z9hG4bK" + _hex(rng, 48)
        via = d.via(a, branch)
        inv = _request(
            d,
            "INVITE",
            from_a=True,
            branch=branch,
            cseq=cseq,
            ruri=ruri,
            tagged=False,
            extra=auth,
            body=offer,
        )
        self._send(d, t, True, inv)
        if retransmit:
            t += T1_US
            self._send(d, t, True, inv, resent=True)
        t += 2 * owd + rng.randrange(100, 5_000)
        self._send(d, t, False, _response(d, 100, via, "INVITE", cseq, from_a_request=True, tagged=False))
        t += rng.randrange(10_000, 300_000)
        self._send(d, t, False, _response(d, 180, via, "INVITE", cseq, from_a_request=True, tagged=True))

        if kind == "cancelled":
            t += rng.randrange(2_000_000, 15_000_000)
            self._send(
                d,
                t,
                True,
                _request(d, "CANCEL", from_a=True, branch=branch, cseq=cseq, ruri=ruri, tagged=False),
            )
            t += 2 * owd + rng.randrange(100, 2_000)
            self._send(d, t, False, _response(d, 200, via, "CANCEL", cseq, from_a_request=True, tagged=True))
            t += rng.randrange(200, 5_000)
            self._send(d, t, False, _response(d, 487, via, "INVITE", cseq, from_a_request=True, tagged=True))
            t += 2 * owd + rng.randrange(100, 2_000)
            self._send(
                d, t, True, _request(d, "ACK", from_a=True, branch=branch, cseq=cseq, ruri=ruri, tagged=True)
            )
            path.close(t + 50_000, 2 * owd)
            return
        if kind == "busy":
            t += rng.randrange(500_000, 6_000_000)
            self._send(d, t, False, _response(d, 486, via, "INVITE", cseq, from_a_request=True, tagged=True))
            t += 2 * owd + rng.randrange(100, 2_000)
            self._send(
                d, t, True, _request(d, "ACK", from_a=True, branch=branch, cseq=cseq, ruri=ruri, tagged=True)
            )
            path.close(t + 50_000, 2 * owd)
            return

        # answered (directly, or after the 407 challenge)
        t += rng.randrange(1_000_000, 20_000_000)
        answer = _sdp(rng, b, b_rtp, answer=True)
        t200 = t
        self._send(
            d, t, False, _response(d, 200, via, "INVITE", cseq, from_a_request=True, tagged=True, body=answer)
        )
        t += 2 * owd + rng.randrange(100, 3_000)
        b_contact = f"sip:{b.user}@{b.addr}:{b.port}" + (";transport=tcp" if tcp else "")
        self._send(
            d,
            t,
            True,
            _request(
                d,
                "ACK",
                from_a=True,
                branch="z9hG4bK" + _hex(rng, 48),
                cseq=cseq,
                ruri=b_contact,
                tagged=True,
            ),
        )
        n = self.rtp_per_call
        if n:
            self.cap.rtp(t200 + owd + 1_000, b, a, sport=b_rtp, dport=a_rtp, count=n)
            self.cap.rtp(t + 1_000, a, b, sport=a_rtp, dport=b_rtp, count=n)
        talk = max(int(rng.expovariate(1 / 40.0) * 1_000_000), (n + 5) * RTP_PTIME_US + 2 * owd)
        t = t200 + min(talk, 600_000_000)
        bye_branch = "z9hG4bK" + _hex(rng, 48)
        if rng.random() < 0.6:  # the caller hangs up
            bye_via = d.via(a, bye_branch)
            self._send(
                d,
                t,
                True,
                _request(
                    d, "BYE", from_a=True, branch=bye_branch, cseq=cseq + 1, ruri=b_contact, tagged=True
                ),
            )
            t += 2 * owd + rng.randrange(100, 3_000)
            self._send(
                d, t, False, _response(d, 200, bye_via, "BYE", cseq + 1, from_a_request=True, tagged=True)
            )
        else:
            bye_via = d.via(b, bye_branch)
            a_contact = f"sip:{a.user}@{a.addr}:{a.port}" + (";transport=tcp" if tcp else "")
            self._send(
                d,
                t,
                False,
                _request(
                    d, "BYE", from_a=False, branch=bye_branch, cseq=d.b_cseq, ruri=a_contact, tagged=True
                ),
            )
            t += 2 * owd + rng.randrange(100, 3_000)
            self._send(
                d, t, True, _response(d, 200, bye_via, "BYE", d.b_cseq, from_a_request=False, tagged=True)
            )
        path.close(t + 50_000, 2 * owd)

    def register(self, ua: Host, t0: int, *, tcp: bool) -> None:
        """REGISTER, 401 challenge, REGISTER with credentials, 200 with the binding."""
        rng = self.rng
        reg = self.registrar
        path = SignalPath(self.cap, ua, reg, tcp=tcp)
        d = self._dialog(path)
        d.b_uri = d.a_uri  # To = From = the address of record
        owd = rng.randrange(1_000, 40_000)
        t = path.open(t0, 2 * owd)
        ruri = f"sip:{DOMAIN}"
        expires = ("Expires: 3600",)
        cseq = d.cseq
        branch = "z9hG4bK" + _hex(rng, 48)
        via = d.via(ua, branch)
        self._send(
            d,
            t,
            True,
            _request(
                d, "REGISTER", from_a=True, branch=branch, cseq=cseq, ruri=ruri, tagged=False, extra=expires
            ),
        )
        nonce = _hex(rng, 128)
        t += 2 * owd + rng.randrange(200, 3_000)
        self._send(
            d,
            t,
            False,
            _response(
                d,
                401,
                via,
                "REGISTER",
                cseq,
                from_a_request=True,
                tagged=True,
                extra=(
                    f'WWW-Authenticate: Digest realm="{DOMAIN}", nonce="{nonce}", algorithm=MD5, qop="auth"',
                ),
            ),
        )
        t += 2 * owd + rng.randrange(5_000, 50_000)
        branch = "z9hG4bK" + _hex(rng, 48)
        via = d.via(ua, branch)
        auth = (
            f'Authorization: Digest username="{ua.user}", realm="{DOMAIN}", nonce="{nonce}", '
            f'uri="{ruri}", response="{_hex(rng, 128)}", algorithm=MD5, cnonce="{_hex(rng, 32)}", '
            "qop=auth, nc=00000001"
        )
        self._send(
            d,
            t,
            True,
            _request(
                d,
                "REGISTER",
                from_a=True,
                branch=branch,
                cseq=cseq + 1,
                ruri=ruri,
                tagged=False,
                extra=(*expires, auth),
            ),
        )
        t += 2 * owd + rng.randrange(200, 3_000)
        binding = d.contact(ua) + ";expires=3600"
        self._send(
            d,
            t,
            False,
            _response(d, 200, via, "REGISTER", cseq + 1, from_a_request=True, tagged=True, extra=(binding,)),
        )
        path.close(t + 50_000, 2 * owd)

    def options(self, ua: Host, t0: int, *, tcp: bool) -> None:
        """An OPTIONS keep-alive from the registrar to a phone, answered 200."""
        rng = self.rng
        path = SignalPath(self.cap, self.registrar, ua, tcp=tcp)
        d = self._dialog(path)
        owd = rng.randrange(1_000, 40_000)
        t = path.open(t0, 2 * owd)
        branch = "z9hG4bK" + _hex(rng, 48)
        via = d.via(self.registrar, branch)
        ruri = f"sip:{ua.user}@{ua.addr}:{ua.port}" + (";transport=tcp" if tcp else "")
        self._send(
            d,
            t,
            True,
            _request(
                d,
                "OPTIONS",
                from_a=True,
                branch=branch,
                cseq=d.cseq,
                ruri=ruri,
                tagged=False,
                extra=("Accept: application/sdp",),
            ),
        )
        t += 2 * owd + rng.randrange(100, 2_000)
        self._send(
            d,
            t,
            False,
            _response(
                d,
                200,
                via,
                "OPTIONS",
                d.cseq,
                from_a_request=True,
                tagged=True,
                extra=(f"Allow: {ALLOW}", "Accept: application/sdp"),
            ),
        )
        path.close(t + 50_000, 2 * owd)


# ---------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------
def make_hosts(rng: random.Random, count: int) -> tuple[list[Host], Host]:
    """``count`` phones spread over two /16 networks, plus the registrar."""
    hosts: list[Host] = []
    picks = rng.sample(range(256, 65535), count)
    ports = (5062, 5064, 5070, 5080, 5090)
    for i, low in enumerate(picks):
        net = (10, 1) if i % 2 == 0 else (10, 2)
        ip = bytes((*net, low >> 8, low & 0xFF))
        port = 5060 if rng.random() < 0.65 else rng.choice(ports)
        hosts.append(
            Host(
                ip=ip,
                addr=".".join(map(str, ip)),
                mac=b"\x02\x00" + ip,
                port=port,
                user=str(2000 + i),
                agent=rng.choice(USER_AGENTS),
            )
        )
    reg_ip = bytes((10, 0, 0, 10))
    registrar = Host(
        ip=reg_ip,
        addr="10.0.0.10",
        mac=b"\x02\x00" + reg_ip,
        port=5060,
        user="registrar",
        agent=REGISTRAR_AGENT,
    )
    return hosts, registrar


def plan(rng: random.Random, calls: int) -> list[str]:
    """Exact quotas of each scenario kind, shuffled."""
    kinds: list[str] = []
    for kind, share in MIX.items():
        if kind != "answered":
            kinds.extend([kind] * round(calls * share))
    kinds.extend(["answered"] * (calls - len(kinds)))
    rng.shuffle(kinds)
    return kinds


def generate(
    out: Path,
    *,
    calls: int = DEFAULT_CALLS,
    rtp_per_call: int = DEFAULT_RTP_PER_CALL,
    seed: int = DEFAULT_SEED,
    tcp_fraction: float = 0.0,
    retransmit_fraction: float = 0.03,
    hosts: int = 300,
    duration: float = 900.0,
    udp_checksums: bool = False,
) -> Stats:
    """Write the capture to ``out`` and return what was written."""
    rng = random.Random(seed)
    _PAYLOADS[:] = [bytes(rng.randrange(0x80, 0x100) for _ in range(RTP_PAYLOAD_LEN)) for _ in range(8)]
    cap = Capture(rng, udp_checksums=udp_checksums)
    phones, registrar = make_hosts(rng, hosts)
    cap.stats.hosts = len(phones) + 1
    scen = Scenarios(cap, registrar, rtp_per_call)
    window_us = int(duration * 1_000_000)
    base = EPOCH_START * 1_000_000
    edges: list[tuple[int, int]] = []  # (time, +1 start / -1 end) of each scenario
    records = cap.records
    for kind in plan(rng, calls):
        first = len(records)
        t0 = base + rng.randrange(window_us)
        tcp = rng.random() < tcp_fraction
        cap.stats.scenarios[kind] += 1
        cap.stats.tcp_scenarios += tcp
        if kind in INVITE_KINDS:
            a, b = rng.sample(phones, 2)
            retransmit = not tcp and rng.random() < retransmit_fraction
            scen.invite(kind, a, b, t0, tcp=tcp, retransmit=retransmit)
        elif kind == "register":
            scen.register(rng.choice(phones), t0, tcp=tcp)
        else:
            scen.options(rng.choice(phones), t0, tcp=tcp)
        stamps = [r[0] for r in records[first:]]
        edges.extend(((min(stamps), 1), (max(stamps), -1)))
    cap.write(out)
    edges.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    level = 0
    for _, step in edges:
        level += step
        cap.stats.peak_concurrent = max(cap.stats.peak_concurrent, level)
    if records:
        cap.stats.span_s = (records[-1][0] - records[0][0]) / 1e6
    return cap.stats


def tshark_sip_stat(path: Path) -> dict[str, object] | None:
    """Run ``tshark -q -z sip,stat`` and parse totals, methods and status codes (None without tshark)."""
    exe = shutil.which("tshark")
    if exe is None:
        return None
    proc = subprocess.run(
        [exe, "-r", str(path), "-q", "-z", "sip,stat"], capture_output=True, text=True, check=True
    )
    text = proc.stdout
    total = re.search(r"Number of SIP messages: (\d+)", text)
    resent = re.search(r"Number of resent SIP messages: (\d+)", text)
    responses = {int(c): int(n) for c, n in re.findall(r"^\s+SIP (\d{3}) .*?:\s+(\d+) Packets", text, re.M)}
    requests = {m: int(n) for m, n in re.findall(r"^\s+([A-Z]+)\s+:\s+(\d+) Packets", text, re.M)}
    return {
        "sip_messages": int(total.group(1)) if total else 0,
        "resent": int(resent.group(1)) if resent else 0,
        "requests": requests,
        "responses": responses,
    }


def verify(path: Path, stats: Stats) -> bool:
    """Compare the generator's counts with tshark's; print the verdict."""
    seen = tshark_sip_stat(path)
    if seen is None:
        print("verify: tshark not found, skipped")
        return True
    expected = {
        "sip_messages": stats.sip_messages,
        "resent": stats.resent,
        "requests": dict(stats.requests),
        "responses": dict(stats.responses),
    }
    ok = True
    for key, want in expected.items():
        got = seen[key]
        if got != want:
            ok = False
            print(f"verify: MISMATCH {key}: generator {want} tshark {got}")
    if ok:
        print(
            f"verify: tshark -z sip,stat agrees: {stats.sip_messages} SIP messages, {stats.resent} resent, "
            "same per-method and per-status counts"
        )
    return ok


def _print_stats(stats: Stats, out: Path, elapsed: float) -> None:
    """Human summary of what was written."""
    print(
        f"wrote {out}: {stats.frames:,} frames, {stats.bytes:,} bytes in {elapsed:.1f} s "
        f"({stats.frames / elapsed:,.0f} frames/s)"
    )
    scen = ", ".join(f"{k} {v}" for k, v in sorted(stats.scenarios.items()))
    print(f"scenarios: {sum(stats.scenarios.values())} ({scen}); on TCP: {stats.tcp_scenarios}")
    print(
        f"SIP messages: {stats.sip_messages:,} (resent {stats.resent}); Call-IDs {stats.call_ids:,}; "
        f"hosts {stats.hosts}"
    )
    print("requests:  " + ", ".join(f"{k} {v}" for k, v in sorted(stats.requests.items())))
    print("responses: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.responses.items())))
    print(f"RTP packets: {stats.rtp_packets:,}; TCP control segments: {stats.tcp_control:,}")
    print(f"capture spans {stats.span_s:,.1f} s; peak concurrent scenarios {stats.peak_concurrent:,}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="pcap to write")
    p.add_argument(
        "--calls", type=int, default=DEFAULT_CALLS, help="scenarios to write (calls, REGISTERs...)"
    )
    p.add_argument(
        "--rtp-per-call",
        type=int,
        default=DEFAULT_RTP_PER_CALL,
        help="RTP packets each side of an answered call sends (20 ms apart)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (same seed, same bytes)")
    p.add_argument("--tcp-fraction", type=float, default=0.0, help="share of scenarios carried over TCP")
    p.add_argument(
        "--retransmit-fraction",
        type=float,
        default=0.03,
        help="share of UDP INVITE scenarios whose INVITE is retransmitted once",
    )
    p.add_argument("--hosts", type=int, default=300, help="number of phones (plus one registrar)")
    p.add_argument("--duration", type=float, default=900.0, help="seconds over which scenarios start")
    p.add_argument("--udp-checksums", action="store_true", help="compute UDP checksums (default: zero)")
    p.add_argument("--verify", action="store_true", help="check the counts against tshark -z sip,stat")
    p.add_argument("--json", type=Path, default=None, help="also write the counts as JSON to this file")
    args = p.parse_args(argv)
    if args.calls < 1 or args.hosts < 2 or args.rtp_per_call < 0 or not 0 <= args.tcp_fraction <= 1:
        p.error("need --calls >= 1, --hosts >= 2, --rtp-per-call >= 0, 0 <= --tcp-fraction <= 1")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    stats = generate(
        args.output,
        calls=args.calls,
        rtp_per_call=args.rtp_per_call,
        seed=args.seed,
        tcp_fraction=args.tcp_fraction,
        retransmit_fraction=args.retransmit_fraction,
        hosts=args.hosts,
        duration=args.duration,
        udp_checksums=args.udp_checksums,
    )
    _print_stats(stats, args.output, time.perf_counter() - started)
    if args.json is not None:
        args.json.write_text(json.dumps(stats.as_dict(), indent=2) + "\n")
    if args.verify and not verify(args.output, stats):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
