"""The cheap content tests: SIP start lines, resynchronisation, non-SIP classification."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sipflow.capture import detect
from sipflow.capture.detect import (
    RTP_KIND,
    TOKEN_START,
    classify_tcp,
    classify_udp,
    find_sip_start,
    is_keepalive,
    is_partial_sip_start,
    is_sip_start,
)


@pytest.mark.parametrize(
    "data",
    [
        b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n",
        b"REGISTER sips:example.com SIP/2.0\r\nVia: x\r\n\r\n",
        b"ACK tel:+15551234 SIP/2.0\n",  # bare LF tolerated
        b"NEWMETHOD-X.1 sip:a@b SIP/2.0\r\n",  # extension-method (RFC 3261 §25.1 token)
        b"OPTIONS sip:a@b sip/2.0\r\n",  # SIP-Version is case-insensitive (§7.1)
        b"SIP/2.0 200 OK\r\n",
        b"SIP/2.0 180 Ringing",
        b"SIP/2.0 487 \r\n",  # empty Reason-Phrase
        b"SIP/2.0 200\r\n",  # no SP before CRLF: tolerated
        b"sip/2.0 100 Trying\r\n",
    ],
)
def test_sip_start_lines(data: bytes) -> None:
    assert is_sip_start(data)
    assert is_sip_start(b"xx" + data + b"yy", 2, len(data) + 2)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x00\x12\x34" + b"\x00" * 20,  # RTP
        b"\x16\x03\x01\x00\x10",  # TLS
        b"GET / HTTP/1.1\r\n",
        b"NOTIFY * HTTP/1.1\r\n",  # SSDP
        b"HTTP/1.1 200 OK\r\n",
        b"INVITE sip:bob@biloxi.example.com SIP/2.0",  # Request-Line not finished
        b"INVITE  sip:x SIP/2.0\r\n",  # two SPs
        b"INVITE sip:x SIP/2.1\r\n",
        b"INV@TE sip:x SIP/2.0\r\n",  # '@' is not a token character
        b"SIP/2.0 20 OK\r\n",
        b"SIP/2.0 2000 OK\r\n",
        b"SIP/2.0/UDP host\r\n",  # a Via value, not a Status-Line
        b"\r\nINVITE sip:x SIP/2.0\r\n",  # datagrams are not stripped
    ],
)
def test_not_sip_start_lines(data: bytes) -> None:
    assert not is_sip_start(data)


def test_sip_start_respects_end() -> None:
    data = b"INVITE sip:x SIP/2.0\r\n"
    assert not is_sip_start(data, 0, len(data) - 2)
    assert not is_sip_start(data, 5, 5)


def test_token_start_table() -> None:
    assert all(TOKEN_START[c] for c in b"AZaz09-.!%*_+`'~")
    assert not any(TOKEN_START[c] for c in range(0x80, 0x100))
    assert not any(TOKEN_START[c] for c in b' \r\n\t\x00@<>"/:')


def test_partial_start_lines() -> None:
    assert is_partial_sip_start(b"INVITE sip:bob@bil")
    assert is_partial_sip_start(b"INVITE sip:bob@biloxi.example.com SIP/2")
    assert is_partial_sip_start(b"SIP/2.0 18")
    assert not is_partial_sip_start(b"NOTIFY * HTTP/1.1")
    assert not is_partial_sip_start(b"GET /index.html")
    assert not is_partial_sip_start(b"INVITE sip:x SIP/2.0\r\nVia")  # a full line: use is_sip_start


def test_find_sip_start() -> None:
    msg = b"BYE sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    assert find_sip_start(b"tail of a body\r\n" + msg) == 16
    assert find_sip_start(b"v=0\r\na=x\r\n" + b"SIP/2.0 200 OK\r\n") == 10
    assert find_sip_start(b"Via: SIP/2.0/UDP x\r\nTo: y\r\n") == -1
    assert find_sip_start(b"no sip here") == -1
    assert find_sip_start(b"}" + msg) == 1  # glued to a body without a final CRLF
    assert find_sip_start(b"</x>SIP/2.0 486 Busy Here\r\n") == 4
    assert find_sip_start(b"xPRACK sip:a@b SIP/2.0\r\n") == 0  # "xPRACK" is itself a token
    assert find_sip_start(b"<a>PRACK sip:a@b SIP/2.0\r\n") == 3  # PRACK, not ACK
    assert find_sip_start(b"<a>FOO sip:a@b SIP/2.0\r\n") == -1  # unknown methods are not guessed
    assert find_sip_start(b"junk\r\n" + msg, 3) == 6


def test_keepalive() -> None:
    assert is_keepalive(b"\r\n\r\n") and is_keepalive(b"\r\n")
    assert not is_keepalive(b"") and not is_keepalive(b"\r\n\r\nX")


@pytest.mark.parametrize(
    ("payload", "ports", "kind"),
    [
        (b"\x80\x00\x00\x01" + b"\x00" * 168, (40000, 40002), detect.RTP),
        (b"\x80\xe0\x00\x01" + b"\x00" * 8, (40000, 40002), detect.RTP),  # marker + PT 96
        (b"\x81\xc8\x00\x0c" + b"\x00" * 48, (40001, 40003), detect.RTCP),  # SR
        (b"\x80\x00\x00\x01" + b"\x00" * 168, (137, 137), detect.OTHER_UDP),  # privileged ports
        (b"\x80\x40\x00\x01" + b"\x00" * 168, (40000, 40002), detect.OTHER_UDP),  # PT 64: unassigned
        (b"\x80\x00\x00\x01" + b"\x00" * 40, (53, 40000), detect.DNS),
        (b"\x12\x34\x01\x00" + b"\x00" * 30, (40000, 5353), detect.DNS),
        (b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"\x00" * 12, (40000, 3478), detect.STUN),
        (b"\x16\xfe\xfd" + b"\x00" * 20, (40000, 40002), detect.DTLS),
        (b"\r\n\r\n", (5060, 5060), detect.SIP_KEEPALIVE),
        (b"", (5060, 5060), detect.OTHER_UDP),
        (b"\x00\x00\x00\x00", (5060, 5060), detect.OTHER_UDP),
    ],
)
def test_classify_udp(payload: bytes, ports: tuple[int, int], kind: str) -> None:
    assert classify_udp(payload, 0, len(payload), *ports) == kind


def test_rtp_kind_table() -> None:
    assert RTP_KIND[0] == detect.RTP and RTP_KIND[0x80 | 8] == detect.RTP
    assert RTP_KIND[200] == detect.RTCP and RTP_KIND[201] == detect.RTCP
    assert RTP_KIND[72] is None and RTP_KIND[50] is None


def test_classify_tcp() -> None:
    assert classify_tcp(b"\x17\x03\x03\x00\x10", 0, 5) == detect.TLS
    assert classify_tcp(b"\x16\x03\x01\x02\x00", 0, 5) == detect.TLS
    upgrade = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    assert classify_tcp(upgrade, 0, len(upgrade)) == detect.WEBSOCKET
    assert classify_tcp(b"GET / HTTP/1.1\r\n\r\n", 0, 18) == detect.OTHER_TCP
    assert classify_tcp(b"x", 0, 1) == detect.OTHER_TCP


def test_capture_layer_imports_nothing_above_it() -> None:
    """The capture layer is the bottom of the pipe: it must not import sipflow.sip or above."""
    code = (
        "import sys, sipflow.capture.reader, sipflow.capture.decode, sipflow.capture.tcp;"
        "bad = sorted(m for m in sys.modules if m.startswith('sipflow.') and not"
        " m.startswith(('sipflow.capture', 'sipflow.errors')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
