"""Generate tests/captures/broken/* and tests/captures/hostile/* (committed; rerun to refresh).

    python tests/captures/make_broken.py

Every broken file is derived from ``samples/basic-call.pcap`` (7 UDP frames, one call) by
cutting or overwriting octets, so that what sipflow must still show is known exactly. The
hostile capture is built with scapy. gzip output has a fixed mtime so reruns are byte-identical.
"""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BASIC = ROOT / "samples" / "basic-call.pcap"
BROKEN = HERE / "broken"
HOSTILE = HERE / "hostile"

PCAP_HEADER = 24
RECORD_HEADER = 16


def records(data: bytes) -> list[tuple[int, int, bytes, int]]:
    """(seconds, microseconds, captured octets, original length) of each pcap record."""
    out = []
    pos = PCAP_HEADER
    while pos < len(data):
        ts_s, ts_us, incl, orig = struct.unpack_from("<IIII", data, pos)
        out.append((ts_s, ts_us, data[pos + RECORD_HEADER : pos + RECORD_HEADER + incl], orig))
        pos += RECORD_HEADER + incl
    return out


def record_offsets(data: bytes) -> list[int]:
    offsets = []
    pos = PCAP_HEADER
    while pos < len(data):
        offsets.append(pos)
        pos += RECORD_HEADER + struct.unpack_from("<I", data, pos + 8)[0]
    return offsets


def pcapng(data: bytes, linktype: int = 1) -> bytes:
    """The pcap ``data`` as a little-endian pcapng file (SHB, one IDB, one EPB per record)."""

    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        length = 12 + len(body)
        return struct.pack("<II", btype, length) + body + struct.pack("<I", length)

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    out.append(block(1, struct.pack("<HHI", linktype, 0, 262144)))
    for ts_s, ts_us, frame, orig in records(data):
        ticks = ts_s * 1_000_000 + ts_us
        epb = struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), orig)
        out.append(block(6, epb + frame))
    return b"".join(out)


def gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as f:
        f.write(data)
    return buf.getvalue()


def snaplen_cut(data: bytes, snaplen: int) -> bytes:
    out = bytearray(data[:PCAP_HEADER])
    struct.pack_into("<I", out, 16, snaplen)
    for ts_s, ts_us, frame, orig in records(data):
        cut = frame[:snaplen]
        out += struct.pack("<IIII", ts_s, ts_us, len(cut), orig) + cut
    return bytes(out)


def broken() -> dict[str, bytes]:
    data = BASIC.read_bytes()
    offsets = record_offsets(data)
    ng = pcapng(data)
    corrupt = bytearray(data)
    struct.pack_into("<I", corrupt, offsets[3] + 8, 0x7FFFFFF0)  # record 4's captured length
    # pcapng: SHB 28 octets + IDB 20 octets, then EPBs; corrupt the third EPB's length.
    ng_bad = bytearray(ng)
    pos = 28 + 20
    for _ in range(2):
        pos += struct.unpack_from("<I", ng_bad, pos + 4)[0]
    struct.pack_into("<I", ng_bad, pos + 4, 13)
    zipped = gz(data)
    return {
        "truncated-last-record.pcap": data[:-20],
        "corrupt-record-length.pcap": bytes(corrupt),
        "wrong-magic.pcap": b"\xde\xad\xbe\xef" + data[4:],
        "empty.pcap": b"",
        "text-file.pcap": b"This is not a capture, just a note.\n",
        "bad-block-length.pcapng": bytes(ng_bad),
        "good.pcap.gz": zipped,
        "good.pcapng.gz": gz(ng),
        "truncated.pcap.gz": zipped[: len(zipped) * 2 // 3],
        "snaplen-200.pcap": snaplen_cut(data, 200),
    }


HOSTILE_DISPLAY = "\x1b[2J\x1b]0;pwned\x07[bold red]boom[/] <script>alert(1)</script>"
HOSTILE_CALL_ID = '=HYPERLINK("http://x")[bold]x[/]\x1b[6n<script>y</script>@example.com'
LONG_VALUE = "A" * 20000


def hostile() -> dict[str, bytes]:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapWriter

    name = HOSTILE_DISPLAY.replace("\\", "\\\\").replace('"', '\\"')
    common = (
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-evil\r\n"
        f'From: "{name}" <sip:=cmd|calc@example.com>;tag=x\r\n'
        "To: <sip:+bob@example.com>{to_tag}\r\n"
        f"Call-ID: {HOSTILE_CALL_ID}\r\n"
        "CSeq: {cseq}\r\n"
        f"User-Agent: @SUM(1+1) {LONG_VALUE}\r\n"
        "Subject: \x1b[31m-2+3 </svg><script>alert(2)</script> \"' & {{}} `x` @startuml\r\n"
    )
    invite = (
        "INVITE sip:bob@example.com SIP/2.0\r\n"
        + common.format(to_tag="", cseq="1 INVITE")
        + "Max-Forwards: 70\r\nContact: <sip:a@10.0.0.1>\r\nContent-Length: 0\r\n\r\n"
    )
    reply = (
        "SIP/2.0 486 Busy \x1b[5m[blink]Here</text><script>z</script>\r\n"
        + common.format(to_tag=";tag=y", cseq="1 INVITE")
        + "Content-Length: 0\r\n\r\n"
    )
    ack = (
        "ACK sip:bob@example.com SIP/2.0\r\n"
        + common.format(to_tag=";tag=y", cseq="1 ACK")
        + "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    packets = []
    for i, (src, dst, text) in enumerate(
        [("10.0.0.1", "10.0.0.2", invite), ("10.0.0.2", "10.0.0.1", reply), ("10.0.0.1", "10.0.0.2", ack)]
    ):
        p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src, dst=dst, id=i + 1)
        p = p / UDP(sport=5060, dport=5060) / text.encode()
        p.time = 1_700_000_000 + i / 4
        packets.append(p)
    buf = io.BytesIO()
    writer = PcapWriter(buf, linktype=1, sync=True)
    writer.write(packets)
    writer.flush()
    return {"hostile-headers.pcap": buf.getvalue()}


def main() -> None:
    for folder, files in ((BROKEN, broken()), (HOSTILE, hostile())):
        folder.mkdir(exist_ok=True)
        for name, content in files.items():
            (folder / name).write_bytes(content)
            print(f"{folder.name}/{name}: {len(content)} octets")


if __name__ == "__main__":
    main()
