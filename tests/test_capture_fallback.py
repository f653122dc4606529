"""Link types the fast path does not read itself go through scapy's dissectors."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.dot11 import Dot11, RadioTap
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import LLC, SNAP

from sipflow.capture import fallback
from sipflow.capture.types import Endpoint
from tests.capture_util import decode_frames, pcap_bytes, records, sip_request, write_and_read
from tests.conftest import run_tshark

SIP = sip_request()
INNER = IP(src="192.0.2.10", dst="192.0.2.20") / UDP(sport=5060, dport=5062) / SIP
WIFI = Dot11(type=2, subtype=0, addr1="02:00:00:00:00:0b", addr2="02:00:00:00:00:0a") / LLC() / SNAP() / INNER

CASES = {
    "802.11": (105, bytes(WIFI)),
    "radiotap": (127, bytes(RadioTap() / WIFI)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sip_inside_a_link_type_only_scapy_knows(case: str) -> None:
    linktype, frame = CASES[case]
    assert fallback.can_dissect(linktype)
    packets, decoder = decode_frames([frame, b"\x00\x01junk"], linktype=linktype)
    assert [p.payload for p in packets] == [SIP]
    assert packets[0].src == Endpoint("192.0.2.10", 5060) and packets[0].dst == Endpoint("192.0.2.20", 5062)
    assert decoder.stats.unsupported == {}
    assert decoder.warnings == []


def test_agrees_with_tshark_on_radiotap(tmp_path: Path, tshark: str) -> None:
    linktype, frame = CASES["radiotap"]
    packets, _ = write_and_read(tmp_path, pcap_bytes(records([frame, frame]), linktype=linktype))
    out = run_tshark(
        tshark, ["-r", str(tmp_path / "t.pcap"), "-Y", "sip", "-T", "fields", "-e", "frame.number"]
    )
    assert [p.frame for p in packets] == [int(n) for n in out.split()] == [1, 2]


def test_a_link_type_nobody_knows_is_counted_once() -> None:
    assert not fallback.can_dissect(147)  # LINKTYPE_USER0
    _, decoder = decode_frames([b"abc", b"def"], linktype=147)
    assert decoder.stats.unsupported == {"link type 147": 2}
    assert len(decoder.warnings) == 1
