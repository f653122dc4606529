"""Generate tests/captures/transports/* (committed; rerun to refresh).

    python tests/captures/make_transports.py

Two captures of one SIP call (INVITE with SDP, 100, 180, 200, ACK, BYE, 200) whose transport is
split awkwardly across TCP segments, for ``tests/test_tcp_hep_ws.py``:

* ``hep3-tcp.pcap``: a capture agent (Kamailio ``siptrace`` with ``;transport=tcp``, heplify
  ``-nt tcp``) streaming HEP3 to a collector on TCP 9061. The call itself travelled over UDP
  between 10.1.0.1:5060 and 10.2.0.2:5060 and each HEP3 message carries its inner addresses
  and capture time. On the wire: two HEP3 messages in one segment, one split over three
  segments, a junk HEP3 header with an impossible length before the next message, two
  segments arriving swapped, and a HEP3 message that carries RTCP (not SIP).
* ``ws-split-handshake.pcap``: SIP over WebSocket (RFC 7118) on TCP 8080 whose HTTP upgrade
  request (RFC 6455 §4.1) is split over three segments and whose ``101`` response over two;
  client frames are masked (RFC 6455 §5.3), server frames are not.

Frames are built with scapy (deterministic: fixed addresses, ports, sequence numbers, IP ids)
and written as a classic little-endian pcap with microsecond timestamps by hand, so reruns are
byte-identical. The frame numbers and times the tests expect are listed beside each frame.
"""

from __future__ import annotations

import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "transports"

T0 = 1_700_000_000
"""Outer capture times start here (2023-11-14 22:13:20 UTC); the HEP inner times 1 s earlier."""

# --- the call ---------------------------------------------------------------------------------------

ALICE = ("10.1.0.1", 5060)
BOB = ("10.2.0.2", 5060)
CALL_ID = "hep-tcp-call-1@10.1.0.1"

SDP_OFFER = (
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 10.1.0.1\r\ns=-\r\nc=IN IP4 10.1.0.1\r\n"
    "t=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)
SDP_ANSWER = (
    "v=0\r\no=bob 2808844564 2808844564 IN IP4 10.2.0.2\r\ns=-\r\nc=IN IP4 10.2.0.2\r\n"
    "t=0 0\r\nm=audio 3456 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


def _sip(first: str, headers: list[str], body: str = "", ctype: str = "application/sdp") -> bytes:
    lines = [first, *headers]
    if body:
        lines.append(f"Content-Type: {ctype}")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def call(transport: str, a: str, b: str, call_id: str) -> dict[str, bytes]:
    """The seven messages of one answered call from ``a`` (caller host) to ``b`` (callee host)."""
    via = f"Via: SIP/2.0/{transport} {a};branch=z9hG4bK-{call_id[:8]}-"
    frm = f'From: "Alice" <sip:alice@{a}>;tag=a73kszlfl'
    to = f"To: <sip:bob@{b}>"
    to_tag = f"{to};tag=1410948204"
    cid = f"Call-ID: {call_id}"
    contact_a = f"Contact: <sip:alice@{a};transport={transport.lower()}>"
    contact_b = f"Contact: <sip:bob@{b};transport={transport.lower()}>"
    ruri = f"sip:bob@{b}"
    return {
        "INVITE": _sip(
            f"INVITE {ruri} SIP/2.0",
            [via + "1", "Max-Forwards: 70", frm, to, cid, "CSeq: 1 INVITE", contact_a],
            SDP_OFFER,
        ),
        "100": _sip("SIP/2.0 100 Trying", [via + "1", frm, to, cid, "CSeq: 1 INVITE"]),
        "180": _sip("SIP/2.0 180 Ringing", [via + "1", frm, to_tag, cid, "CSeq: 1 INVITE", contact_b]),
        "200": _sip("SIP/2.0 200 OK", [via + "1", frm, to_tag, cid, "CSeq: 1 INVITE", contact_b], SDP_ANSWER),
        "ACK": _sip(
            f"ACK sip:bob@{b} SIP/2.0", [via + "2", "Max-Forwards: 70", frm, to_tag, cid, "CSeq: 1 ACK"]
        ),
        "BYE": _sip(
            f"BYE sip:bob@{b} SIP/2.0", [via + "3", "Max-Forwards: 70", frm, to_tag, cid, "CSeq: 2 BYE"]
        ),
        "200-BYE": _sip("SIP/2.0 200 OK", [via + "3", frm, to_tag, cid, "CSeq: 2 BYE"]),
    }


# --- HEP3 (HEP3 Network Protocol Specification, generic chunks) ----------------------------------------


def hep3_chunk(ctype: int, value: bytes) -> bytes:
    """One generic chunk: vendor 0, type, length (its 6-octet header included), value."""
    return struct.pack("!HHH", 0, ctype, 6 + len(value)) + value


def hep3(
    payload: bytes,
    src: tuple[str, int],
    dst: tuple[str, int],
    sec: int,
    usec: int,
    *,
    ptype: int = 1,
    proto: int = 17,
) -> bytes:
    """A HEP3 message as a capture agent sends it: family, protocol, addresses, ports, time,
    protocol type (1 SIP, 5 RTCP), capture agent id, payload."""
    import ipaddress

    body = b"".join(
        (
            hep3_chunk(0x0001, bytes([2])),  # AF_INET
            hep3_chunk(0x0002, bytes([proto])),
            hep3_chunk(0x0003, ipaddress.IPv4Address(src[0]).packed),
            hep3_chunk(0x0004, ipaddress.IPv4Address(dst[0]).packed),
            hep3_chunk(0x0007, struct.pack("!H", src[1])),
            hep3_chunk(0x0008, struct.pack("!H", dst[1])),
            hep3_chunk(0x0009, struct.pack("!I", sec)),
            hep3_chunk(0x000A, struct.pack("!I", usec)),
            hep3_chunk(0x000B, bytes([ptype])),
            hep3_chunk(0x000C, struct.pack("!I", 2001)),  # capture agent id
            hep3_chunk(0x000F, payload),
        )
    )
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body


HEP_TIMES = {
    # message: (inner seconds, microseconds): when the agent saw it, 1 s before the outer frame
    "INVITE": (T0 - 1, 100_000),
    "100": (T0 - 1, 102_000),
    "180": (T0 - 1, 350_000),
    "200": (T0 + 1, 200_000),
    "ACK": (T0 + 1, 260_000),
    "BYE": (T0 + 4, 500_000),
    "200-BYE": (T0 + 4, 530_000),
}
RTCP = bytes.fromhex("80c8000600000001") + bytes(20)  # an RTCP sender report (RFC 3550 §6.4.1)


def hep_messages() -> dict[str, bytes]:
    msgs = call("UDP", ALICE[0], BOB[0], CALL_ID)
    out = {}
    for name, payload in msgs.items():
        caller_sends = name in ("INVITE", "ACK", "BYE")
        src, dst = (ALICE, BOB) if caller_sends else (BOB, ALICE)
        sec, usec = HEP_TIMES[name]
        out[name] = hep3(payload, src, dst, sec, usec)
    out["RTCP"] = hep3(RTCP, ("10.1.0.1", 49171), ("10.2.0.2", 3457), T0 + 2, 0, ptype=5)
    return out


JUNK = b"HEP3\x00\x04" + b"\x00" * 10
"""A HEP3 header announcing 4 octets, less than the header itself: impossible."""

AGENT = ("192.0.2.10", 40123)
COLLECTOR = ("192.0.2.20", 9061)


# --- TCP ---------------------------------------------------------------------------------------------


class Conversation:
    """Ethernet/IPv4/TCP frames between a client and a server, timestamps in µs."""

    def __init__(self, client: tuple[str, int], server: tuple[str, int]) -> None:
        self.client, self.server = client, server
        self.seq = {True: 1000, False: 5000}  # next sequence number, by "from the client"
        self.ipid = {True: 1, False: 1}
        self.frames: list[tuple[int, bytes]] = []

    def frame(
        self, us: int, from_client: bool, flags: str, data: bytes = b"", *, seq: int | None = None
    ) -> None:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.l2 import Ether

        (sh, sp), (dh, dp) = (self.client, self.server) if from_client else (self.server, self.client)
        macs = ("02:00:00:00:00:0a", "02:00:00:00:00:0b")
        src_mac, dst_mac = macs if from_client else macs[::-1]
        tcp = TCP(
            sport=sp, dport=dp, flags=flags, seq=self.seq[from_client] if seq is None else seq,
            ack=self.seq[not from_client] if "A" in flags else 0, window=65535,
        )  # fmt: skip
        ip = IP(src=sh, dst=dh, id=self.ipid[from_client], flags="DF", ttl=64)
        self.ipid[from_client] += 1
        self.frames.append((us, bytes(Ether(src=src_mac, dst=dst_mac) / ip / tcp / data)))

    def send(self, us: int, from_client: bool, data: bytes) -> None:
        self.frame(us, from_client, "PA", data)
        self.seq[from_client] += len(data)

    def handshake(self, us: int) -> None:
        self.seq = {True: 999, False: 4999}
        self.frame(us, True, "S")
        self.seq[True] += 1
        self.frame(us + 100, False, "SA")
        self.seq[False] += 1
        self.frame(us + 200, True, "A")

    def close(self, us: int) -> None:
        self.frame(us, True, "FA")
        self.seq[True] += 1
        self.frame(us + 100, False, "FA")
        self.seq[False] += 1
        self.frame(us + 200, True, "A")


def pcap(frames: list[tuple[int, bytes]]) -> bytes:
    """A classic pcap (little-endian, µs, Ethernet); frame times are µs after :data:`T0`."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for us, data in frames:
        out.append(struct.pack("<IIII", T0 + us // 1_000_000, us % 1_000_000, len(data), len(data)))
        out.append(data)
    return b"".join(out)


def hep3_tcp() -> bytes:
    m = hep_messages()
    c = Conversation(AGENT, COLLECTOR)
    c.handshake(0)  # frames 1-3
    c.send(100_000, True, m["INVITE"] + m["100"])  # 4: two messages in one segment
    ringing = m["180"]
    a, b = 40, 200
    c.send(350_000, True, ringing[:a])  # 5: the 180 over three segments
    c.send(350_100, True, ringing[a:b])  # 6
    c.send(350_200, True, ringing[b:])  # 7
    c.frame(350_300, False, "A")  # 8: the collector acknowledges
    c.send(2_200_000, True, JUNK + m["200"])  # 9: junk, then the 200 (warning, resync)
    # 10, 11: the ACK's and the BYE's segments arrive swapped.
    ack, bye = m["ACK"], m["BYE"]
    seq = c.seq[True]
    c.frame(5_500_000, True, "PA", bye, seq=seq + len(ack))  # 10: BYE first (out of order)
    c.frame(5_500_100, True, "PA", ack, seq=seq)  # 11: then the ACK that precedes it
    c.seq[True] += len(ack) + len(bye)
    c.send(5_530_000, True, m["200-BYE"])  # 12
    c.send(6_000_000, True, m["RTCP"])  # 13: RTCP, no SIP
    c.close(7_000_000)  # 14-16
    return pcap(c.frames)


# --- WebSocket (RFC 6455) ------------------------------------------------------------------------------

WS_CLIENT = ("192.0.2.1", 40000)
WS_SERVER = ("192.0.2.2", 8080)
WS_CALL_ID = "ws-split-call-1@df7jal23ls0d.invalid"

UPGRADE = (
    b"GET /sip HTTP/1.1\r\nHost: 192.0.2.2:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: https://phone.example.com\r\n"
    b"Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
)


def ws_frame(payload: bytes, *, opcode: int = 1, mask: bytes | None = None) -> bytes:
    """One final RFC 6455 §5.2 frame (7- or 16-bit length), masked when ``mask`` is given."""
    n = len(payload)
    m = 0x80 if mask else 0
    head = (
        bytes([0x80 | opcode, m | n]) if n < 126 else bytes([0x80 | opcode, m | 126]) + struct.pack("!H", n)
    )
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        head += mask
    return head + payload


def ws_split_handshake() -> bytes:
    msgs = call("WS", "df7jal23ls0d.invalid", "192.0.2.2", WS_CALL_ID)
    c = Conversation(WS_CLIENT, WS_SERVER)
    c.handshake(0)  # frames 1-3
    # 4-6: the upgrade request in three segments; "Upgrade: websocket" is cut in two and the
    # empty line ending the header block is split between the last two.
    u1, u2 = UPGRADE.index(b"websocket") + 3, len(UPGRADE) - 3
    c.send(1_000, True, UPGRADE[:u1])
    c.send(1_100, True, UPGRADE[u1:u2])
    c.send(1_200, True, UPGRADE[u2:])
    # 7-8: the 101 in two segments, cut inside "Upgrade".
    s1 = SWITCHING.index(b"Upgrade") + 4
    c.send(2_000, False, SWITCHING[:s1])
    c.send(2_100, False, SWITCHING[s1:])
    masks = iter(bytes([0x11 * k, 0x22, 0x33 + k, 0x44]) for k in range(1, 16))

    def client(us: int, name: str) -> None:
        c.send(us, True, ws_frame(msgs[name], mask=next(masks)))

    def server(us: int, name: str) -> None:
        c.send(us, False, ws_frame(msgs[name]))

    client(10_000, "INVITE")  # 9
    server(11_000, "100")  # 10
    server(400_000, "180")  # 11
    server(3_000_000, "200")  # 12
    client(3_050_000, "ACK")  # 13
    client(9_000_000, "BYE")  # 14
    server(9_040_000, "200-BYE")  # 15
    c.send(9_500_000, True, ws_frame(b"\x03\xe8", opcode=8, mask=next(masks)))  # 16: close
    c.send(9_500_100, False, ws_frame(b"\x03\xe8", opcode=8))  # 17: close
    c.close(9_600_000)  # 18-20
    return pcap(c.frames)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, content in (("hep3-tcp.pcap", hep3_tcp()), ("ws-split-handshake.pcap", ws_split_handshake())):
        (OUT / name).write_bytes(content)
        print(f"{OUT.name}/{name}: {len(content)} octets")


if __name__ == "__main__":
    main()
