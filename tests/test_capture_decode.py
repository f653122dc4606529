"""Link types, tunnels and damaged packets, on synthetic captures built with scapy.

Each case wraps the same SIP INVITE in a different encapsulation, writes it into a pcap of the
right link type and reads it back; the encapsulations tshark knows are also cross-checked
against tshark live (one tshark run per link type).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import GRE, IP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import ARP, LLC, SNAP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from sipflow.capture.decode import Decoder
from sipflow.capture.types import Endpoint, Transport
from tests.capture_util import (
    MAC_A,
    MAC_B,
    Record,
    decode_frames,
    ether,
    pcap_bytes,
    records,
    sip_request,
    write_and_read,
)
from tests.conftest import run_tshark

SIP = sip_request()
V4_A, V4_B = "192.0.2.10", "192.0.2.20"
V6_A, V6_B = "2001:db8::a", "2001:db8::b"
OUTER_A, OUTER_B = "198.51.100.1", "198.51.100.2"


def udp4(payload: bytes = SIP) -> IP:
    return IP(src=V4_A, dst=V4_B) / UDP(sport=5060, dport=5060) / payload


def udp6(payload: bytes = SIP) -> IPv6:
    return IPv6(src=V6_A, dst=V6_B) / UDP(sport=5060, dport=5060) / payload


def outer4(proto: int | None = None) -> IP:
    return IP(src=OUTER_A, dst=OUTER_B) if proto is None else IP(src=OUTER_A, dst=OUTER_B, proto=proto)


def inner_ether() -> Ether:
    return Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")


def ah(next_header: int) -> bytes:
    """An Authentication Header with a 12-octet ICV (RFC 4302 §2: Payload Len = 6 - 2)."""
    return bytes([next_header, 4, 0, 0]) + struct.pack("!II", 0x1000, 1) + b"\xaa" * 12


# (linktype, frame, expected source endpoint); tshark-checked unless the name says otherwise
CASES: dict[str, tuple[int, Callable[[], bytes], Endpoint]] = {
    "ethernet": (1, lambda: bytes(ether() / udp4()), Endpoint(V4_A, 5060)),
    "802.1Q": (1, lambda: bytes(ether() / Dot1Q(vlan=10) / udp4()), Endpoint(V4_A, 5060)),
    "802.1ad QinQ": (
        1,
        lambda: bytes(ether() / Dot1AD(vlan=100) / Dot1Q(vlan=10) / udp4()),
        Endpoint(V4_A, 5060),
    ),
    "legacy 0x9100 double tag": (
        1,
        lambda: bytes(Ether(src=MAC_A, dst=MAC_B, type=0x9100) / Dot1Q(vlan=5) / Dot1Q(vlan=6) / udp4()),
        Endpoint(V4_A, 5060),
    ),
    "LLC/SNAP": (
        1,
        lambda: bytes(
            Ether(src=MAC_A, dst=MAC_B, type=len(bytes(udp4())) + 8)
            / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
            / SNAP(OUI=0, code=0x0800)
            / udp4()
        ),
        Endpoint(V4_A, 5060),
    ),
    "MPLS": (
        1,
        lambda: bytes(ether() / MPLS(label=16, s=0) / MPLS(label=17, s=1) / udp4()),
        Endpoint(V4_A, 5060),
    ),
    "PPPoE": (
        1,
        lambda: bytes(ether() / PPPoE(sessionid=7) / PPP(proto=0x0021) / udp4()),
        Endpoint(V4_A, 5060),
    ),
    "IPv6": (1, lambda: bytes(ether() / udp6()), Endpoint(V6_A, 5060)),
    "IPv6 extension headers": (
        1,
        lambda: bytes(
            ether()
            / IPv6(src=V6_A, dst=V6_B)
            / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrDestOpt()
            / IPv6ExtHdrRouting(addresses=[V6_B])
            / IPv6ExtHdrDestOpt(nh=51)
            / ah(17)
            / UDP(sport=5060, dport=5060)
            / SIP
        ),
        Endpoint(V6_A, 5060),
    ),
    "IPv4 AH": (
        1,
        lambda: bytes(
            ether() / IP(src=V4_A, dst=V4_B, proto=51) / ah(17) / UDP(sport=5060, dport=5060) / SIP
        ),
        Endpoint(V4_A, 5060),
    ),
    "IPv4 options": (
        1,
        lambda: bytes(
            ether() / IP(src=V4_A, dst=V4_B, options=b"\x94\x04\x00\x00") / UDP(sport=5060, dport=5060) / SIP
        ),
        Endpoint(V4_A, 5060),
    ),
    "IPv4 in IPv4": (1, lambda: bytes(ether() / outer4(4) / udp4()), Endpoint(V4_A, 5060)),
    "IPv6 in IPv4": (1, lambda: bytes(ether() / outer4(41) / udp6()), Endpoint(V6_A, 5060)),
    "IPv4 in IPv6": (
        1,
        lambda: bytes(ether() / IPv6(src="2001:db8:1::1", dst="2001:db8:1::2", nh=4) / udp4()),
        Endpoint(V4_A, 5060),
    ),
    "IPv6 in IPv6": (
        1,
        lambda: bytes(ether() / IPv6(src="2001:db8:1::1", dst="2001:db8:1::2", nh=41) / udp6()),
        Endpoint(V6_A, 5060),
    ),
    "GRE": (1, lambda: bytes(ether() / outer4() / GRE() / udp4()), Endpoint(V4_A, 5060)),
    "GRE key+seq+checksum": (
        1,
        lambda: bytes(
            ether()
            / outer4()
            / GRE(chksum_present=1, key_present=1, key=7, seqnum_present=1, sequence_number=9)
            / udp4()
        ),
        Endpoint(V4_A, 5060),
    ),
    "GRE over IPv6 carrying IPv6": (
        1,
        lambda: bytes(ether() / IPv6(src="2001:db8:1::1", dst="2001:db8:1::2") / GRE() / udp6()),
        Endpoint(V6_A, 5060),
    ),
    "GRE transparent Ethernet bridging": (
        1,
        lambda: bytes(
            ether()
            / outer4()
            / GRE(proto=0x6558, key_present=1, key=1)
            / inner_ether()
            / Dot1Q(vlan=3)
            / udp4()
        ),
        Endpoint(V4_A, 5060),
    ),
    "ERSPAN type I": (
        1,
        lambda: bytes(ether() / outer4() / GRE(proto=0x88BE) / inner_ether() / udp4()),
        Endpoint(V4_A, 5060),
    ),
    "ERSPAN type II": (
        1,
        lambda: bytes(
            ether()
            / outer4()
            / GRE(proto=0x88BE, seqnum_present=1)
            / ERSPAN_II(ver=1, session_id=5)
            / inner_ether()
            / udp4()
        ),
        Endpoint(V4_A, 5060),
    ),
    "ERSPAN type III": (
        1,
        lambda: bytes(
            ether()
            / outer4()
            / GRE(proto=0x22EB, seqnum_present=1)
            / ERSPAN_III(ver=2, session_id=5)
            / inner_ether()
            / udp4()
        ),
        Endpoint(V4_A, 5060),
    ),
    "ERSPAN type III with platform subheader": (
        1,
        lambda: bytes(
            ether()
            / outer4()
            / GRE(proto=0x22EB, seqnum_present=1)
            / Raw(bytes(ERSPAN_III(ver=2, session_id=5, o=1)) + b"\x00" * 8 + bytes(inner_ether() / udp4()))
        ),
        Endpoint(V4_A, 5060),
    ),
    "VXLAN": (
        1,
        lambda: bytes(
            ether() / outer4() / UDP(sport=50000, dport=4789) / VXLAN(vni=42) / inner_ether() / udp4()
        ),
        Endpoint(V4_A, 5060),
    ),
    "Linux SLL": (
        113,
        lambda: bytes(
            CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, src=b"\x02\0\0\0\0\x0a\0\0") / udp4()
        ),
        Endpoint(V4_A, 5060),
    ),
    "Linux SLL2": (
        276,
        lambda: bytes(CookedLinuxV2(ifindex=2, lladdrtype=1, lladdrlen=6) / udp6()),
        Endpoint(V6_A, 5060),
    ),
    "raw IP (101) IPv4": (101, lambda: bytes(udp4()), Endpoint(V4_A, 5060)),
    "raw IP (101) IPv6": (101, lambda: bytes(udp6()), Endpoint(V6_A, 5060)),
    "raw IP (12)": (12, lambda: bytes(udp4()), Endpoint(V4_A, 5060)),
    "raw IP (14)": (14, lambda: bytes(udp6()), Endpoint(V6_A, 5060)),
    "IPv4 (228)": (228, lambda: bytes(udp4()), Endpoint(V4_A, 5060)),
    "IPv6 (229)": (229, lambda: bytes(udp6()), Endpoint(V6_A, 5060)),
    "NULL little-endian AF_INET": (0, lambda: struct.pack("<I", 2) + bytes(udp4()), Endpoint(V4_A, 5060)),
    "NULL big-endian AF_INET": (0, lambda: struct.pack(">I", 2) + bytes(udp4()), Endpoint(V4_A, 5060)),
    "NULL AF_INET6 24 (BSD)": (0, lambda: struct.pack("<I", 24) + bytes(udp6()), Endpoint(V6_A, 5060)),
    "NULL AF_INET6 28 (FreeBSD)": (0, lambda: struct.pack("<I", 28) + bytes(udp6()), Endpoint(V6_A, 5060)),
    "NULL AF_INET6 30 (Darwin) big-endian": (
        0,
        lambda: struct.pack(">I", 30) + bytes(udp6()),
        Endpoint(V6_A, 5060),
    ),
    "LOOP AF_INET": (108, lambda: struct.pack(">I", 2) + bytes(udp4()), Endpoint(V4_A, 5060)),
    "LOOP AF_INET6": (108, lambda: struct.pack(">I", 24) + bytes(udp6()), Endpoint(V6_A, 5060)),
    "PPP": (9, lambda: b"\xff\x03\x00\x21" + bytes(udp4()), Endpoint(V4_A, 5060)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_encapsulation(tmp_path: Path, name: str) -> None:
    linktype, build, src = CASES[name]
    frame = build()
    packets, r = write_and_read(tmp_path, pcap_bytes(records([frame]), linktype=linktype))
    assert r.warnings == [], [str(w) for w in r.warnings]
    assert len(packets) == 1, (r.stats, frame.hex())
    (p,) = packets
    assert p.payload == SIP
    assert p.src == src
    assert p.dst.port == 5060
    assert p.transport is Transport.UDP
    assert (p.frame, p.frames, p.truncated) == (1, (1,), False)


def test_encapsulations_agree_with_tshark(tmp_path: Path, tshark: str) -> None:
    """One file per link type, every case in it: tshark marks the same frames as SIP."""
    by_linktype: dict[int, list[bytes]] = {}
    for linktype, build, _ in CASES.values():
        by_linktype.setdefault(linktype, []).append(build())
    for linktype, frames in by_linktype.items():
        rtp = b"\x80\x08\x00\x01" + b"\x00" * 172
        with_noise = [
            f for frame in frames for f in (frame, bytes(udp4(rtp)) if linktype in (101, 228) else None) if f
        ]
        path = tmp_path / f"lt{linktype}.pcap"
        path.write_bytes(pcap_bytes(records(with_noise), linktype=linktype))
        from tests.capture_util import read_all

        packets, _ = read_all(path)
        ours = sorted(p.frame for p in packets)
        out = run_tshark(tshark, ["-r", str(path), "-Y", "sip", "-T", "fields", "-e", "frame.number"])
        theirs = sorted(int(x) for x in out.split())
        assert ours == theirs, linktype


# --- what is not SIP is counted, never raised ---------------------------------------------------


def test_unknown_link_type_is_counted_and_warned_once() -> None:
    packets, d = decode_frames([b"\x01\x02\x03", b"\x04\x05"], linktype=147)
    assert packets == []
    assert d.stats.unsupported == {"link type 147": 2}
    assert len(d.warnings) == 1 and "link type 147" in d.warnings[0].message and d.warnings[0].frame == 1


def test_non_ip_frames_are_counted() -> None:
    frames = [
        bytes(ether() / ARP()),
        bytes(Ether(src=MAC_A, dst=MAC_B, type=0x88CC) / (b"\x02\x07\x04" + b"\x00" * 40)),  # LLDP
        bytes(
            Ether(src=MAC_A, dst=MAC_B, type=38) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / (b"\x00" * 35)
        ),  # STP
        bytes(ether() / IP(src=V4_A, dst=V4_B, proto=50) / (b"\x00" * 40)),  # ESP
        bytes(ether() / IPv6(src=V6_A, dst=V6_B, nh=50) / (b"\x00" * 40)),
        bytes(ether() / IP(src=V4_A, dst=V4_B, proto=132) / (b"\x00" * 40)),  # SCTP
        bytes(ether() / IP(src=V4_A, dst=V4_B, proto=89) / (b"\x00" * 40)),  # OSPF
        struct.pack("<I", 7) + b"\x00" * 20,  # NULL with an unknown address family: raw below
    ]
    packets, d = decode_frames(frames[:-1])
    assert packets == []
    assert d.stats.non_sip == {"ARP": 1, "other": 2, "ESP (encrypted)": 2, "SCTP": 1, "other IP": 1}
    assert d.warnings == []
    packets, d = decode_frames(frames[-1:], linktype=0)
    assert d.stats.non_sip == {"other": 1}


def test_malformed_packets_are_counted_warned_and_skipped() -> None:
    good = bytes(ether() / udp4())
    bad_ihl = bytearray(good)
    bad_ihl[14] = 0x43  # IHL 3 words
    bad_total = bytearray(good)
    bad_total[16:18] = b"\x00\x05"  # total length shorter than the header
    frames = [
        bytes(bad_ihl),
        good[:10],
        bytes(bad_total),
        good[:30],
        bytes(ether() / IPv6(nh=0) / b"\x11\x09"),
        good,
    ]
    packets, d = decode_frames(frames)
    assert [p.frame for p in packets] == [6]
    assert d.stats.unsupported == {"malformed IPv4": 3, "malformed Ethernet": 1, "malformed IPv6": 1}
    assert [w.frame for w in d.warnings] == [1, 2, 3, 4, 5]
    assert all("malformed" in w.message for w in d.warnings)


def test_tunnel_nesting_is_bounded() -> None:
    pkt = udp4()
    for _ in range(20):
        pkt = IP(src=OUTER_A, dst=OUTER_B, proto=4) / pkt
    packets, d = decode_frames([bytes(pkt)], linktype=101)
    assert packets == [] and "malformed tunnel" in d.stats.unsupported


def test_warnings_are_capped() -> None:
    d = Decoder(file="x", max_warnings=3)
    frames = [b"\x00" * 5] * 10
    decode_frames(frames, decoder=d)
    assert len(d.warnings) == 4
    assert d.warnings[-1].message == "7 more warnings not shown"
    assert d.stats.unsupported == {"malformed Ethernet": 10}


# --- payload boundaries -----------------------------------------------------------------------


def test_snaplen_cut_sip_is_flagged_truncated(tmp_path: Path) -> None:
    frame = bytes(ether() / udp4())
    cut = [Record(frame[:200], orig_len=len(frame)), Record(frame[:60], orig_len=len(frame))]
    ssdp = bytes(
        ether()
        / IP(src=V4_A, dst="239.255.255.250")
        / UDP(sport=1900, dport=1900)
        / b"NOTIFY * HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    cut.append(Record(ssdp[:60], orig_len=len(ssdp)))
    packets, r = write_and_read(tmp_path, pcap_bytes(cut))
    assert [p.frame for p in packets] == [1, 2]
    assert all(p.truncated for p in packets)
    assert packets[0].payload == SIP[: 200 - 42]
    assert packets[1].payload == SIP[:18]  # cut inside the Request-Line: still recognised
    assert r.stats.non_sip == {"other UDP": 1}


def test_ethernet_padding_and_trailing_octets() -> None:
    short = b"SIP/2.0 200 OK\r\n\r\n"
    padded = bytes(ether() / udp4(short)) + b"\x00" * 20  # Ethernet padding / FCS
    trailing = bytes(ether() / udp4(SIP + b"\x00\x01junk"))
    packets, _ = decode_frames([padded, trailing])
    assert [p.payload for p in packets] == [short, SIP + b"\x00\x01junk"]  # one datagram = one packet


def test_zero_length_payload_and_port_zero() -> None:
    frames = [
        bytes(ether() / IP(src=V4_A, dst=V4_B) / UDP(sport=0, dport=0)),
        bytes(ether() / IP(src=V4_A, dst=V4_B) / UDP(sport=0, dport=0) / SIP),
    ]
    packets, d = decode_frames(frames)
    assert [(p.frame, p.src.port, p.dst.port) for p in packets] == [(2, 0, 0)]
    assert d.stats.non_sip == {"other UDP": 1}


def test_fcs_flag_in_pcap_link_type_field(tmp_path: Path) -> None:
    # draft-ietf-opsawg-pcap §4: the F bit and FCS length sit in the upper bits of LinkType.
    frame = bytes(ether() / udp4()) + b"\xde\xad\xbe\xef"
    packets, r = write_and_read(tmp_path, pcap_bytes(records([frame]), linktype=0x10000000 | (2 << 29) | 1))
    assert r.linktype == 1
    assert [p.payload for p in packets] == [SIP]


def test_feed_accepts_a_record_inside_a_larger_buffer() -> None:
    frame = bytes(ether() / udp4())
    buf = b"\xff" * 7 + frame + b"\xee" * 9
    d = Decoder(file="f")
    (p,) = d.feed(1, 1.5, 1, buf, len(frame), 7, 7 + len(frame))
    assert p.payload == SIP and p.timestamp == 1.5 and p.file == "f"
