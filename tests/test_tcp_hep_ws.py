"""HEP3 over TCP and WebSocket handshakes spread over several TCP segments.

Two committed captures written by ``tests/captures/make_transports.py`` (one call each, with
the awkward segmentations listed there) are read through the reader, the library and the CLI;
the sans-I/O reassembler is then driven directly for the cases a capture cannot show compactly
(byte by byte, holes, caps, pick-ups in mid-stream). tshark 4.0 has no HEP dissector, so the
HEP captures are checked against the generator's own list of what it wrote; the WebSocket one
is also checked against tshark.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

import sipflow
from sipflow.capture import detect, hep
from sipflow.capture.tcp import ACK, MAX_HANDSHAKE, SYN, TcpReassembler
from sipflow.capture.types import CaptureStats, Endpoint, SipPayload, Transport
from sipflow.cli import main
from tests.capture_util import decode_frames, read_all
from tests.captures import make_transports as mt
from tests.conftest import run_tshark
from tests.test_capture_tcp import Flow

CAPTURES = Path(__file__).resolve().parent / "captures" / "transports"
HEP_PCAP = CAPTURES / "hep3-tcp.pcap"
WS_PCAP = CAPTURES / "ws-split-handshake.pcap"

HEP_SIP = mt.call("UDP", mt.ALICE[0], mt.BOB[0], mt.CALL_ID)
"""The SIP messages the HEP3 capture carries, by name."""
HEP = mt.hep_messages()
"""The same messages wrapped in HEP3, by name (plus ``RTCP``)."""
WS_SIP = mt.call("WS", "df7jal23ls0d.invalid", "192.0.2.2", mt.WS_CALL_ID)
ALICE, BOB = Endpoint(*mt.ALICE), Endpoint(*mt.BOB)
MESSAGES = ["INVITE", "100", "180", "200", "ACK", "BYE", "200-BYE"]
LABELS = ["INVITE", "100 Trying", "180 Ringing", "200 OK", "ACK", "BYE", "200 OK"]
""":attr:`Message.label` of each, in order."""


def label(payload: bytes) -> str:
    """``INVITE`` for a request, ``180`` for a response."""
    first = payload.split(b" ", 2)
    return (first[1] if first[0].startswith(b"SIP/") else first[0]).decode()


def inner_time(name: str) -> float:
    sec, usec = mt.HEP_TIMES[name]
    return sec + usec / 1e6


def test_committed_captures_are_what_the_generator_writes() -> None:
    assert HEP_PCAP.read_bytes() == mt.hep3_tcp()
    assert WS_PCAP.read_bytes() == mt.ws_split_handshake()


# --- HEP3 over TCP: the capture ------------------------------------------------------------------


def test_hep3_over_tcp_capture() -> None:
    packets, reader = read_all(HEP_PCAP)
    assert [p.payload for p in packets] == [HEP_SIP[name] for name in MESSAGES]
    assert [(p.frame, p.frames) for p in packets] == [
        (4, (4,)),  # two HEP3 messages in one segment
        (4, (4,)),
        (7, (5, 6, 7)),  # one HEP3 message over three segments
        (9, (9,)),  # after the junk header
        (11, (11,)),  # the ACK's segment came second but precedes the BYE's
        (10, (10,)),
        (12, (12,)),
    ]
    callers = {"INVITE", "ACK", "BYE"}
    assert [(p.src, p.dst) for p in packets] == [
        (ALICE, BOB) if name in callers else (BOB, ALICE) for name in MESSAGES
    ]
    assert [p.timestamp for p in packets] == [pytest.approx(inner_time(name), abs=1e-6) for name in MESSAGES]
    assert {p.transport for p in packets} == {Transport.UDP}  # the inner transport
    assert not any(p.truncated for p in packets)
    (w,) = reader.warnings
    assert w.frame == 9 and "192.0.2.10:40123 -> 192.0.2.20:9061" in w.message
    assert "a HEP3 header with an impossible length (4); resynchronising on the next HEP3 header" in w.message
    assert reader.stats.non_sip == {"TCP control": 7, "HEP": 1}  # the RTCP report of frame 13
    assert reader.stats.sip_packets == 7 and reader.stats.frames == 16


def test_hep3_over_tcp_call() -> None:
    analysis = sipflow.analyze([HEP_PCAP])
    (c,) = analysis.calls
    assert c.id == mt.CALL_ID and c.state is sipflow.CallState.COMPLETED and c.final_status == 200
    assert [m.label for m in c.messages] == LABELS
    assert c.start == pytest.approx(inner_time("INVITE"))
    assert {(str(m.src), str(m.dst)) for m in c.messages} == {
        ("10.1.0.1:5060", "10.2.0.2:5060"),
        ("10.2.0.2:5060", "10.1.0.1:5060"),
    }
    assert [m.frame for m in c.messages] == [4, 4, 7, 9, 11, 10, 12]


def test_hep3_over_tcp_cli() -> None:
    result = CliRunner().invoke(main, ["calls", str(HEP_PCAP)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.stdout.splitlines() if mt.CALL_ID in line]
    # The inner capture time (22:13:19.100), not the time the agent's copy reached the collector.
    cells = row.split()
    assert cells[:4] == ["1", "22:13:19.100", "alice@10.1.0.1", "bob@10.2.0.2"]
    assert cells[4:9] == ["10.1.0.1:5060", "10.2.0.2:5060", "UDP", "completed", "200"]  # the inner hop
    assert "7 SIP messages" in result.stdout and "HEP 1" in result.stdout
    assert "impossible length (4)" in result.stderr


def test_hep3_over_tcp_and_over_udp_give_the_same_packet() -> None:
    """One shared HEP → SipPayload conversion: only the outer frame numbers differ."""
    from scapy.layers.inet import IP, UDP

    from tests.capture_util import ether

    udp = bytes(
        ether() / IP(src=mt.AGENT[0], dst=mt.COLLECTOR[0]) / UDP(sport=40123, dport=9060) / HEP["200"]
    )
    (over_udp,) = decode_frames([udp])[0]
    f = Flow()
    (over_tcp,) = f.send(0, HEP["200"])
    fields = ("timestamp", "src", "dst", "transport", "payload", "truncated")
    assert [getattr(over_tcp, k) for k in fields] == [getattr(over_udp, k) for k in fields]


# --- HEP3 over TCP: the reassembler -----------------------------------------------------------------


def hep_flow(**kwargs: int) -> Flow:
    f = Flow(**kwargs)
    f.syn()
    return f


def test_hep3_stream_byte_by_byte() -> None:
    stream = HEP["INVITE"] + HEP["100"] + HEP["180"]
    f = hep_flow()
    for i in range(len(stream)):
        f.send(i, stream[i : i + 1])
    assert f.payloads == [HEP_SIP["INVITE"], HEP_SIP["100"], HEP_SIP["180"]]
    a, b = len(HEP["INVITE"]), len(HEP["INVITE"]) + len(HEP["100"])
    assert [p.frames for p in f.packets] == [
        tuple(range(2, 2 + a)),
        tuple(range(2 + a, 2 + b)),
        tuple(range(2 + b, 2 + len(stream))),
    ]
    assert [p.timestamp for p in f.packets] == [inner_time(n) for n in ("INVITE", "100", "180")]
    assert f.warnings == [] and f.stats.non_sip == {"TCP control": 1}


def test_hep3_junk_between_messages_warns_once_and_resynchronises() -> None:
    stream = HEP["INVITE"] + b"JUNK\r\n" + HEP["180"] + b"HEP3\x00\x02" + HEP["200"]
    f = hep_flow()
    f.send(0, stream)
    assert f.payloads == [HEP_SIP["INVITE"], HEP_SIP["180"], HEP_SIP["200"]]
    ((message, frame),) = f.warnings  # one warning per stream, as for SIP
    assert frame == 2 and "data that is not a HEP3 header; resynchronising" in message


def test_hep3_impossible_length() -> None:
    f = hep_flow()
    f.send(0, HEP["INVITE"] + b"HEP3\x00\x03")
    f.send(len(HEP["INVITE"]) + 6, HEP["180"])
    assert f.payloads == [HEP_SIP["INVITE"], HEP_SIP["180"]]
    ((message, frame),) = f.warnings
    assert frame == 2 and "a HEP3 header with an impossible length (3)" in message
    assert f.stats.non_sip == {"TCP control": 1}


def test_hep3_length_that_does_not_fit_its_chunks() -> None:
    """A length 10 octets too long swallows the next header: the chunks show it, the message
    is dropped and the stream resynchronises on the next HEP3 header."""
    bad = bytearray(HEP["INVITE"])
    struct.pack_into("!H", bad, 4, len(bad) + 10)
    f = hep_flow()
    f.send(0, bytes(bad) + HEP["180"] + HEP["200"])
    assert f.payloads == [HEP_SIP["180"], HEP_SIP["200"]]
    ((message, _),) = f.warnings
    assert f"a HEP3 header whose length ({len(bad) + 10}) does not fit its chunks" in message


def test_hep3_first_segment_out_of_order() -> None:
    """The kind is decided on the first octets in sequence, not on the first segment seen."""
    msg = HEP["INVITE"]
    f = hep_flow()
    assert f.send(300, msg[300:]) == []
    (p,) = f.send(0, msg[:300])
    assert (p.payload, p.src, p.frames, p.frame) == (HEP_SIP["INVITE"], ALICE, (2, 3), 3)


def test_hep3_non_sip_messages_are_counted() -> None:
    f = hep_flow()
    f.send(0, HEP["RTCP"])
    f.send(len(HEP["RTCP"]), HEP["RTCP"] + HEP["INVITE"])  # carries SIP: not counted
    assert f.payloads == [HEP_SIP["INVITE"]]
    assert f.stats.non_sip == {"TCP control": 1, "HEP": 1}
    log = hep3_custom(ptype=100, payload=b"a log line, HEP3 type 100")
    f.send(len(HEP["RTCP"]) * 2 + len(HEP["INVITE"]), log)
    assert f.stats.non_sip == {"TCP control": 1, "HEP": 2} and f.warnings == []


def hep3_custom(*, ptype: int, payload: bytes) -> bytes:
    return mt.hep3(payload, mt.ALICE, mt.BOB, mt.T0, 0, ptype=ptype)


def test_hep3_hole_hands_up_the_message_begun_and_resynchronises() -> None:
    stream = HEP["INVITE"] + HEP["180"] + HEP["200"]
    start = len(HEP["INVITE"])
    cut = start + len(HEP["180"]) - 100  # 100 octets of the 180 are never captured
    f = hep_flow()
    f.send(0, stream[:cut])
    f.send(cut + 100, stream[cut + 100 :])
    f.finish()
    sip180 = HEP_SIP["180"]
    assert f.payloads == [HEP_SIP["INVITE"], sip180[: len(sip180) - 100], HEP_SIP["200"]]
    assert [p.truncated for p in f.packets] == [False, True, False]
    assert f.packets[1].src == BOB and f.packets[1].timestamp == inner_time("180")
    ((message, _),) = f.warnings
    assert "100 octets missing from the capture; the HEP3 message in progress" in message


def test_hep3_cut_by_the_end_of_the_capture() -> None:
    f = hep_flow()
    f.send(0, HEP["100"] + HEP["INVITE"][:-50])
    f.finish()
    assert f.payloads == [HEP_SIP["100"], HEP_SIP["INVITE"][:-50]]
    assert [p.truncated for p in f.packets] == [False, True]
    assert f.packets[1].src == ALICE and f.warnings == []


def test_hep3_message_longer_than_the_cap_is_skipped() -> None:
    f = hep_flow(max_message=len(HEP["INVITE"]) - 1)
    stream = HEP["100"] + HEP["INVITE"] + HEP["180"]
    for i in range(0, len(stream), 100):
        f.send(i, stream[i : i + 100])
    assert f.payloads == [HEP_SIP["100"], HEP_SIP["180"]]
    ((message, _),) = f.warnings
    assert f"HEP3 message of {len(HEP['INVITE'])} octets exceeds {len(HEP['INVITE']) - 1}; skipped" in message


def test_hep3_stream_picked_up_mid_message() -> None:
    """No SYN, the first octets are the middle of a HEP3 message whose SIP start line is whole:
    that SIP is not handed up with the agent's and collector's addresses."""
    f = Flow()
    f.send(0, HEP["INVITE"][40:] + HEP["180"])
    f.send(len(HEP["INVITE"]) - 40 + len(HEP["180"]), HEP["200"])
    assert [(p.payload, p.src) for p in f.packets] == [(HEP_SIP["180"], BOB), (HEP_SIP["200"], BOB)]
    assert f.warnings == []


def test_hep3_stream_picked_up_inside_the_sip_payload() -> None:
    f = Flow()
    f.send(0, HEP["INVITE"][-200:] + HEP["180"])
    assert [(p.payload, p.src) for p in f.packets] == [(HEP_SIP["180"], BOB)]


def test_sip_stream_is_not_delayed() -> None:
    """A stream that opens with a SIP start line is framed at once, segment by segment."""
    inv = HEP_SIP["INVITE"]
    f = Flow()
    assert f.send(0, inv[:2]) == []  # "IN": no kind waits on it
    assert [p.payload for p in f.send(2, inv[2:])] == [inv]
    g = Flow()
    assert [p.payload for p in g.send(0, inv)] == [inv]


def test_hep3_helpers() -> None:
    msg = HEP["INVITE"]
    assert hep.v3_length(msg) == len(msg) and hep.v3_length(msg[:5]) == 0
    assert hep.v3_length(b"HEP3\x00\x0b") == -1 and hep.v3_length(b"HEP2\x01\x00") == -1
    assert hep.v3_well_formed(msg, 0, len(msg)) and not hep.v3_well_formed(msg + bytes(10), 0, len(msg) + 10)
    assert hep.v3_plausible(msg, 0) and not hep.v3_plausible(b"HEP3\x01\x00\x01\x00\x00\x01\x00\x06", 0)
    cut = hep.decode(msg[:-10], cut=True)
    assert cut is not None and cut.payload == HEP_SIP["INVITE"][:-10]
    assert hep.decode(msg[:-10]) is None
    assert hep.hep3_before(b"xx" + msg, msg.index(b"INVITE ") + 2)
    assert hep.hep3_before(msg[20:], msg.index(b"INVITE ") - 20)
    assert not hep.hep3_before(b"\r\n" + HEP_SIP["INVITE"], 2)


# --- WebSocket handshake over several segments: the capture -------------------------------------------


def test_websocket_split_handshake_capture() -> None:
    packets, reader = read_all(WS_PCAP)
    assert [p.payload for p in packets] == [WS_SIP[name] for name in MESSAGES]
    assert [(p.frame, p.frames) for p in packets] == [(n, (n,)) for n in range(9, 16)]
    client, server = Endpoint(*mt.WS_CLIENT), Endpoint(*mt.WS_SERVER)
    callers = {"INVITE", "ACK", "BYE"}
    assert [(p.src, p.dst) for p in packets] == [
        (client, server) if name in callers else (server, client) for name in MESSAGES
    ]
    assert {p.transport for p in packets} == {Transport.WS}
    assert reader.warnings == []
    # Handshake: 3 + 2 segments; close frames: 2.
    assert reader.stats.non_sip == {"WebSocket": 7, "TCP control": 6}


def test_websocket_split_handshake_call() -> None:
    analysis = sipflow.analyze([WS_PCAP])
    (c,) = analysis.calls
    assert c.id == mt.WS_CALL_ID and c.state is sipflow.CallState.COMPLETED and c.final_status == 200
    assert [m.label for m in c.messages] == LABELS
    assert {m.transport for m in c.messages} == {Transport.WS}
    result = CliRunner().invoke(main, ["calls", str(WS_PCAP)], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and result.stderr == ""
    assert (
        "completed" in result.stdout and mt.WS_CALL_ID in result.stdout and "7 SIP messages" in result.stdout
    )


def test_websocket_split_handshake_agrees_with_tshark(tshark: str) -> None:
    out = run_tshark(
        tshark, ["-r", str(WS_PCAP), "-Y", "sip", "-T", "fields", "-e", "frame.number", "-e", "sip.CSeq"]
    )
    ours = [(p.frame, p.payload.split(b"CSeq: ")[1].split(b"\r\n")[0].decode()) for p in read_all(WS_PCAP)[0]]
    assert [tuple(line.split("\t")) for line in out.splitlines()] == [(str(f), c) for f, c in ours]


# --- WebSocket handshake over several segments: the reassembler ------------------------------------------


def ws_flow() -> Flow:
    f = Flow()
    f.syn()
    f.send(0, flags=SYN | ACK, reverse=True)
    return f


INVITE_FRAME = mt.ws_frame(WS_SIP["INVITE"], mask=b"\x01\x02\x03\x04")
TRYING_FRAME = mt.ws_frame(WS_SIP["100"])


def test_websocket_handshake_byte_by_byte_both_ways() -> None:
    f = ws_flow()
    for i in range(len(mt.UPGRADE)):
        assert f.send(i, mt.UPGRADE[i : i + 1]) == []
    # The 101 one octet at a time, its last octet in the segment of the first frame.
    head, last = mt.SWITCHING[:-1], mt.SWITCHING[-1:]
    for i in range(len(head)):
        f.send(i, head[i : i + 1], reverse=True)
    f.send(len(head), last + TRYING_FRAME, reverse=True)
    f.send(len(mt.UPGRADE), INVITE_FRAME)
    assert [(label(p.payload), p.transport, p.src.port) for p in f.packets] == [
        ("100", Transport.WS, 5061),
        ("INVITE", Transport.WS, 5060),
    ]
    assert f.stats.non_sip["WebSocket"] == len(mt.UPGRADE) + len(head)
    assert f.warnings == []


def test_websocket_handshake_segments_out_of_order() -> None:
    f = ws_flow()
    u = mt.UPGRADE
    f.send(60, u[60:] + INVITE_FRAME)
    f.send(30, u[30:60])
    f.send(0, u[:30])
    assert [(label(p.payload), p.transport) for p in f.packets] == [("INVITE", Transport.WS)]


def test_plain_http_split_over_segments_is_other_tcp() -> None:
    request = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
    f = Flow()
    assert f.send(0, request[:20]) == []
    assert f.stats.non_sip == {}  # waiting for the end of the header block
    f.send(20, request[20:])
    assert f.stats.non_sip == {"other TCP": 2} and f.packets == []


def test_handshake_wait_is_capped() -> None:
    """Past MAX_HANDSHAKE octets without an empty line the stream is classified from what came."""
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-Pad-%05d: %s\r\n" % (i, b"p" * 60) for i in range(300))
    assert len(head) > MAX_HANDSHAKE + 2048
    f = Flow()
    sent = 0
    while sent < MAX_HANDSHAKE - 1024:
        f.send(sent, head[sent : sent + 1024])
        sent += 1024
    assert f.stats.non_sip == {}  # still undecided
    f.send(sent, head[sent : sent + 2048])
    assert f.stats.non_sip.get("other TCP", 0) > 0  # decided: not a WebSocket handshake
    sent += 2048
    rest = head[sent:] + b"Upgrade: websocket\r\n\r\n" + HEP_SIP["INVITE"]
    f.send(sent, rest)
    assert [(p.payload, p.transport) for p in f.packets] == [(HEP_SIP["INVITE"], Transport.TCP)]


def test_tls_record_header_split() -> None:
    f = Flow()
    f.send(0, b"\x16\x03")
    f.send(2, b"\x01\x00\x05\x01\x00\x00\x01\x00")
    assert f.stats.non_sip == {"TLS": 2} and len(f.tcp.tls_conversations) == 1


def test_reassembler_without_flow_helper() -> None:
    """The public API as decode.py uses it: raw addresses, sequence numbers, flags."""
    stats = CaptureStats()
    warnings: list[tuple[str, int | None]] = []
    tcp = TcpReassembler(stats=stats, warn=lambda m, fr: warnings.append((m, fr)))
    a, b = bytes([192, 0, 2, 10]), bytes([192, 0, 2, 20])
    out: list[SipPayload] = []
    out += tcp.segment(1, 1.0, a, 40123, b, 9061, 99, 0, SYN, b"")
    out += tcp.segment(2, 2.0, a, 40123, b, 9061, 100, 0, ACK, HEP["INVITE"] + HEP["100"][:10])
    out += tcp.segment(3, 3.0, a, 40123, b, 9061, 100 + len(HEP["INVITE"]) + 10, 0, ACK, HEP["100"][10:])
    out += tcp.finish()
    assert [(label(p.payload), p.frame, p.frames, p.src) for p in out] == [
        ("INVITE", 2, (2,), ALICE),
        ("100", 3, (2, 3), BOB),
    ]
    assert warnings == [] and stats.non_sip == {detect.TCP_CONTROL: 1}
