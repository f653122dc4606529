"""Helpers for the capture tests: SIP messages, pcap/pcapng writers, decoder drivers.

The writers are written by hand (not scapy) where a test needs control over the file format
itself: byte order, timestamp resolution, several interfaces, damaged records.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sipflow.capture.decode import Decoder
from sipflow.capture.reader import CaptureReader
from sipflow.capture.types import SipPayload
from tests.conftest import SHARED_CAPTURES

SAMPLES = SHARED_CAPTURES
"""The public test captures with tshark ground truth (``ground_truth.json``)."""


MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"


def ether() -> Any:
    """An Ethernet header with explicit addresses (scapy would ARP for missing ones)."""
    from scapy.layers.l2 import Ether

    return Ether(src=MAC_A, dst=MAC_B)


# --- SIP messages ---------------------------------------------------------------------------------


def sip_request(
    method: str = "INVITE",
    *,
    call_id: str = "a84b4c76e66710@pc33.example.com",
    cseq: int = 1,
    body: bytes = b"",
    content_length: str = "Content-Length",
    extra: str = "",
) -> bytes:
    """A small, valid SIP request (RFC 3261 §7.1)."""
    head = (
        f"{method} sip:bob@biloxi.example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds{cseq}\r\n"
        "Max-Forwards: 70\r\n"
        "To: Bob <sip:bob@biloxi.example.com>\r\n"
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"{extra}"
        f"{content_length}: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


def sip_response(code: int = 200, reason: str = "OK", *, cseq: int = 1, body: bytes = b"") -> bytes:
    """A small, valid SIP response (RFC 3261 §7.2)."""
    head = (
        f"SIP/2.0 {code} {reason}\r\n"
        "Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n"
        "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
        "Call-ID: a84b4c76e66710@pc33.example.com\r\n"
        f"CSeq: {cseq} INVITE\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


def big_invite(size: int = 4000) -> bytes:
    """An INVITE of about ``size`` octets (an SDP body padded with attribute lines)."""
    lines = [
        b"v=0",
        b"o=alice 2890844526 2890844526 IN IP4 pc33.example.com",
        b"s=-",
        b"c=IN IP4 192.0.2.101",
    ]
    lines.append(b"t=0 0")
    lines.append(b"m=audio 49172 RTP/AVP 0")
    i = 0
    while sum(len(x) + 2 for x in lines) < size - 400:
        lines.append(f"a=x-padding-{i:05d}:{'p' * 60}".encode())
        i += 1
    body = b"\r\n".join(lines) + b"\r\n"
    return sip_request("INVITE", body=body, extra="Content-Type: application/sdp\r\n")


# --- pcap / pcapng writers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One frame to write: timestamp as integer seconds + integer fraction units."""

    data: bytes
    sec: int = 1_700_000_000
    frac: int = 0
    orig_len: int | None = None


def records(frames: Iterable[bytes], *, start: int = 1_700_000_000, step_us: int = 1000) -> list[Record]:
    """Records one ``step_us`` apart (microsecond fractions)."""
    out = []
    for i, data in enumerate(frames):
        us = i * step_us
        out.append(Record(data, start + us // 1_000_000, us % 1_000_000))
    return out


def pcap_bytes(
    recs: Sequence[Record],
    *,
    linktype: int = 1,
    big_endian: bool = False,
    nanosecond: bool = False,
    snaplen: int = 262144,
) -> bytes:
    """A classic pcap file; ``frac`` is in µs (or ns with ``nanosecond``)."""
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for r in recs:
        orig = r.orig_len if r.orig_len is not None else len(r.data)
        out.append(struct.pack(order + "IIII", r.sec, r.frac, len(r.data), orig))
        out.append(r.data)
    return b"".join(out)


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _block(order: str, btype: int, body: bytes) -> bytes:
    body = _pad4(body)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad4(value)


@dataclass
class Interface:
    """An Interface Description Block."""

    linktype: int
    tsresol: int | None = None
    """Raw if_tsresol octet (e.g. 9 for ns, 0x80 | 20 for 2^-20 s)."""
    tsoffset: int | None = None
    snaplen: int = 0


@dataclass
class Section:
    """A pcapng section: its byte order, interfaces and blocks (written in order)."""

    big_endian: bool = False
    interfaces: list[Interface] = field(default_factory=list)
    blocks: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    """("epb", (iface, ts_units, data, orig_len)), ("spb", (data, orig_len)),
    ("pb", (iface, ts_units, data)), ("raw", (btype, body))."""


def pcapng_bytes(sections: Sequence[Section]) -> bytes:
    """A pcapng file with the given sections."""
    out = []
    for sec in sections:
        order = ">" if sec.big_endian else "<"
        shb = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
        out.append(_block(order, 0x0A0D0D0A, shb))
        for ifc in sec.interfaces:
            opts = b""
            if ifc.tsresol is not None:
                opts += _option(order, 9, bytes([ifc.tsresol]))
            if ifc.tsoffset is not None:
                opts += _option(order, 14, struct.pack(order + "q", ifc.tsoffset))
            if opts:
                opts += _option(order, 0, b"")
            out.append(_block(order, 1, struct.pack(order + "HHI", ifc.linktype, 0, ifc.snaplen) + opts))
        for kind, args in sec.blocks:
            if kind == "epb":
                iface, ts, data, orig = args
                assert isinstance(iface, int) and isinstance(ts, int) and isinstance(data, bytes)
                orig_len = orig if isinstance(orig, int) else len(data)
                body = (
                    struct.pack(order + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), orig_len) + data
                )
                out.append(_block(order, 6, body))
            elif kind == "spb":
                data, orig = args
                assert isinstance(data, bytes)
                orig_len = orig if isinstance(orig, int) else len(data)
                out.append(_block(order, 3, struct.pack(order + "I", orig_len) + data))
            elif kind == "pb":
                iface, ts, data = args
                assert isinstance(iface, int) and isinstance(ts, int) and isinstance(data, bytes)
                body = struct.pack(
                    order + "HHIIII", iface, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)
                )
                out.append(_block(order, 2, body + data))
            else:
                btype, body = args
                assert isinstance(btype, int) and isinstance(body, bytes)
                out.append(_block(order, btype, body))
    return b"".join(out)


def udp_frame(payload: bytes, sport: int = 5060, dport: int = 5060) -> bytes:
    """An Ethernet / IPv4 / UDP frame from 192.0.2.1 to 192.0.2.2 carrying ``payload``."""
    from scapy.layers.inet import IP, UDP

    return bytes(ether() / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=sport, dport=dport) / payload)


def raw_ip_frame(payload: bytes) -> bytes:
    """A raw IPv4 / UDP packet (link type 101) carrying ``payload``."""
    from scapy.layers.inet import IP, UDP

    return bytes(IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=5060, dport=5060) / payload)


RTP = b"\x80\x00\x00\x01" + b"\x00" * 168
"""An RTP packet (version 2, PT 0): a payload that is not SIP."""


def write_sip_rtp_pcap(path: Path, frames: int = 200_000, sip_every: int = 100) -> None:
    """A large Ethernet/IPv4/UDP capture, mostly RTP with a SIP request every ``sip_every``
    frames (50 frames a second): the input of the speed measurement."""
    from scapy.layers.inet import IP, UDP

    sip = bytes(ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5060, dport=5060) / sip_request())
    rtp = bytes(
        ether()
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / UDP(sport=40000, dport=40002)
        / (b"\x80\x00" + b"\0" * 170)
    )
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(frames):
            p = sip if i % sip_every == 0 else rtp
            out.write(struct.pack("<IIII", 1_700_000_000 + i // 50, (i % 50) * 20_000, len(p), len(p)))
            out.write(p)


# --- running ------------------------------------------------------------------------------------


def read_all(path: Path | str, **kwargs: str) -> tuple[list[SipPayload], CaptureReader]:
    """All packets of a file and the (closed) reader, for its stats and warnings."""
    with CaptureReader(path, **kwargs) as reader:
        packets = list(reader)
    return packets, reader


def write_and_read(
    tmp_path: Path, data: bytes, name: str = "t.pcap"
) -> tuple[list[SipPayload], CaptureReader]:
    path = tmp_path / name
    path.write_bytes(data)
    return read_all(path)


def decode_frames(
    frames: Sequence[bytes], linktype: int = 1, decoder: Decoder | None = None
) -> tuple[list[SipPayload], Decoder]:
    """Feed frames (numbered from 1, 1 ms apart) to a decoder, then finish it."""
    d = decoder if decoder is not None else Decoder(file="test")
    out: list[SipPayload] = []
    for i, frame in enumerate(frames, start=1):
        out.extend(d.feed(i, 1_700_000_000 + i / 1000, linktype, frame, len(frame)))
    out.extend(d.finish())
    return out, d
