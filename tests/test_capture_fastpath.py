"""The compiled fast path (``sipflow/capture/_fastpath.c``) against the Python decoder.

Runs of RTP/RTCP records are counted in C without a call per frame, and plain SIP datagrams
become packets there (``SipMaker``); every other record goes through ``Decoder.feed``.
Whatever the capture, the packets, the statistics and the warnings must be those of the
Python path: every sample and shared capture, and crafted records that sit
on each side of every test of the fast path, in every record format, across read chunks.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q

from sipflow.capture import decode
from sipflow.capture import reader as reader_module
from sipflow.capture.reader import CaptureReader
from sipflow.capture.sink import CollectingSink
from tests.capture_util import (
    Interface,
    Record,
    Section,
    ether,
    pcap_bytes,
    pcapng_bytes,
    records,
    sip_request,
    sip_response,
)
from tests.conftest import sample_captures, shared_captures

pytestmark = pytest.mark.skipif(
    not decode.COMPILED and not os.environ.get("SIPFLOW_REQUIRE_COMPILED"),
    reason="the compiled fast path was not built (no C compiler at install)",
)


def test_the_fast_path_is_built_where_required() -> None:
    assert decode.COMPILED, "SIPFLOW_REQUIRE_COMPILED is set but sipflow.capture._fastpath was not built"


def read_both(path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> tuple[object, object]:
    """(packets, stats, warnings) compiled and in Python."""
    results = []
    for fast in (decode._fast, None):
        monkeypatch.setattr(decode, "_fast", fast)
        with CaptureReader(path) as reader:
            packets = list(reader)
        results.append((packets, reader.stats, reader.warnings, reader.seen_interfaces))
    monkeypatch.undo()
    return results[0], results[1]


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_every_capture_reads_the_same(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = read_both(path, monkeypatch)
    assert fast == slow


def rtp(pt: int = 8, seq: int = 1, size: int = 160) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq, seq * 160, 0x1234ABCD) + b"\xd5" * size


def udp(payload: bytes, sport: int = 40000, dport: int = 40002, **ip: object) -> bytes:
    return bytes(
        ether() / IP(src="192.0.2.1", dst="192.0.2.2", **ip) / UDP(sport=sport, dport=dport) / payload
    )


def edge_frames() -> list[bytes]:
    """Frames on either side of each of the fast path's tests, SIP among them."""
    frames = [
        udp(rtp()),  # on the fast path
        udp(rtp(pt=200)),  # RTCP sender report (packet type 200)
        udp(rtp(pt=50)),  # an unassigned payload type: not RTP
        udp(rtp(pt=96 | 0x80)),  # marker bit and a dynamic type
        udp(rtp(), sport=53),  # DNS
        udp(rtp(), dport=5353),  # mDNS
        udp(rtp(), sport=1023),  # a privileged port
        udp(rtp(), flags="MF"),  # a first fragment
        udp(rtp(), frag=10),  # a later fragment
        udp(rtp(), options=b"\x01\x01\x01\x00"),  # IP options (IHL 6)
        udp(b"\x7f" + rtp()[1:]),  # version 1
        udp(b"\xc0" + rtp()[1:]),  # version 3
        udp(rtp(size=0)),  # a bare header (frame of 54 octets)
        udp(rtp(size=0))[:53],  # one octet short of the fast path's minimum
        udp(sip_request()),
        udp(rtp()),
        bytes(
            ether()
            / Dot1Q(vlan=5)
            / IP(src="192.0.2.1", dst="192.0.2.2")
            / UDP(sport=40000, dport=40002)
            / rtp()
        ),
        bytes(ether() / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=40000, dport=5060, flags="S")),
        udp(sip_response()),
        udp(rtp()),
        udp(rtp()),
        udp(rtp(), ttl=1)[:20],  # cut inside the IP header
    ]
    return (
        frames
        + sip_edge_frames()
        + [udp(rtp(seq=i)) for i in range(50)]
        + [udp(sip_request(call_id="second@x"))]
    )


def sip_edge_frames() -> list[bytes]:
    """SIP datagrams on either side of each test of the compiled ``SipMaker`` path."""
    request, response = sip_request(), sip_response()
    plain = udp(request, sport=5060, dport=5060)
    ip_at = 14
    return [
        plain,  # on the SIP fast path
        udp(response, sport=5060, dport=5062),
        udp(request, sport=53, dport=5060),  # ports do not matter for SIP
        udp(request, flags="MF"),  # a first fragment: Python's
        udp(request, frag=10),
        udp(request, options=b"\x01\x01\x01\x00"),  # IP options (IHL 6)
        plain + b"\x00" * 7,  # Ethernet padding after the IP datagram
        plain[:-5],  # the IP datagram longer than the capture (snapshot length)
        plain[: ip_at + 2] + b"\x00\x00" + plain[ip_at + 4 :],  # IP total length 0 (TSO)
        plain[: ip_at + 2] + b"\x00\x10" + plain[ip_at + 4 :],  # total length below the header's
        plain[: ip_at + 24] + b"\x00\x04" + plain[ip_at + 26 :],  # UDP length below 8
        plain[: ip_at + 24] + b"\xff\xf0" + plain[ip_at + 26 :],  # UDP length beyond the datagram
        plain[: ip_at + 24] + b"\x00\x30" + plain[ip_at + 26 :],  # UDP length inside it
        udp(b"SIP/2.0 200\r\nVia: x\r\n\r\n"),  # a status line without reason phrase
        udp(b"SIP/2.0 200\n\r\n"),
        udp(b"SIP/2.0 20"),
        udp(b"sip/2.0 180 Ringing\r\n\r\n"),
        udp(b"INVITE sip:b@h sip/2.0\r\n\r\n"),
        udp(b"INVITE sip:b@h SIP/2.0\n\n"),  # bare LF
        udp(b"INVITE sip:b@h SIP/2.0"),  # no line end
        udp(b"INVITE  sip:b@h SIP/2.0\r\n\r\n"),
        udp(b"INVITE sip:b@h  SIP/2.0\r\n\r\n"),
        udp(b"INVITE sip:b\x00@h SIP/2.0\r\n\r\n"),
        udp(b"INV\xc9TE sip:b@h SIP/2.0\r\n\r\n"),
        udp(b"NOTIFY * HTTP/1.1\r\n\r\n"),
        udp(b"\r\nINVITE sip:b@h SIP/2.0\r\n\r\n"),  # CRLF before the start line
        udp(b""),
        bytes(
            ether()
            / Dot1Q(vlan=5)
            / IP(src="192.0.2.1", dst="192.0.2.2")
            / UDP(sport=5060, dport=5060)
            / request
        ),
        udp(request, sport=5060, dport=4789),  # the VXLAN port: SIP still
        udp(response, sport=5060, dport=5060)[:60],  # cut inside the SIP
    ]


def test_crafted_records_in_every_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = edge_frames()
    recs = records(frames)
    files = {
        "le.pcap": pcap_bytes(recs),
        "be.pcap": pcap_bytes(recs, big_endian=True),
        "ns.pcap": pcap_bytes(recs, nanosecond=True),
        "cut.pcap": pcap_bytes(recs)[:-30],  # the last record cut short
        "le.pcapng": pcapng_bytes([Section(interfaces=[Interface(1)], blocks=epbs(frames, 0))]),
        "be.pcapng": pcapng_bytes(
            [Section(big_endian=True, interfaces=[Interface(1)], blocks=epbs(frames, 0))]
        ),
        # Interface 1 is raw IP (not on the fast path); SPBs inherit the last EPB's timestamp;
        # a second section starts its interface numbering again.
        "mixed.pcapng": pcapng_bytes(
            [
                Section(
                    interfaces=[Interface(1, tsresol=9), Interface(101)],
                    blocks=[
                        *epbs(frames[:30], 0),
                        ("epb", (1, 5_000, udp(rtp())[14:], None)),
                        *epbs(frames[30:40], 0),
                        ("spb", (udp(sip_request(call_id="spb@x")), None)),
                        ("epb", (7, 6_000, udp(rtp()), None)),  # an interface never described
                        *epbs(frames[40:], 0),
                    ],
                ),
                Section(interfaces=[Interface(101), Interface(1)], blocks=epbs(frames, 1)),
            ]
        ),
    }
    files["modified.pcap"] = modified_pcap(recs)
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        fast, slow = read_both(path, monkeypatch)
        assert fast == slow, name
        for chunk in (97, 1000):
            monkeypatch.setattr(reader_module, "CHUNK", chunk)
            fast_small, slow_small = read_both(path, monkeypatch)
            assert fast_small == slow_small == slow, (name, chunk)


def epbs(frames: list[bytes], iface: int) -> list[tuple[str, tuple[object, ...]]]:
    return [("epb", (iface, 1_700_000_000_000_000 + 20_000 * i, f, None)) for i, f in enumerate(frames)]


def modified_pcap(recs: list[Record]) -> bytes:
    """Kuznetzov's modified pcap: 24-octet record headers (ifindex, protocol, type, pad)."""
    out = [struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 262144, 1)]
    for r in recs:
        out.append(struct.pack("<IIII", r.sec, r.frac, len(r.data), len(r.data)) + b"\0" * 8 + r.data)
    return b"".join(out)


def test_a_long_random_capture_reads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(4571)
    pool = edge_frames()
    frames = [pool[rng.randrange(len(pool))] if rng.random() < 0.3 else udp(rtp(seq=i)) for i in range(5000)]
    path = tmp_path / "random.pcap"
    path.write_bytes(pcap_bytes(records(frames)))
    fast, slow = read_both(path, monkeypatch)
    assert fast == slow
    assert slow[1].non_sip["RTP"] > 3000  # type: ignore[index]


def test_a_sink_turns_the_fast_path_off(tmp_path: Path) -> None:
    # A sink must see every RTP payload, so no run may be counted past it.
    path = tmp_path / "t.pcap"
    frames = edge_frames()
    path.write_bytes(pcap_bytes(records(frames)))
    sink = CollectingSink()
    with CaptureReader(path, sink=sink) as reader:
        list(reader)
    assert sum(1 for d in sink.datagrams if d[0] == "RTP") == reader.stats.non_sip["RTP"]


def test_sipflow_pure_python_turns_it_off() -> None:
    code = "import sipflow.capture.decode as d; print(d.COMPILED)"
    env = {**os.environ, "SIPFLOW_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_plain_sip_datagrams_are_made_in_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SIP fast path is taken (not only agreed with): of the crafted SIP datagrams, those
    on it come out of ``skip_pcap``, the others out of ``Decoder.feed``."""
    path = tmp_path / "sip.pcap"
    path.write_bytes(pcap_bytes(records(sip_edge_frames())))
    made: list[int] = []
    original = decode.Decoder.skip_pcap

    def spy(self: decode.Decoder, *args: object) -> tuple[int, int, list[object]]:
        pos, frames, packets = original(self, *args)  # type: ignore[arg-type]
        made.extend(p.frame for p in packets)  # type: ignore[attr-defined]
        return pos, frames, packets

    monkeypatch.setattr(decode.Decoder, "skip_pcap", spy)
    with CaptureReader(path) as reader:
        frames = [p.frame for p in reader]
    # Frame by frame (sip_edge_frames): the plain request and response, port 53, IP options,
    # padding, a UDP length below 8 (the IP length counts), a status line without reason, a
    # lower-case version in a status and a request line, a bare LF, the VXLAN port.
    assert made == [1, 2, 3, 6, 7, 11, 14, 17, 18, 19, 29]
    assert set(made) < set(frames)
