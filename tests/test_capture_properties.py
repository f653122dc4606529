"""Property tests: random and damaged input never escapes as anything but CaptureError.

The decoder has a last-resort guard that turns an unexpected IndexError/ValueError into an
"undecodable frame" warning; these tests also assert that the guard never fires, i.e. that
every length is checked where it should be.
"""

from __future__ import annotations

import os
import random
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipflow.capture.decode import SUPPORTED_LINKTYPES, Decoder
from sipflow.capture.reader import CaptureReader
from sipflow.capture.tcp import ACK, SYN, TcpReassembler
from sipflow.capture.types import CaptureStats, SipPayload
from sipflow.errors import CaptureError
from tests.capture_util import SAMPLES, sip_request, sip_response

# SIPFLOW_FUZZ_EXAMPLES=20000 for a longer run.
SETTINGS = settings(
    max_examples=int(os.environ.get("SIPFLOW_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

PCAP_HEADERS = [
    struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1),
    struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1),
    struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 113),
    struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 0),
    struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101),
    b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x01\x00\x00\x00" + b"\xff" * 8 + b"\x1c\x00\x00\x00",
    b"\x0a\x0d\x0d\x0a\x00\x00\x00\x1c\x1a\x2b\x3c\x4d\x00\x01\x00\x00" + b"\xff" * 8 + b"\x00\x00\x00\x1c",
]


def read_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz"
        path.write_bytes(data)
        try:
            with CaptureReader(path) as reader:
                for packet in reader:
                    assert isinstance(packet, SipPayload)
        except CaptureError as exc:
            assert "\n" not in str(exc)
            return
        assert not any("undecodable" in w.message for w in reader.warnings)


@SETTINGS
@given(st.binary(max_size=3000))
def test_reader_on_random_bytes(data: bytes) -> None:
    read_bytes(data)


@SETTINGS
@given(st.sampled_from(PCAP_HEADERS), st.binary(max_size=3000))
def test_reader_on_random_records(header: bytes, tail: bytes) -> None:
    read_bytes(header + tail)


def _sample(name: str) -> bytes:
    path = SAMPLES / name
    return path.read_bytes() if path.is_file() else b""


SAMPLE = _sample("sip_ipv4_tcp.pcap")
SAMPLE_NG = _sample("sip-488-Not-Acceptable-Here-codec-null.pcapng")


@SETTINGS
@given(
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=30),
    st.integers(0, 1 << 20),
)
def test_reader_on_damaged_real_captures(ng: bool, flips: list[tuple[int, int]], cut: int) -> None:
    base = SAMPLE_NG if ng else SAMPLE
    if not base:
        return
    data = bytearray(base)
    for where, value in flips:
        data[where % len(data)] = value
    read_bytes(bytes(data[: max(1, len(data) - cut % len(data))]))


LINKTYPES = [*sorted(SUPPORTED_LINKTYPES), 147, 65535]

# Headers that lead the decoder deep into its layers before the random part starts.
PREFIXES = [
    b"",
    b"\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a\x08\x00",  # Ethernet, IPv4
    b"\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a\x86\xdd",  # Ethernet, IPv6
    b"\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a\x81\x00\x00\x0a\x08\x00",  # VLAN, IPv4
    b"\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a\x08\x00\x45\x00\x05\xdc\x00\x01\x20\x00\x40\x11",
    b"\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a\x08\x00\x45\x00\x00\x80\x00\x01\x00\x00\x40\x2f\x00\x00"
    + b"\x0a\x00\x00\x01\x0a\x00\x00\x02",  # IPv4 GRE
    b"\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a\x08\x00\x45\x00\x00\x80\x00\x01\x00\x00\x40\x06\x00\x00"
    + b"\x0a\x00\x00\x01\x0a\x00\x00\x02",  # IPv4 TCP
    b"\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a\x86\xdd\x60\x00\x00\x00\x00\x40\x2c\x40"
    + b"\x20" * 32,  # v6 fragment
]


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(LINKTYPES),
            st.sampled_from(PREFIXES),
            st.binary(max_size=200),
            st.integers(0, 100),
        ),
        max_size=40,
    )
)
def test_decoder_on_random_frames(frames: list[tuple[int, bytes, bytes, int]]) -> None:
    decoder = Decoder(file="fuzz")
    for number, (linktype, prefix, data, extra) in enumerate(frames, start=1):
        frame = prefix + data
        out = decoder.feed(number, float(number), linktype, frame, len(frame) + extra)
        assert all(isinstance(p, SipPayload) for p in out)
    decoder.finish()
    assert not any("undecodable" in w.message for w in decoder.warnings), decoder.warnings
    assert decoder.stats.frames == len(frames)


MESSAGES = [
    sip_request("INVITE", body=b"v=0\r\n" * 30),
    sip_response(100, "Trying"),
    sip_request("ACK"),
    sip_request("BYE", cseq=2),
    b"\r\n\r\n",
]


@SETTINGS
@given(
    st.lists(st.sampled_from(MESSAGES), min_size=1, max_size=8),
    st.lists(st.integers(1, 400), min_size=1, max_size=30),
    st.randoms(use_true_random=False),
    st.integers(0, 0xFFFFFFFF),
)
def test_tcp_reassembly_recovers_the_messages(
    messages: list[bytes], cuts: list[int], rnd: random.Random, isn: int
) -> None:
    """Any segmentation, reordering and duplication of a stream gives back exactly its SIP
    messages, keep-alives excluded, in order (the out-of-order window is opened wide: the
    bounds themselves are tested in test_capture_tcp)."""
    stream = b"".join(messages)
    segments: list[tuple[int, bytes]] = []
    pos = 0
    i = 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        segments.append((pos, stream[pos : pos + n]))
        pos += n
        i += 1
    shuffled = segments[:]
    rnd.shuffle(shuffled)
    shuffled += rnd.sample(segments, k=min(3, len(segments)))  # retransmissions
    stats = CaptureStats()
    tcp = TcpReassembler(stats=stats, warn=lambda m, f: None, max_out_of_order_segments=100_000)
    a, b = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    out = tcp.segment(1, 1.0, a, 5060, b, 5060, isn, 0, SYN, b"")
    for frame, (offset, data) in enumerate(shuffled, start=2):
        out += tcp.segment(
            frame, 1.0 + frame / 1000, a, 5060, b, 5060, (isn + 1 + offset) & 0xFFFFFFFF, 0, ACK, data
        )
    out += tcp.finish()
    assert [p.payload for p in out] == [m for m in messages if m != b"\r\n\r\n"]
    assert not any(p.truncated for p in out)
