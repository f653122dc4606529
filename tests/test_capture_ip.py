"""IPv4/IPv6 fragment reassembly and IPv6 extension headers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, fragment6

from sipflow.capture.decode import Decoder
from sipflow.capture.ip import FragmentReassembler, MalformedHeader, format_address, walk_ipv6_extensions
from sipflow.capture.types import Transport
from tests.capture_util import big_invite, decode_frames, ether, pcap_bytes, read_all, records
from tests.conftest import run_tshark

INVITE = big_invite(4000)


def v4_fragments(payload: bytes = INVITE, ident: int = 0x1234, size: int = 1000) -> list[bytes]:
    pkt = IP(src="192.0.2.1", dst="192.0.2.2", id=ident) / UDP(sport=5060, dport=5060) / payload
    return [bytes(ether() / f) for f in fragment(pkt, fragsize=size)]


def v6_fragments(payload: bytes = INVITE, ident: int = 77, size: int = 1280) -> list[bytes]:
    pkt = (
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrFragment(id=ident)
        / IPv6ExtHdrDestOpt()
        / UDP(sport=5060, dport=5060)
        / payload
    )
    return [bytes(ether() / f) for f in fragment6(pkt, size)]


def test_ipv4_fragments_out_of_order_with_duplicate(tmp_path: Path, tshark: str) -> None:
    frags = v4_fragments()
    assert len(frags) >= 4
    order = [frags[-1], frags[0], *frags[2:-1], frags[0], frags[1]]  # with a duplicate of the first
    path = tmp_path / "frag4.pcap"
    path.write_bytes(pcap_bytes(records(order)))
    packets, r = read_all(path)
    assert len(packets) == 1
    (p,) = packets
    assert p.payload == INVITE
    assert p.frames == tuple(range(1, len(order) + 1)) and p.frame == len(order)
    assert p.src.host == "192.0.2.1" and p.transport is Transport.UDP and not p.truncated
    assert r.stats.non_sip == {} and r.warnings == []
    out = run_tshark(tshark, ["-r", str(path), "-Y", "sip", "-T", "fields", "-e", "frame.number"])
    assert [int(x) for x in out.split()] == [p.frame]


def test_ipv6_fragments_out_of_order_after_extension_headers(tmp_path: Path, tshark: str) -> None:
    frags = v6_fragments()
    assert len(frags) >= 4
    shuffled = frags[:]
    random.Random(5).shuffle(shuffled)
    path = tmp_path / "frag6.pcap"
    path.write_bytes(pcap_bytes(records(shuffled)))
    packets, r = read_all(path)
    assert [p.payload for p in packets] == [INVITE]
    assert packets[0].frames == tuple(range(1, len(frags) + 1))
    assert packets[0].src.host == "2001:db8::1"
    assert r.warnings == []
    out = run_tshark(tshark, ["-r", str(path), "-Y", "sip", "-T", "fields", "-e", "frame.number"])
    assert [int(x) for x in out.split()] == [packets[0].frame]


def test_overlapping_fragments_first_copy_wins() -> None:
    r = FragmentReassembler()
    assert r.add("k", 8, True, b"BBBBBBBB", 2, 0.0) == (None, [])
    assert r.add("k", 4, True, b"xxxxxxxx", 3, 0.0) == (None, [])  # overlaps both neighbours
    done, dropped = r.add("k", 0, True, b"AAAAAAAA", 1, 0.0)
    assert done is None and dropped == []
    done, _ = r.add("k", 16, False, b"CC", 4, 0.0)
    assert done is not None
    assert done.payload == b"AAAAxxxxBBBBBBBBCC"  # each octet from the first fragment that carried it
    assert done.overlapping
    assert done.frames == (2, 3, 1, 4)
    assert len(r) == 0


def test_identical_duplicates_are_not_overlaps() -> None:
    r = FragmentReassembler()
    r.add("k", 0, True, b"12345678", 1, 0.0)
    r.add("k", 0, True, b"12345678", 2, 0.0)
    done, _ = r.add("k", 8, False, b"9", 3, 0.0)
    assert done is not None and done.payload == b"123456789" and not done.overlapping


def test_fragments_expire_by_capture_time() -> None:
    frags = v4_fragments()
    d = Decoder(file="t")
    out = []
    for i, f in enumerate(frags[:-1], start=1):
        out += d.feed(i, 100.0 + i, 1, f, len(f))
    out += d.feed(10, 200.0, 1, frags[-1], len(frags[-1]))  # 95 s later: the rest expired
    out += d.finish()
    assert out == []
    n = len(frags)
    assert d.stats.non_sip == {"IP fragment": n}
    assert [w.frame for w in d.warnings] == [n - 1, 10]
    assert "expired" in d.warnings[0].message
    assert "frames " + ", ".join(map(str, range(1, n))) in d.warnings[0].message
    assert "capture ended" in d.warnings[1].message


def test_pending_datagrams_are_bounded() -> None:
    r = FragmentReassembler(max_pending=100, max_bytes=10_000)
    dropped_total = 0
    for i in range(1000):
        done, dropped = r.add(i, 0, True, b"x" * 64, i, 0.0)
        assert done is None
        dropped_total += len(dropped)
        assert len(r) <= 100
    assert dropped_total >= 900
    assert r.add("big", 65528, True, b"x" * 70000, 1, 0.0)[0] is None  # beyond any datagram: dropped
    assert "big" not in [d.key for d in r.drain()]


def test_non_sip_fragments_and_tcp_in_fragments() -> None:
    rtp = (
        IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=40000, dport=40002) / (b"\x80\x00" + b"\x00" * 3000)
    )
    frags = [bytes(ether() / f) for f in fragment(rtp, fragsize=1000)]
    packets, d = decode_frames(frags)
    assert packets == []
    assert d.stats.non_sip == {"RTP": 1, "IP fragment": len(frags) - 1}


def test_snaplen_cut_fragment_cannot_complete(tmp_path: Path) -> None:
    from tests.capture_util import Record

    frags = v4_fragments()
    recs = [Record(f) for f in frags]
    recs[1] = Record(frags[1][:200], orig_len=len(frags[1]))
    packets, r = read_all_bytes(tmp_path, pcap_bytes(recs))
    assert packets == []
    assert any("snapshot length" in w.message for w in r.warnings)


def read_all_bytes(tmp_path: Path, data: bytes):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.pcap"
    path.write_bytes(data)
    return read_all(path)


def test_ipv6_atomic_fragment_is_processed_alone() -> None:
    pkt = (
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrFragment(id=9, m=0, offset=0)
        / UDP(sport=5060, dport=5060)
        / b"SIP/2.0 200 OK\r\n\r\n"
    )
    packets, _ = decode_frames([bytes(ether() / pkt)])
    assert [p.payload for p in packets] == [b"SIP/2.0 200 OK\r\n\r\n"]


# --- IPv6 extension headers ----------------------------------------------------------------------


def test_walk_ipv6_extensions() -> None:
    hbh = bytes([60, 0]) + b"\x01\x04\x00\x00\x00\x00"  # next: dest opts, 8 octets
    dst = bytes([51, 1]) + b"\x01\x0c" + b"\x00" * 12  # next: AH, 16 octets
    ah = bytes([17, 4, 0, 0]) + b"\x00" * 20  # next: UDP, (4 + 2) * 4 = 24 octets
    data = hbh + dst + ah + b"UDP!"
    assert walk_ipv6_extensions(data, 0, 0, len(data)) == (17, 48, None)
    frag = bytes([17, 0, 0x01, 0x41]) + (1234).to_bytes(4, "big")
    nh, off, info = walk_ipv6_extensions(hbh[:0] + bytes([44, 0]) + hbh[2:] + frag, 0, 0, 16)
    assert (nh, off) == (44, 16)
    assert info is not None and (info.next_header, info.offset, info.more, info.ident) == (
        17,
        0x140,
        True,
        1234,
    )
    assert walk_ipv6_extensions(b"", 50, 0, 0)[0] == 50  # ESP stops the walk
    with pytest.raises(MalformedHeader):
        walk_ipv6_extensions(bytes([17, 9]) + b"\x00" * 6, 0, 0, 8)  # length runs past the end
    with pytest.raises(MalformedHeader):
        walk_ipv6_extensions(b"\x00" * 4, 0, 0, 4)


def test_format_address() -> None:
    assert format_address(bytes([192, 0, 2, 1])) == "192.0.2.1"
    assert format_address(bytes.fromhex("20010db8000000000000000000000001")) == "2001:db8::1"
    assert format_address(bytes.fromhex("fe800000000000000000000000000000")) == "fe80::"
