"""HEP3 made by real software: Kamailio's ``siptrace`` mirroring a proxy's SIP over UDP and TCP.

``samples/make-hep-samples.sh`` runs two calls (answered with SDP, rejected 486) alice → Kamailio
→ bob on loopback, twice: once with ``siptrace`` sending HEP3 datagrams to a collector
(``hep-udp.pcap``), once with HEP3 over one TCP connection (``hep-tcp.pcap``). Those captures
hold only the collector port, so their SIP can only come from decoding HEP. Each run also has a
capture of the SIP port (``hep-*-direct.pcap``): the reference. ``siptrace`` runs in
``trace_mode`` 1, the core's receive and send events, and every SIP message of the run has the
proxy at one end, so the HEP capture carries exactly the messages of the SIP port, byte for byte,
with their addresses; its times are the proxy's clock when it traced each message, a fraction of
a millisecond after tcpdump's.

tshark 4.0 (Debian 12) has no HEP dissector (``tshark -G protocols`` lists none), so it cannot
decode the HEP captures: the tshark cross-checks here read the outer payloads (UDP datagrams, the
TCP stream) with tshark and the HEP3 chunks with a few lines of this file, and compare sipflow's
HEP view with tshark's view of the reference capture. The check with tshark's own HEP dissector
(``-d udp.port==9060,hep``) runs only with a tshark that has one.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipflow import analyze
from sipflow.capture.types import Endpoint, Transport
from sipflow.cli import main
from sipflow.model.analysis import Analysis
from sipflow.model.message import Message
from tests.conftest import SAMPLES, run_tshark

HEP_PORT = {"hep-udp": ("udp", 9060), "hep-tcp": ("tcp", 9061)}
NAMES = sorted(HEP_PORT)
PROXY = Endpoint("127.0.0.20", 5060)
COLLECTOR = "127.0.0.70"
TOLERANCE = 0.005
"""Seconds between a message's HEP time and its frame's time in the reference capture."""
MESSAGES = 22
"""Per run: the answered call (7 messages on each of two hops) and the 486 (4 on each)."""


def hep(name: str) -> Path:
    return SAMPLES / f"{name}.pcap"


def direct(name: str) -> Path:
    return SAMPLES / f"{name}-direct.pcap"


def start_line(m: Message) -> str:
    return m.sip.raw.split(b"\r\n", 1)[0].decode()


def key(m: Message) -> tuple[str, str, str, str | None, str | None]:
    """(source, destination, start line, Call-ID, CSeq) of a message."""
    cseq = m.sip.cseq
    return (
        str(m.src),
        str(m.dst),
        start_line(m),
        m.sip.call_id,
        f"{cseq.seq} {cseq.method}" if cseq else None,
    )


@pytest.fixture(scope="module", params=NAMES)
def pair(request: pytest.FixtureRequest) -> tuple[str, Analysis, Analysis]:
    name: str = request.param
    return name, analyze([hep(name)]), analyze([direct(name)])


# --- sipflow: the HEP capture against the reference ----------------------------------------------


def test_hep_carries_exactly_the_messages_of_the_sip_port(pair: tuple[str, Analysis, Analysis]) -> None:
    _name, h, d = pair
    assert len(h.messages) == len(d.messages) == MESSAGES
    assert [key(m) for m in h.messages] == [key(m) for m in d.messages]
    assert [m.sip.raw for m in h.messages] == [m.sip.raw for m in d.messages]  # byte for byte
    # every message has the proxy at one end: it traced what it received and what it sent
    assert all(PROXY in (m.src, m.dst) for m in h.messages)
    # the inner transport, not the collector's
    assert {m.transport for m in h.messages} == {m.transport for m in d.messages} == {Transport.UDP}


def test_hep_times_are_the_proxys_clock(pair: tuple[str, Analysis, Analysis]) -> None:
    _name, h, d = pair
    for a, b in zip(h.messages, d.messages, strict=True):
        assert a.timestamp == pytest.approx(b.timestamp, abs=TOLERANCE), key(a)


def test_clean_decode(pair: tuple[str, Analysis, Analysis]) -> None:
    name, h, _d = pair
    s = h.summary
    assert (s.malformed, s.retransmissions, s.duplicates, s.untracked) == (0, 0, 0, 0)
    assert h.warnings == () and not s.partial and not s.incomplete_files
    assert s.sip_messages == MESSAGES
    if HEP_PORT[name][0] == "udp":
        # one datagram per message, nothing else in the capture
        assert (s.packets, s.non_sip_packets) == (MESSAGES, 0)
        assert sorted(m.frame for m in h.messages) == list(range(1, MESSAGES + 1))
    else:
        # handshake, the collector's ACKs, FINs
        assert set(s.non_sip) == {"TCP control"}
        assert s.packets == MESSAGES + s.non_sip_packets


def test_same_calls_as_the_sip_port(pair: tuple[str, Analysis, Analysis]) -> None:
    name, h, d = pair

    def calls(a: Analysis) -> list[tuple[object, ...]]:
        return [
            (c.call_ids, c.kind.value, c.state.value, c.final_status, len(c.messages), c.legs[0].hops)
            for c in a.calls
        ]

    assert calls(h) == calls(d)
    alice, bob = Endpoint("127.0.0.10", 5060), Endpoint("127.0.0.30", 5060)
    hops = ((alice, PROXY), (PROXY, bob))
    assert calls(h) == [
        ((f"sipflow-{name}-call-1@127.0.0.10",), "call", "completed", 200, 14, hops),
        ((f"sipflow-{name}-busy-1@127.0.0.10",), "call", "rejected", 486, 8, hops),
    ]


def test_cli_lists_the_calls_of_hep_over_tcp() -> None:
    result = CliRunner().invoke(main, ["calls", str(hep("hep-tcp"))], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "sipflow-hep-tcp-call-1@127.0.0.10" in result.output
    assert "sipflow-hep-tcp-busy-1@127.0.0.10" in result.output
    assert re.search(r"completed\s+200", result.output)
    assert re.search(r"rejected\s+486", result.output)
    assert "22 SIP messages" in result.output and "0 malformed" in result.output


def _snap(src: Path, dst: Path, snaplen: int) -> None:
    """Copy a pcap file (classic format) as if captured with ``tcpdump -s snaplen``."""
    data = src.read_bytes()
    order = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    out = bytearray(data[:16] + struct.pack(order + "I", snaplen) + data[20:24])
    p = 24
    while p < len(data):
        sec, usec, incl, orig = struct.unpack_from(order + "IIII", data, p)
        keep = min(incl, snaplen)
        out += struct.pack(order + "IIII", sec, usec, keep, orig) + data[p + 16 : p + 16 + keep]
        p += 16 + incl
    dst.write_bytes(out)


SNAPLEN = 400
"""Keeps the outer headers, Kamailio's HEP3 header chunks and the SIP start line."""
UDP_OUTER, TCP_OUTER, HEP3_HEADERS = 42, 66, 99
"""Octets before a frame's payload (Ethernet, IPv4, UDP or TCP with the timestamps option), and
before the SIP in one of Kamailio's HEP3 messages."""


def test_hep_over_udp_cut_by_the_snaplen_gives_truncated_messages(tmp_path: Path) -> None:
    cut = tmp_path / "hep-udp-snap.pcap"
    _snap(hep("hep-udp"), cut, SNAPLEN)
    whole = analyze([hep("hep-udp")]).messages
    got = analyze([cut])
    assert [start_line(m) for m in got.messages] == [start_line(m) for m in whole]
    assert all(m.truncated for m in got.messages)  # every message is longer than the room left


def test_hep_over_tcp_cut_by_the_snaplen_gives_truncated_messages(tmp_path: Path) -> None:
    """The same cut for HEP3 over TCP and for the SIP port: every message kept, truncated when it
    was longer than the room the snaplen leaves (for HEP, all of them)."""
    for path, room in (
        (hep("hep-tcp"), SNAPLEN - TCP_OUTER - HEP3_HEADERS),
        (direct("hep-udp"), SNAPLEN - UDP_OUTER),
    ):
        cut = tmp_path / path.name
        _snap(path, cut, SNAPLEN)
        whole = analyze([path]).messages
        got = analyze([cut])
        assert [start_line(m) for m in got.messages] == [start_line(m) for m in whole]
        assert [m.truncated for m in got.messages] == [len(m.sip.raw) > room for m in whole]
        assert got.summary.malformed == 0


# --- tshark ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hep3:
    """One HEP3 message as this file reads it: the generic chunks sipflow uses."""

    frame: int
    """The frame that completes it."""
    src: str
    dst: str
    proto: int
    timestamp: float
    payload: bytes


def _hep3(data: bytes, frame: int) -> Hep3:
    assert data[:4] == b"HEP3" and struct.unpack_from("!H", data, 4)[0] == len(data)
    chunks: dict[int, bytes] = {}
    p = 6
    while p < len(data):
        vendor, ctype, clen = struct.unpack_from("!HHH", data, p)
        assert vendor == 0 and clen >= 6 and p + clen <= len(data)
        chunks[ctype] = data[p + 6 : p + clen]
        p += clen
    (sport,), (dport,) = struct.unpack("!H", chunks[7]), struct.unpack("!H", chunks[8])
    (sec,), (usec,) = struct.unpack("!I", chunks[9]), struct.unpack("!I", chunks[10])
    assert chunks[1] == b"\x02" and chunks[11] == b"\x01"  # AF_INET; protocol type SIP
    return Hep3(
        frame=frame,
        src=f"{ipaddress.IPv4Address(chunks[3])}:{sport}",
        dst=f"{ipaddress.IPv4Address(chunks[4])}:{dport}",
        proto=chunks[2][0],
        timestamp=sec + usec / 1e6,
        payload=chunks[15],
    )


def _tshark_hep3(tshark: str, name: str) -> list[Hep3]:
    """The HEP3 messages of a capture: outer payloads from tshark, chunks read here."""
    proto, port = HEP_PORT[name]
    # (frame, payload) for UDP; (frame, payload, relative sequence number) for TCP
    fields = ["frame.number", f"{proto}.payload"] + (["tcp.seq"] if proto == "tcp" else [])
    out = run_tshark(
        tshark,
        ["-r", str(hep(name)), "-Y", f"{proto}.dstport=={port} && {proto}.payload", "-T", "fields",
         *(arg for field in fields for arg in ("-e", field))],
    )  # fmt: skip
    rows = [line.split("\t") for line in out.splitlines()]
    if proto == "udp":
        return [_hep3(bytes.fromhex(data), int(frame)) for frame, data in rows]
    # TCP: one stream, its segments in order with no gap, cut by the HEP3 total lengths
    stream = b""
    ends: list[tuple[int, int]] = []  # (stream offset after the segment, frame)
    for frame, data, seq in rows:
        assert int(seq) == len(stream) + 1, "a gap or an overlap in the HEP stream"
        stream += bytes.fromhex(data)
        ends.append((len(stream), int(frame)))
    found, p = [], 0
    while p < len(stream):
        total = struct.unpack_from("!H", stream, p + 4)[0]
        frame = next(f for end, f in ends if end >= p + total)
        found.append(_hep3(stream[p : p + total], frame))
        p += total
    return found


@pytest.mark.parametrize("name", NAMES)
def test_hep3_read_from_tshark_payloads_equals_sipflow(tshark: str, name: str) -> None:
    """Every HEP3 message (outer payloads from tshark) is one sipflow message: the same inner
    addresses, time (to the microsecond), payload and completing frame."""
    h = analyze([hep(name)])
    theirs = sorted(
        (x.frame, x.src, x.dst, x.proto, round(x.timestamp * 1e6), x.payload)
        for x in _tshark_hep3(tshark, name)
    )
    ours = sorted(
        (m.frame, str(m.src), str(m.dst), 17, round(m.timestamp * 1e6), m.sip.raw) for m in h.messages
    )
    assert len(theirs) == MESSAGES
    assert ours == theirs


def _tshark_sip(tshark: str, path: Path) -> list[tuple[tuple[str, str, str, str, str], float]]:
    """((source, destination, start line, Call-ID, CSeq), time) of each SIP frame, per tshark."""
    out = run_tshark(
        tshark,
        ["-r", str(path), "-Y", "sip", "-T", "fields", "-E", "occurrence=f",
         "-e", "ip.src", "-e", "udp.srcport", "-e", "ip.dst", "-e", "udp.dstport",
         "-e", "sip.Request-Line", "-e", "sip.Status-Line", "-e", "sip.Call-ID", "-e", "sip.CSeq",
         "-e", "frame.time_epoch"],
    )  # fmt: skip
    rows = []
    for line in out.splitlines():
        src, sport, dst, dport, req, status, call_id, cseq, t = line.split("\t")
        rows.append(((f"{src}:{sport}", f"{dst}:{dport}", req or status, call_id, cseq), float(t)))
    return rows


@pytest.mark.parametrize("name", NAMES)
def test_sipflow_hep_view_equals_tshark_view_of_the_sip_port(tshark: str, name: str) -> None:
    theirs = _tshark_sip(tshark, direct(name))
    ours = analyze([hep(name)]).messages
    assert len(theirs) == len(ours) == MESSAGES
    assert [key(m) for m in ours] == [k for k, _ in theirs]
    for m, (k, t) in zip(ours, theirs, strict=True):
        assert m.timestamp == pytest.approx(t, abs=TOLERANCE), k


@pytest.mark.parametrize("name", NAMES)
def test_hep_capture_holds_only_hep_to_the_collector(tshark: str, name: str) -> None:
    """Nothing but the collector's port; without a HEP dissector tshark finds no SIP in it."""
    proto, port = HEP_PORT[name]
    out = run_tshark(tshark, ["-r", str(hep(name)), "-Y", f"!({proto}.port=={port} && ip.addr=={COLLECTOR})"])
    assert out == ""
    if not _has_hep_dissector(tshark):
        assert run_tshark(tshark, ["-r", str(hep(name)), "-Y", "sip"]) == ""


def _has_hep_dissector(tshark: str) -> bool:
    protocols = run_tshark(tshark, ["-G", "protocols"])
    return any(line.split("\t")[2] == "hep" for line in protocols.splitlines() if line.count("\t") >= 2)


@pytest.mark.parametrize("name", NAMES)
def test_tshark_hep_dissector_agrees(tshark: str, name: str) -> None:
    """With a tshark that has a HEP dissector (not 4.0): its SIP equals sipflow's."""
    if not _has_hep_dissector(tshark):
        pytest.skip("this tshark has no HEP dissector (tshark -G protocols); tshark 4.0 has none")
    proto, port = HEP_PORT[name]
    out = run_tshark(
        tshark,
        ["-r", str(hep(name)), "-d", f"{proto}.port=={port},hep", "-Y", "sip", "-T", "fields",
         "-E", "occurrence=a", "-E", "aggregator=\x1f", "-e", "sip.Call-ID", "-e", "sip.CSeq"],
    )  # fmt: skip
    pairs = []
    for line in out.splitlines():  # a TCP segment may carry several HEP3 messages
        call_ids, cseqs = (field.split("\x1f") for field in line.split("\t"))
        pairs.extend(zip(call_ids, cseqs, strict=True))
    pairs.sort()
    ours = sorted((m.sip.call_id, key(m)[4]) for m in analyze([hep(name)]).messages)
    assert pairs == ours
