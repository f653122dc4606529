"""Payload sinks: the decoder hands every payload that carries no SIP to a sink, exactly what it
counts, cut where the UDP and IP lengths say, and changes nothing else."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapReader

from sipflow.capture import detect
from sipflow.capture.decode import Decoder
from sipflow.capture.ip import format_address
from sipflow.capture.reader import CaptureReader
from sipflow.capture.sink import CollectingSink
from tests.capture_util import MAC_A, MAC_B, decode_frames, sip_request, udp_frame
from tests.conftest import SHARED_CAPTURES, sample_captures, shared_captures

UDP_KINDS = (
    detect.RTP, detect.RTCP, detect.STUN, detect.DTLS, detect.DNS, detect.SIP_KEEPALIVE, detect.OTHER_UDP,
)  # fmt: skip

RTP = struct.pack("!BBHII", 0x80, 8, 4711, 160_000, 0x1234ABCD) + b"\xd5" * 160


def eth() -> Ether:
    return Ether(src=MAC_A, dst=MAC_B)


def collect(frames: list[bytes], linktype: int = 1) -> tuple[CollectingSink, Decoder]:
    sink = CollectingSink()
    _, decoder = decode_frames(frames, linktype, Decoder(file="test", sink=sink))
    return sink, decoder


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_the_sink_sees_exactly_what_is_counted_and_changes_nothing(path: Path) -> None:
    sink = CollectingSink()
    with CaptureReader(path, sink=sink) as reader:
        with_sink = list(reader)
    with CaptureReader(path) as plain:
        without = list(plain)
    assert with_sink == without
    assert reader.stats == plain.stats
    assert reader.warnings == plain.warnings
    seen = Counter(d[0] for d in sink.datagrams)
    counted = {k: plain.stats.non_sip.get(k, 0) for k in UDP_KINDS}
    assert {k: seen.get(k, 0) for k in UDP_KINDS} == counted
    assert set(seen) <= set(UDP_KINDS)
    frames = [d[1] for d in sink.datagrams]
    assert frames == sorted(frames)  # capture order


@pytest.mark.skipif(not (SHARED_CAPTURES / "rtp_rtcp_sip_ipv4_udp.pcap").is_file(), reason="needs ../shared")
@pytest.mark.parametrize("name", ["rtp_rtcp_sip_ipv4_udp.pcap", "h263-over-rtp.pcap", "voip-extension.pcap"])
def test_each_payload_is_scapys_udp_payload(name: str) -> None:
    path = SHARED_CAPTURES / name
    if not path.is_file():
        pytest.skip(f"{name} not in ../shared")
    sink = CollectingSink()
    with CaptureReader(path, sink=sink) as reader:
        list(reader)
    by_frame = {d[1]: d for d in sink.datagrams}
    checked = 0
    with PcapReader(str(path)) as packets:
        for number, pkt in enumerate(packets, start=1):
            got = by_frame.pop(number, None)
            if not pkt.haslayer(UDP) or pkt.haslayer("IPerror") or pkt.haslayer("IPerror6"):
                continue
            ip = pkt[IP] if pkt.haslayer(IP) else pkt[IPv6]
            udp = pkt[UDP]
            # The octets as captured (``original``): bytes() would re-encode what scapy dissects (SNMP).
            body = udp.payload.original or b""
            payload = body[: max(udp.len - 8, 0)] if udp.len else body
            if detect.is_sip_start(payload, 0, len(payload)):
                continue
            if isinstance(ip, IP) and (ip.flags.MF or ip.frag):
                continue
            assert got is not None, f"frame {number}: no datagram for the sink"
            kind, _frame, ts, src, sport, dst, dport, data = got
            assert (format_address(src), sport, format_address(dst), dport) == (
                ip.src, udp.sport, ip.dst, udp.dport,
            )  # fmt: skip
            assert data == payload, f"frame {number}"
            assert kind == detect.classify_udp(payload, 0, len(payload), sport, dport)
            assert ts == pytest.approx(float(pkt.time), abs=1e-6)
            checked += 1
    assert checked > 20
    assert not by_frame  # nothing handed over that scapy does not see as UDP


def test_fast_path_and_ordinary_path_cut_the_payload_alike() -> None:
    # Ethernet padding after a short datagram, a UDP length shorter than the IP payload, and a
    # frame cut by the snapshot length: on the fast path (plain IPv4) and through VLAN tags
    # (the ordinary path) the sink gets the same octets.
    from scapy.layers.l2 import Dot1Q

    short = bytes(eth() / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=40000, dport=40002) / RTP[:12])
    padded = short + b"\0" * 20
    ulen = bytearray(
        bytes(eth() / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=40000, dport=40002) / RTP)
    )
    struct.pack_into("!H", ulen, 38, 8 + 100)  # the UDP length says 100 octets of payload
    fix = bytes(ulen)
    full = udp_frame(RTP, 40000, 40002)
    tagged = [bytes(Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=7) / Ether(f)[IP]) for f in (padded, fix, full)]
    sink, _ = collect([padded, fix, full])
    vsink, _ = collect(tagged)
    assert [d[7] for d in sink.datagrams] == [RTP[:12], RTP[:100], RTP]
    assert [d[7] for d in vsink.datagrams] == [RTP[:12], RTP[:100], RTP]
    assert [d[0] for d in sink.datagrams] == [detect.RTP] * 3

    # Cut by the snapshot length: what was captured.
    sink = CollectingSink()
    d = Decoder(file="t", sink=sink)
    d.feed(1, 1.0, 1, full, len(full) + 0, 0, 100)
    assert sink.datagrams[0][7] == full[42:100]


def test_ipv6_fragmented_and_rtcp_payloads() -> None:
    v6 = bytes(eth() / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=30000, dport=30001) / RTP)
    rtcp = struct.pack("!BBHI", 0x81, 200, 6, 0x1234ABCD) + b"\0" * 20
    rr = bytes(eth() / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=30001, dport=30003) / rtcp)
    big = IP(src="192.0.2.1", dst="192.0.2.2", id=99) / UDP(sport=40000, dport=40002) / Raw(RTP * 10)
    frags = [bytes(eth() / f) for f in fragment(big, fragsize=600)]
    assert len(frags) > 1
    sink, decoder = collect([v6, rr, *frags, udp_frame(sip_request())])
    kinds = [
        (k, f, format_address(s), sp, format_address(t), dp) for k, f, _ts, s, sp, t, dp, _d in sink.datagrams
    ]
    assert kinds == [
        (detect.RTP, 1, "2001:db8::1", 30000, "2001:db8::2", 30001),
        (detect.RTCP, 2, "192.0.2.1", 30001, "192.0.2.2", 30003),
        (detect.RTP, 2 + len(frags), "192.0.2.1", 40000, "192.0.2.2", 40002),
    ]
    assert sink.datagrams[2][7] == RTP * 10
    assert decoder.stats.sip_packets == 1
