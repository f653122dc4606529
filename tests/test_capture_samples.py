"""The capture layer over every public sample capture, against tshark's ground truth and scapy.

``ground_truth.json`` (tshark 4.0, default preferences) lists per file the SIP message count
and every frame carrying SIP with its number of request/status lines. The capture layer must
yield exactly one packet per SIP message, at exactly those frames; where it rightly differs,
or the transport belongs to a later issue, ``EXPECTED_DIFFERENCES`` says what is asserted.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import scapy.all  # noqa: F401  # every layer: the samples use PPPoE, SLL, NULL...
from scapy.config import conf
from scapy.layers.inet import UDP
from scapy.utils import RawPcapReader

from sipflow.capture.types import Transport
from tests.capture_util import SAMPLES, read_all

pytestmark = pytest.mark.skipif(
    not (SAMPLES / "ground_truth.json").is_file(), reason="shared captures not present"
)

# Frames of sip_tcp_websocket.pcap whose SIP travels in WebSocket frames over TCP 8080
# (tshark: "tcp.port == 8080 && sip"); the other SIP frames of the file are plain UDP.
WEBSOCKET_FRAMES = frozenset({11, 13, 15, 18, 19, 24, 34, 46, 49, 52, 56})

EXPECTED_DIFFERENCES = {
    # Encrypted: no packet, one warning pointing to tshark and a key log file, and the TLS
    # conversations counted as not decoded.
    "tlssaved.pcap": "TLS",
}


@cache
def ground_truth() -> dict[str, dict[str, Any]]:
    data = json.loads((SAMPLES / "ground_truth.json").read_text())
    return {entry["file"]: entry for entry in data["files"]}


def sample_names() -> list[str]:
    if not (SAMPLES / "ground_truth.json").is_file():
        return []
    return sorted(ground_truth())


@pytest.mark.parametrize("name", sample_names())
def test_sample_matches_tshark(name: str) -> None:
    gt = ground_truth()[name]
    packets, reader = read_all(SAMPLES / name)
    stats = reader.stats
    assert stats.frames == int(gt["frame_count"])
    if name == "tlssaved.pcap":
        assert packets == [] and not stats.truncated
        assert stats.unsupported == {"TLS conversations (encrypted)": 2}  # tshark -z conv,tcp: two
        assert [w.message.split(";")[0] for w in reader.warnings] == [
            "2 TLS conversations not decoded (encrypted)"
        ]
        return
    warnings = reader.warnings
    if name == "sip_ipv6_udp.pcap":
        # Its six records are years apart (2012 to 2092, as tshark's frame.time_epoch shows):
        # each step is said, with its frame.
        assert [(w.frame, w.message.startswith("the capture time jumps")) for w in warnings] == [
            (frame, True) for frame in range(2, 7)
        ]
        warnings = []
    assert not stats.truncated and warnings == [], [str(w) for w in warnings]
    assert stats.unsupported == {}
    assert stats.sip_packets == len(packets)

    # tshark: how many messages each SIP frame carries (request lines + status lines)
    expected = Counter({f[0]: f[4] + f[5] for f in gt["sip_frames"]})
    assert sum(expected.values()) == int(gt["tshark_sip_messages"])
    ours = Counter(p.frame for p in packets)

    if name == "sip_sctp.pcap":
        assert {p.transport for p in packets} == {Transport.SCTP}
        assert packets[0].frames == (1, 2)  # two DATA fragments joined (RFC 9260 §6.9)
    if name == "sip_tcp_websocket.pcap":
        assert {p.frame for p in packets if p.transport is Transport.WS} == WEBSOCKET_FRAMES
        assert {p.transport for p in packets} == {Transport.UDP, Transport.WS}

    assert ours == expected
    assert len(packets) == int(gt["tshark_sip_messages"])
    for p in packets:
        assert p.frame == p.frames[-1] and p.frames == tuple(sorted(p.frames))
        assert p.file == str(SAMPLES / name)
        assert not p.truncated
    # Packets come in capture order.
    assert [p.frame for p in packets] == sorted(p.frame for p in packets)


def test_sample_transports() -> None:
    tcp, _ = read_all(SAMPLES / "sip_ipv4_tcp.pcap")
    assert {p.transport for p in tcp} == {Transport.TCP}
    assert str(tcp[0].src) == "10.33.6.100:64802" and str(tcp[0].dst) == "10.33.6.101:5060"
    v6, _ = read_all(SAMPLES / "sip_ipv6_udp.pcap")
    assert v6[0].src.host.startswith(("fe80::", "fec0::"))


def test_tls_capture_counts_encrypted_traffic() -> None:
    packets, reader = read_all(SAMPLES / "tlssaved.pcap")
    assert packets == []
    assert reader.stats.non_sip == {"TLS": 12}


def test_junk_before_request_line() -> None:
    """sip-junk-before-request.pcap: what looks like junk is the UDP checksum.

    Its description says frame 2's payload "starts with junk ('DB') before 'REGISTER'". It does
    not: a hex dump shows ``44 42`` ("DB") right before ``REGISTER``, but those two octets are
    the UDP checksum (0x4442); the UDP length (60) leaves a 52-octet payload that starts with
    ``REGISTER sip:1.1.1.1:5060 SIP/2.0``. So tshark is right to count one REGISTER, and so
    do we: frame 2 is yielded unchanged (the SIP layer then finds no Call-ID/CSeq and reports a
    malformed message). Frame 1 (four NUL octets to port 5060) is not SIP: "other UDP".

    Had the octets been in the payload, ``DBREGISTER`` would still be a valid ``token``, i.e.
    an extension method (RFC 3261 §25.1), and the datagram would be yielded as it is: the
    capture layer never strips or rewrites a payload.
    """
    packets, reader = read_all(SAMPLES / "sip-junk-before-request.pcap")
    assert [p.frame for p in packets] == [2]
    assert packets[0].payload == b"REGISTER sip:1.1.1.1:5060 SIP/2.0\r\nExpires: 3600\r\n\r\n"
    assert reader.stats.non_sip == {"other UDP": 1}
    raw = (SAMPLES / "sip-junk-before-request.pcap").read_bytes()
    assert raw.endswith(b"\x00\x3cDB" + packets[0].payload)  # UDP length 60, checksum "DB"


# --- scapy as the reference dissector ------------------------------------------------------------


def scapy_udp_payloads(path: Path, frames: set[int]) -> dict[int, bytes]:
    """UDP payloads of the given frames as scapy dissects them."""
    out: dict[int, bytes] = {}
    reader = RawPcapReader(str(path))
    try:
        for number, (raw, meta) in enumerate(reader, start=1):
            if number not in frames:
                continue
            linktype = getattr(meta, "linktype", None)
            if linktype is None:
                linktype = reader.linktype
            pkt = conf.l2types.num2layer[linktype](raw)
            if UDP in pkt:
                out[number] = bytes(pkt[UDP].payload)
    finally:
        reader.close()
    return out


@pytest.mark.parametrize("name", sample_names())
def test_udp_payloads_match_scapy(name: str) -> None:
    packets, _ = read_all(SAMPLES / name)
    sip_frames = {f[0] for f in ground_truth()[name]["sip_frames"]}
    reference = scapy_udp_payloads(SAMPLES / name, sip_frames)
    ours = {p.frame: p.payload for p in packets if p.transport is Transport.UDP}
    assert len(ours) == sum(1 for p in packets if p.transport is Transport.UDP)  # one per frame
    assert ours == reference
