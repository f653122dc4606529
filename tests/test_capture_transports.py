"""HEP v2/v3, SIP over WebSocket (RFC 7118), SIP over SCTP (RFC 4168) and TLS accounting.

Synthetic captures built with scapy (WebSocket frames and HEP headers by hand, with struct),
fed to the decoder whole, and cross-checked against tshark where tshark decodes the transport.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.sctp import SCTP, SCTPChunkData

from sipflow.capture import hep, websocket
from sipflow.capture.decode import TLS_CONVERSATIONS
from sipflow.capture.types import Endpoint, Transport
from tests.capture_util import decode_frames, ether, pcap_bytes, read_all, records, sip_request, sip_response
from tests.conftest import run_tshark

INVITE = sip_request()
OK = sip_response()
A, B = "192.0.2.1", "192.0.2.2"

# --- helpers ------------------------------------------------------------------------------------


def hep2(
    payload: bytes, *, sport: int = 5060, dport: int = 5062, sec: int = 1_600_000_000, usec: int = 250_000
) -> bytes:
    """HEP v2 (Kamailio sipcapture hep_hdr + hep_iphdr + hep_timehdr), IPv4/UDP."""
    head = struct.pack("!BBBBHH4s4s", 2, 16, 2, 17, sport, dport, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return head + struct.pack("<IIHxx", sec, usec, 7) + payload


def _chunk(ctype: int, value: bytes) -> bytes:
    return struct.pack("!HHH", 0, ctype, 6 + len(value)) + value


def hep3(payload: bytes, *, v6: bool = False, proto: int = 17, ptype: int = 1) -> bytes:
    """HEP v3: the generic chunks a capture agent sends for one SIP packet."""
    if v6:
        addrs = _chunk(5, bytes(15) + b"\x01") + _chunk(6, bytes(15) + b"\x02")
    else:
        addrs = _chunk(3, bytes([10, 0, 0, 1])) + _chunk(4, bytes([10, 0, 0, 2]))
    body = (
        _chunk(1, bytes([10 if v6 else 2]))
        + _chunk(2, bytes([proto]))
        + addrs
        + _chunk(7, struct.pack("!H", 5060))
        + _chunk(8, struct.pack("!H", 5080))
        + _chunk(9, struct.pack("!I", 1_600_000_000))
        + _chunk(10, struct.pack("!I", 500_000))
        + _chunk(11, bytes([ptype]))
        + _chunk(12, struct.pack("!I", 2001))
        + _chunk(15, payload)
    )
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body


def ws_frame(payload: bytes, *, opcode: int = 1, fin: bool = True, mask: bytes | None = None) -> bytes:
    """One RFC 6455 §5.2 frame; 7-, 16- or 64-bit length as the payload needs."""
    b0 = (0x80 if fin else 0) | opcode
    m = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 1 << 16:
        head = bytes([b0, m | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        head += mask
    return head + payload


UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: proxy.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: sip\r\n\r\n"
)
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
)
MASK = b"\x37\xfa\x21\x3d"


def tcp_conversation(chunks: list[tuple[bool, bytes]], *, dport: int = 8080) -> list[bytes]:
    """Ethernet frames of a TCP connection (handshake, then each chunk as one segment)."""
    seq = {True: 1000, False: 5000}
    frames = [
        bytes(ether() / IP(src=A, dst=B) / TCP(sport=40000, dport=dport, flags="S", seq=999)),
        bytes(ether() / IP(src=B, dst=A) / TCP(sport=dport, dport=40000, flags="SA", seq=4999, ack=1000)),
    ]
    for client, data in chunks:
        src, dst, sp, dp = (A, B, 40000, dport) if client else (B, A, dport, 40000)
        tcp = TCP(sport=sp, dport=dp, flags="PA", seq=seq[client], ack=seq[not client])
        frames.append(bytes(ether() / IP(src=src, dst=dst) / tcp / data))
        seq[client] += len(data)
    return frames


def ws_chunks() -> list[tuple[bool, bytes]]:
    """A SIP-over-WebSocket session exercising masking, fragmentation, control frames, lengths."""
    big = ws_frame(sip_request("MESSAGE", cseq=3, body=b"x" * 70_000), opcode=2, mask=MASK)  # 64-bit length
    frames_out = ws_frame(OK)  # unmasked (server to client), 16-bit length
    return [
        (True, UPGRADE),
        (False, SWITCHING),
        (True, ws_frame(INVITE, mask=MASK)),  # frame 5
        (False, frames_out),  # 6
        # A message in three fragments with a ping between them, the last two in one segment.
        (True, ws_frame(INVITE[:100], fin=False, mask=MASK)),  # 7
        (
            True,
            ws_frame(b"", opcode=9, mask=MASK) + ws_frame(INVITE[100:200], opcode=0, fin=False, mask=MASK),
        ),
        (True, ws_frame(INVITE[200:], opcode=0, mask=MASK)),  # 9
        (False, ws_frame(b"", opcode=10)),  # pong: 10
        *((True, big[i : i + 1400]) for i in range(0, len(big), 1400)),  # 11-61: binary
        (True, ws_frame(b"\x03\xe8", opcode=8, mask=MASK)),  # 62: close
    ]


# --- HEP --------------------------------------------------------------------------------------------


def test_hep_v2_uses_inner_addresses_and_time() -> None:
    frame = bytes(ether() / IP(src=A, dst=B) / UDP(sport=40000, dport=9060) / hep2(INVITE))
    (p,) = decode_frames([frame])[0]
    assert p.payload == INVITE
    assert (p.src, p.dst) == (Endpoint("10.0.0.1", 5060), Endpoint("10.0.0.2", 5062))
    assert p.timestamp == pytest.approx(1_600_000_000.25)
    assert p.transport is Transport.UDP and p.frame == 1


@pytest.mark.parametrize("v6", [False, True])
def test_hep_v3_on_any_port(v6: bool) -> None:
    frame = bytes(ether() / IP(src=A, dst=B) / UDP(sport=40000, dport=12345) / hep3(OK, v6=v6, proto=6))
    (p,) = decode_frames([frame])[0]
    assert p.payload == OK
    assert p.src == (Endpoint("::1", 5060) if v6 else Endpoint("10.0.0.1", 5060))
    assert p.dst.port == 5080
    assert p.timestamp == pytest.approx(1_600_000_000.5)
    assert p.transport is Transport.TCP


def test_hep_without_sip_is_counted() -> None:
    rtcp = hep3(b"\x81\xc8\x00\x0c" + bytes(48), ptype=5)
    frames = [bytes(ether() / IP(src=A, dst=B) / UDP(sport=40000, dport=9060) / rtcp)]
    packets, d = decode_frames(frames)
    assert packets == [] and d.stats.non_sip == {"HEP": 1}


def test_hep_decoder_rejects_garbage() -> None:
    assert hep.decode(b"HEP3\x00\x02") is None
    assert hep.decode(b"\x02\x10\x02\x11") is None  # cut short
    assert hep.decode(hep3(INVITE)[:-3]) is None  # total length beyond the datagram


def test_hep_in_a_capture_file(tmp_path: Path) -> None:
    """Through the reader (tshark 4.0 has no HEP dissector to compare with)."""
    frames = [
        bytes(ether() / IP(src=A, dst=B) / UDP(sport=40000, dport=9060) / hep3(INVITE)),
        bytes(ether() / IP(src=A, dst=B) / UDP(sport=40000, dport=9060) / hep2(OK)),
    ]
    path = tmp_path / "hep.pcap"
    path.write_bytes(pcap_bytes(records(frames)))
    packets, reader = read_all(path)
    assert [p.frame for p in packets] == [1, 2] and reader.warnings == []
    assert {p.src.host for p in packets} == {"10.0.0.1"}


# --- SCTP ---------------------------------------------------------------------------------------------


def sctp_frame(*chunks: SCTPChunkData, src: str = A, dst: str = B) -> bytes:
    pkt = ether() / IP(src=src, dst=dst) / SCTP(sport=5060, dport=5060, tag=1)
    for c in chunks:
        pkt = pkt / c
    return bytes(pkt)


def test_sctp_data_chunks_each_carry_one_message() -> None:
    frames = [
        sctp_frame(SCTPChunkData(tsn=1, beginning=1, ending=1, data=INVITE)),
        sctp_frame(
            SCTPChunkData(tsn=7, beginning=1, ending=1, data=OK),
            SCTPChunkData(tsn=8, beginning=1, ending=1, data=sip_response(180, "Ringing")),
            src=B,
            dst=A,
        ),
    ]
    packets, _ = decode_frames(frames)
    assert [(p.frame, p.transport) for p in packets] == [
        (1, Transport.SCTP),
        (2, Transport.SCTP),
        (2, Transport.SCTP),
    ]
    assert [p.payload for p in packets] == [INVITE, OK, sip_response(180, "Ringing")]


def test_sctp_fragments_are_joined_by_tsn() -> None:
    frames = [
        sctp_frame(SCTPChunkData(tsn=10, beginning=1, ending=0, data=INVITE[:50])),
        sctp_frame(SCTPChunkData(tsn=11, beginning=0, ending=0, data=INVITE[50:120])),
        sctp_frame(SCTPChunkData(tsn=12, beginning=0, ending=1, data=INVITE[120:])),
        sctp_frame(SCTPChunkData(tsn=20, beginning=0, ending=1, data=b"orphan")),
    ]
    packets, d = decode_frames(frames)
    (p,) = packets
    assert (p.payload, p.frame, p.frames) == (INVITE, 3, (1, 2, 3))
    assert d.stats.non_sip == {"SCTP": 3}


# --- WebSocket ----------------------------------------------------------------------------------------


def test_websocket_frames() -> None:
    assert websocket.parse_header(ws_frame(b"x" * 70_000)[:5]) is None
    h = websocket.parse_header(ws_frame(b"x" * 70_000, mask=MASK))
    assert h is not None and (h.fin, h.opcode, h.mask, h.header_len, h.payload_len) == (
        True,
        1,
        MASK,
        14,
        70_000,
    )
    masked = ws_frame(INVITE, mask=MASK)
    h = websocket.parse_header(masked)
    assert h is not None and websocket.unmask(masked[h.header_len :], h.mask) == INVITE
    assert websocket.offers_sip(UPGRADE) and not websocket.offers_sip(UPGRADE.replace(b": sip", b": sips"))


def test_sip_over_websocket() -> None:
    packets, d = decode_frames(tcp_conversation(ws_chunks()))
    assert [(p.frame, p.frames, p.transport) for p in packets] == [
        (5, (5,), Transport.WS),
        (6, (6,), Transport.WS),
        (9, (7, 8, 9), Transport.WS),
        (61, tuple(range(11, 62)), Transport.WS),
    ]
    assert [p.payload for p in packets][:3] == [INVITE, OK, INVITE]
    assert packets[3].payload.startswith(b"MESSAGE ") and len(packets[3].payload) > 70_000
    assert packets[0].src == Endpoint(A, 40000) and packets[1].src == Endpoint(B, 8080)
    assert d.warnings == []
    assert d.stats.non_sip["WebSocket"] == 4  # handshake both ways, pong, close


def test_websocket_byte_by_byte() -> None:
    """The frames after the handshake cut into one-octet segments give the same messages."""
    stream = b"".join(data for client, data in ws_chunks()[2:7] if client)
    frames = tcp_conversation([(True, UPGRADE)] + [(True, stream[i : i + 1]) for i in range(len(stream))])
    packets, _ = decode_frames(frames)
    assert [p.payload for p in packets] == [INVITE, INVITE]
    ping = len(ws_frame(b"", opcode=9, mask=MASK))  # its segments carry no SIP
    assert len(packets[1].frames) == len(stream) - len(ws_frame(INVITE, mask=MASK)) - ping


def test_websocket_other_subprotocol_is_not_decoded() -> None:
    other = UPGRADE.replace(b": sip", b": chat")
    packets, d = decode_frames(tcp_conversation([(True, other), (True, ws_frame(INVITE, mask=MASK))]))
    assert packets == [] and d.stats.non_sip["WebSocket"] == 2


def test_websocket_cut_short_at_end_of_capture() -> None:
    frames = tcp_conversation([(True, UPGRADE), (True, ws_frame(INVITE, mask=MASK)[:120])])
    (p,) = decode_frames(frames)[0]
    assert p.truncated and p.transport is Transport.WS and INVITE.startswith(p.payload)


def test_websocket_agrees_with_tshark(tmp_path: Path, tshark: str) -> None:
    path = tmp_path / "ws.pcap"
    path.write_bytes(pcap_bytes(records(tcp_conversation(ws_chunks()))))
    packets, _ = read_all(path)
    out = run_tshark(tshark, ["-r", str(path), "-Y", "sip", "-T", "fields", "-e", "frame.number"])
    assert sorted({p.frame for p in packets}) == sorted(int(x) for x in out.split())


# --- TLS ------------------------------------------------------------------------------------------------


def test_tls_conversations_are_counted_and_pointed_to_tshark() -> None:
    hello = b"\x16\x03\x01\x00\x05" + b"\x01\x00\x00\x01\x00"
    conv1 = tcp_conversation([(True, hello), (False, b"\x16\x03\x03\x00\x02\x02\x00")], dport=5061)
    conv2 = [bytes(ether() / IP(src=A, dst=B) / TCP(sport=40001, dport=5061, flags="PA", seq=1) / hello)]
    packets, d = decode_frames(conv1 + conv2)
    assert packets == []
    assert d.stats.unsupported == {TLS_CONVERSATIONS: 2}
    assert d.stats.non_sip["TLS"] == 3
    (w,) = d.warnings
    assert w.message.startswith("2 TLS conversations not decoded (encrypted)")
    assert "tshark -o tls.keylog_file:KEYS -r test -Y sip" in w.message


def test_ipv6_sctp() -> None:
    frame = bytes(ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / SCTP(sport=5060, dport=5060)
                  / SCTPChunkData(tsn=1, beginning=1, ending=1, data=INVITE))  # fmt: skip
    (p,) = decode_frames([frame])[0]
    assert p.src == Endpoint("2001:db8::1", 5060) and p.transport is Transport.SCTP
