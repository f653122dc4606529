"""Writing the frames of selected calls to a new capture, checked by reading it back with
sipflow and with tshark."""

from __future__ import annotations

import gzip
import itertools
import shutil
import struct
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import pytest
from scapy.packet import Packet

import sipflow
from sipflow.capture.reader import RawFrame, read_raw_frames
from sipflow.capture.writer import write_frames
from sipflow.errors import CaptureError
from sipflow.model.call import Call
from tests.capture_util import (
    Interface,
    Record,
    Section,
    ether,
    pcap_bytes,
    pcapng_bytes,
    records,
    sip_request,
)
from tests.conftest import SAMPLES, SHARED_CAPTURES, run_tshark

PCAP_MAGIC = b"\xd4\xc3\xb2\xa1"
PCAP_NS_MAGIC = b"\x4d\x3c\xb2\xa1"
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def selection(calls: Iterable[Call]) -> dict[str, set[int]]:
    """What the CLI hands to write_frames: every frame of every message, main copy only."""
    out: dict[str, set[int]] = {}
    for call in calls:
        for message in call.messages:
            out.setdefault(message.file, set()).update(message.frames)
    return out


def shared(name: str) -> Path:
    path = SHARED_CAPTURES / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


def timed(frames: Iterable[RawFrame]) -> list[tuple[Fraction, int, bytes, int]]:
    return [(Fraction(r.ticks, r.units), r.linktype, r.data, r.orig_len) for r in frames]


def source_frames(sel: dict[str, set[int]]) -> list[tuple[Fraction, int, bytes, int]]:
    """The selected frames of the sources, in time order (stable: file order, then frame)."""
    frames = [f for file, numbers in sel.items() for f in timed(read_raw_frames(file, numbers))]
    return sorted(frames, key=lambda f: f[0])


def tshark_call_ids(tshark: str, path: Path) -> list[str]:
    """The Call-ID of every SIP message tshark finds (several per frame, comma-separated)."""
    out = run_tshark(tshark, ["-r", str(path), "-Y", "sip", "-T", "fields", "-e", "sip.Call-ID"])
    return [cid for line in out.splitlines() for cid in line.split(",") if cid]


def tshark_times(tshark: str, path: Path, frames: Iterable[int] | None = None) -> list[str]:
    """``frame.time_epoch`` (to the nanosecond) of the frames (all, or those numbered), in order."""
    times = run_tshark(tshark, ["-r", str(path), "-T", "fields", "-e", "frame.time_epoch"]).split()
    return times if frames is None else [times[n - 1] for n in sorted(frames)]


def summary(calls: Iterable[Call]) -> list[tuple[tuple[str, ...], list[str], str, list[float]]]:
    return [
        (c.call_ids, [m.label for m in c.messages], str(c.state), [m.timestamp for m in c.messages])
        for c in calls
    ]


def check_round_trip(tshark: str, sources: list[Path], calls: list[Call], out: Path) -> None:
    """``out`` holds exactly the frames of ``calls``: sipflow finds the same calls in it
    (Call-IDs, messages, state, timestamps), tshark the same SIP messages and Call-IDs."""
    sel = selection(calls)
    assert write_frames(sel, out) == sum(len(v) for v in sel.values())
    assert timed(read_raw_frames(out)) == source_frames(sel)
    again = sipflow.analyze([out])
    assert summary(again.select()) == summary(calls)
    assert again.summary.sip_messages == sum(len(c.messages) for c in calls)
    call_ids = {cid for c in calls for cid in c.call_ids}
    ids = tshark_call_ids(tshark, out)
    assert len(ids) == sum(len(c.messages) for c in calls)
    assert set(ids) == call_ids
    in_sources = [cid for source in sources for cid in tshark_call_ids(tshark, source) if cid in call_ids]
    assert sorted(ids) == sorted(in_sources)
    # The original timestamps, as tshark reads them from the source and from the output.
    if len(sources) == 1:
        assert tshark_times(tshark, out) == tshark_times(tshark, sources[0], sel[str(sources[0])])


@pytest.mark.parametrize(
    ("name", "index"), [("proxy-call.pcap", None), ("tcp-call.pcap", None), ("three-calls.pcap", 2)]
)
def test_selected_calls_round_trip(tmp_path: Path, tshark: str, name: str, index: int | None) -> None:
    source = SAMPLES / name
    analysis = sipflow.analyze([source])
    calls = analysis.select(index=index)
    assert len(calls) == 1
    out = tmp_path / "out.pcap"
    check_round_trip(tshark, [source], calls, out)
    assert out.read_bytes()[:4] == PCAP_MAGIC
    if index is not None:  # the other calls of the capture stay out
        assert len(analysis.calls) == 3 and len(sipflow.analyze([out]).calls) == 1


def test_tcp_written_without_handshake_or_bare_acks(tmp_path: Path, tshark: str) -> None:
    source = SAMPLES / "tcp-call.pcap"
    calls = sipflow.analyze([source]).select()
    out = tmp_path / "out.pcap"
    write_frames(selection(calls), out)
    # 38 frames in the source, 14 of them SIP: every output frame carries a SIP message.
    frames = run_tshark(tshark, ["-r", str(out), "-T", "fields", "-e", "frame.number"]).split()
    sip = run_tshark(tshark, ["-r", str(out), "-Y", "sip", "-T", "fields", "-e", "frame.number"]).split()
    assert len(frames) == len(sip) == 14


def split_segments(pkt: Packet, cuts: list[int]) -> list[Packet]:
    """One TCP segment as several carrying the same octets, 1 µs apart."""
    from scapy.layers.inet import IP, TCP

    data = bytes(pkt[TCP].payload)
    bounds = [0, *cuts, len(data)]
    out = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        p = pkt.copy()
        p[TCP].remove_payload()
        p[TCP].seq = pkt[TCP].seq + a
        p[TCP].add_payload(data[a:b])
        del p[IP].len, p[IP].chksum, p[TCP].chksum
        q = p.__class__(bytes(p))
        q.time = float(pkt.time) + i / 1_000_000
        out.append(q)
    return out


def test_a_message_over_several_segments_keeps_them_all(tmp_path: Path, tshark: str) -> None:
    """The INVITE and the BYE of tcp-call.pcap cut into segments; a gap before the BYE (the
    ACK left out, as a message of another call on a shared connection would be): tshark
    reassembles without the handshake, sipflow too."""
    from scapy.layers.inet import TCP  # noqa: F401  (binds IP and TCP for rdpcap's dissection)
    from scapy.utils import rdpcap, wrpcap

    pkts = list(rdpcap(str(SAMPLES / "tcp-call.pcap")))
    # frames 4 (INVITE), 22 (ACK), 26 (BYE) of the original
    split = [*pkts[:3], *split_segments(pkts[3], [200, 400]), *pkts[4:25], *split_segments(pkts[25], [100])]
    source = tmp_path / "split.pcap"
    wrpcap(str(source), [*split, *pkts[26:]])
    (call,) = sipflow.analyze([source]).select()
    invite, bye = call.messages[0], next(m for m in call.messages if m.label == "BYE")
    assert invite.frames == (4, 5, 6) and bye.frames == (28, 29)
    check_round_trip(tshark, [source], [call], tmp_path / "out.pcap")

    ack = next(m for m in call.messages if m.label == "ACK")
    sel = selection([call])
    sel[str(source)].discard(ack.frame)
    out = tmp_path / "gap.pcap"
    assert write_frames(sel, out) == 16
    assert len(tshark_call_ids(tshark, out)) == len(call.messages) - 1
    (again,) = sipflow.analyze([out]).select()
    assert [m.label for m in again.messages].count("BYE") == 2 and str(again.state) == "completed"


def test_ip_fragments_are_all_written(tmp_path: Path, tshark: str) -> None:
    from scapy.layers.inet import IP, UDP, fragment

    invite = sip_request("INVITE", body=b"v=0\r\n" + b"a=x-pad:" + b"p" * 3000 + b"\r\n")
    datagram = IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=5060, dport=5060) / invite
    frags = fragment(datagram, 1000)  # type: ignore[no-untyped-call]
    other = sip_request("OPTIONS", call_id="other@example.com")
    frames = [bytes(ether() / IP(src="192.0.2.3", dst="192.0.2.2") / UDP(sport=5060, dport=5060) / other)]
    frames += [bytes(ether() / f) for f in frags]
    source = tmp_path / "frags.pcap"
    source.write_bytes(pcap_bytes(records(frames)))
    analysis = sipflow.analyze([source])
    (call,) = analysis.select()
    assert call.messages[0].frames == tuple(range(2, len(frags) + 2))
    check_round_trip(tshark, [source], [call], tmp_path / "out.pcap")


def test_pcapng_source(tmp_path: Path, tshark: str) -> None:
    source = shared("voip1b.pcapng")
    calls = sipflow.analyze([source]).select()
    assert calls
    out = tmp_path / "out.pcap"
    check_round_trip(tshark, [source], calls, out)
    assert out.read_bytes()[:4] == PCAP_MAGIC  # one link type, microseconds: classic pcap


def test_nanosecond_source_keeps_nanoseconds(tmp_path: Path, tshark: str) -> None:
    source = shared("uac-uas-scenario-sipp.pcapng")  # if_tsresol 9
    calls = sipflow.analyze([source]).select(index=5)
    out = tmp_path / "out.pcap"
    check_round_trip(tshark, [source], calls, out)
    assert out.read_bytes()[:4] == PCAP_NS_MAGIC
    assert any(r.ticks % 1000 for r in read_raw_frames(out))  # sub-microsecond digits kept


def test_two_link_types_give_pcapng_with_two_interfaces(tmp_path: Path, tshark: str) -> None:
    ethernet = SAMPLES / "basic-call.pcap"
    null = shared("h263-over-rtp.pcap")  # BSD loopback (NULL)
    analysis = sipflow.analyze([ethernet, null])
    calls = analysis.select()
    assert len(calls) == 2
    out = tmp_path / "out.pcapng"
    check_round_trip(tshark, [ethernet, null], calls, out)
    assert out.read_bytes()[:4] == PCAPNG_MAGIC
    fields = ["-e", "frame.interface_id", "-e", "frame.interface_name", "-e", "frame.encap_type"]
    rows = {
        tuple(line.split("\t"))
        for line in run_tshark(tshark, ["-r", str(out), "-T", "fields", *fields]).splitlines()
    }
    assert {(name, encap) for _, name, encap in rows} == {(str(ethernet), "1"), (str(null), "15")}
    assert len({iface for iface, _, _ in rows}) == 2
    sel = selection(calls)
    for source in (ethernet, null):  # each frame at its source's timestamp, to the nanosecond
        mine = run_tshark(
            tshark,
            [
                "-r",
                str(out),
                "-Y",
                f'frame.interface_name == "{source}"',
                "-T",
                "fields",
                "-e",
                "frame.time_epoch",
            ],
        ).split()
        assert mine == tshark_times(tshark, source, sel[str(source)])


def test_several_files_of_one_link_type_merge_by_time(tmp_path: Path, tshark: str) -> None:
    a, b = SAMPLES / "cancel.pcap", SAMPLES / "basic-call.pcap"
    calls = sipflow.analyze([a, b]).select()
    assert len(calls) == 2
    out = tmp_path / "out.pcap"
    check_round_trip(tshark, [a, b], calls, out)
    assert out.read_bytes()[:4] == PCAP_MAGIC
    times = [Fraction(r.ticks, r.units) for r in read_raw_frames(out)]
    assert times == sorted(times)


def test_gzip_source(tmp_path: Path) -> None:
    plain = SAMPLES / "three-calls.pcap"
    gz = tmp_path / "three-calls.pcap.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    calls = sipflow.analyze([gz]).select(index=1)
    sel = selection(calls)
    write_frames(sel, tmp_path / "from-gz.pcap")
    write_frames({str(plain): sel[str(gz)]}, tmp_path / "from-plain.pcap")
    assert (tmp_path / "from-gz.pcap").read_bytes() == (tmp_path / "from-plain.pcap").read_bytes()


def test_output_may_be_a_source(tmp_path: Path) -> None:
    source = tmp_path / "three-calls.pcap"
    shutil.copy(SAMPLES / "three-calls.pcap", source)
    calls = sipflow.analyze([source]).select(index=3)
    before = summary(calls)
    write_frames(selection(calls), source)
    assert summary(sipflow.analyze([source]).calls) == before
    assert [p.name for p in tmp_path.iterdir()] == ["three-calls.pcap"]


def test_empty_selection_writes_an_empty_capture(tmp_path: Path) -> None:
    out = tmp_path / "empty.pcap"
    assert write_frames({}, out) == 0
    assert write_frames({str(SAMPLES / "basic-call.pcap"): set()}, out) == 0
    assert out.read_bytes()[:4] == PCAP_MAGIC and len(out.read_bytes()) == 24
    assert list(read_raw_frames(out)) == []


def test_frames_the_file_lacks_are_skipped(tmp_path: Path) -> None:
    source = SAMPLES / "basic-call.pcap"
    out = tmp_path / "out.pcap"
    assert write_frames({str(source): {1, 3, 10_000}}, out) == 2
    assert [r.data for r in read_raw_frames(out)] == [r.data for r in read_raw_frames(source, {1, 3})]


def test_null_link_type_alone_stays_null(tmp_path: Path) -> None:
    # scapy's PcapWriter ignores a falsy link type; NULL (BSD loopback) is 0
    source = shared("h263-over-rtp.pcap")
    calls = sipflow.analyze([source]).select()
    out = tmp_path / "out.pcap"
    write_frames(selection(calls), out)
    assert struct.unpack_from("<I", out.read_bytes(), 20)[0] == 0
    assert summary(sipflow.analyze([out]).select()) == summary(calls)


def test_pcapng_keeps_any_timestamp_resolution(tmp_path: Path) -> None:
    """Interfaces in 2^-20 s with an if_tsoffset, and in ns: each output interface keeps its
    source's resolution, so every timestamp is exact."""
    eth = bytes(ether()) + b"\x08\x00" + b"x" * 40  # not SIP: write_frames does not care
    raw_ip = b"\x45" + b"y" * 39
    section = Section(
        interfaces=[Interface(1, tsresol=0x80 | 20, tsoffset=1_700_000_000), Interface(101, tsresol=9)],
        blocks=[
            ("epb", (0, 5 * 2**20 + 12345, eth, 1500)),
            ("epb", (1, 1_700_000_001 * 10**9 + 7, raw_ip, None)),
            ("epb", (0, 6 * 2**20 + 1, eth, None)),
        ],
    )
    source = tmp_path / "mixed.pcapng"
    source.write_bytes(pcapng_bytes([section]))
    out = tmp_path / "out.pcapng"
    assert write_frames({str(source): {1, 2, 3}}, out) == 3
    got = timed(read_raw_frames(out))
    assert got == timed(read_raw_frames(source))
    assert [t for t, *_ in got] == [
        1_700_000_005 + Fraction(12345, 2**20),
        1_700_000_001 + Fraction(7, 10**9),
        1_700_000_006 + Fraction(1, 2**20),
    ]
    assert got[0][3] == 1500  # the original length, beyond the captured octets


def test_one_link_type_of_mixed_resolutions_is_nanosecond_pcap(tmp_path: Path) -> None:
    eth = bytes(ether()) + b"\x08\x00" + b"x" * 40
    a, b = tmp_path / "us.pcap", tmp_path / "ns.pcap"
    a.write_bytes(pcap_bytes(records([eth], start=1_700_000_000, step_us=1)))
    b.write_bytes(pcap_bytes([Record(eth, 1_699_999_999, 999_999_999)], nanosecond=True))
    out = tmp_path / "out.pcap"
    assert write_frames({str(a): {1}, str(b): {1}}, out) == 2
    assert out.read_bytes()[:4] == PCAP_NS_MAGIC
    assert [(r.ticks, r.units) for r in read_raw_frames(out)] == [
        (1_699_999_999_999_999_999, 10**9),
        (1_700_000_000 * 10**9, 10**9),
    ]


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no such file"):
        write_frames({str(tmp_path / "missing.pcap"): {1}}, tmp_path / "out.pcap")
    assert not (tmp_path / "out.pcap").exists()
    out = tmp_path / "no-such-dir" / "out.pcap"
    with pytest.raises(CaptureError, match="cannot write") as info:
        write_frames({str(SAMPLES / "basic-call.pcap"): {1}}, out)
    assert info.value.file == str(out)
    assert list(tmp_path.iterdir()) == []


def test_raw_frames_are_numbered_as_packets(tmp_path: Path) -> None:
    """read_raw_frames numbers frames as CaptureReader does: Enhanced, Simple and obsolete
    Packet Blocks, one on an undefined interface, and a second section (other byte order)."""
    from scapy.layers.inet import IP, UDP

    from tests.capture_util import read_all

    def frame(i: int) -> bytes:
        udp = IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=5060, dport=5060)
        return bytes(ether() / udp / sip_request("OPTIONS", cseq=i))

    first = Section(
        interfaces=[Interface(1)],
        blocks=[
            ("epb", (0, 1_700_000_000 * 10**6, frame(1), None)),
            ("spb", (frame(2), None)),
            ("pb", (0, 1_700_000_001 * 10**6, frame(3))),
            ("epb", (7, 1_700_000_002 * 10**6, frame(4), None)),
        ],
    )
    second = Section(
        big_endian=True,
        interfaces=[Interface(1, tsresol=9)],
        blocks=[("epb", (0, 1_700_000_003 * 10**9, frame(5), None))],
    )
    path = tmp_path / "blocks.pcapng"
    path.write_bytes(pcapng_bytes([first, second]))
    packets, _ = read_all(path)
    raw = list(read_raw_frames(path))
    assert [r.frame for r in raw] == [p.frame for p in packets] == [1, 2, 3, 5]
    assert [Fraction(r.ticks, r.units) for r in raw] == [
        1_700_000_000,
        1_700_000_000,
        1_700_000_001,
        1_700_000_003,
    ]
    assert [r.data[-len(p.payload) :] for r, p in zip(raw, packets, strict=True)] == [
        p.payload for p in packets
    ]
    assert [r.frame for r in read_raw_frames(path, {2, 4, 5})] == [2, 5]
