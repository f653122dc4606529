#!/usr/bin/env python3
"""Join an RTP audio pcap and RFC 2833/4733 event pcaps into one stream.

Used by samples/make-media-samples.sh (sample media-dtmf). sip-tester's
dtmf_2833_*.pcap files are excerpts of some other call: each carries its own
SSRC, sequence numbers and RTP timestamps, so playing them one after another
makes a stream with gaps of hundreds of sequence numbers, which no phone
sends. A phone sends its telephone-events in the audio's RTP stream: the same
SSRC, the next sequence numbers, RTP timestamps on the audio's clock (RFC 4733
§2.1, §2.5.1.2). This writes that stream, for SIPp's play_pcap_audio:

  join-rtp.py AUDIO.pcap EVENTS.pcap... -o OUT.pcap [--gap-ms MS] [--clock HZ]

  * AUDIO's packets first, unchanged;
  * then each EVENTS file in turn, its first packet MS ms (default 500) after
    the previous file's first packet (after AUDIO's last packet for the
    first), its packets keeping their spacing; IPv4 addresses and UDP ports
    set to AUDIO's (SIPp shifts ports by the file's lowest), SSRC to AUDIO's, sequence
    numbers continuing AUDIO's by one per packet, and the RTP timestamp of
    each event (all its packets share it, RFC 4733 §2.5.1.2) set to AUDIO's
    last timestamp plus the elapsed time on the HZ clock (default 8000).
Payload type and payload bytes (event, end bit, volume, duration) are kept.
Classic pcap files only (microsecond or nanosecond, either byte order),
Ethernet/Linux-cooked/loopback/raw link types with IPv4/UDP; standard
library only. The UDP checksum is cleared (0: none, valid for IPv4).
"""
import argparse
import struct
import sys

MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}
# link type -> bytes before the IPv4 header
LINK_HEADER = {1: 14, 113: 16, 0: 4, 101: 0, 228: 0}


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24 or data[:4] not in MAGICS:
        sys.exit(f"join-rtp: {path}: not a classic pcap file")
    endian, units = MAGICS[data[:4]]
    (linktype,) = struct.unpack(endian + "I", data[20:24])
    if linktype not in LINK_HEADER:
        sys.exit(f"join-rtp: {path}: link type {linktype} not supported")
    packets = []  # (timestamp in ns, bytearray packet, rtp offset)
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[off : off + 16])
        off += 16
        if off + incl > len(data) or incl != orig:
            sys.exit(f"join-rtp: {path}: truncated packet record at byte {off - 16}")
        pkt = bytearray(data[off : off + incl])
        ip = LINK_HEADER[linktype]
        if len(pkt) < ip + 20 or pkt[ip] >> 4 != 4 or pkt[ip + 9] != 17:
            sys.exit(f"join-rtp: {path}: packet at byte {off - 16} is not IPv4/UDP")
        rtp = ip + (pkt[ip] & 0x0F) * 4 + 8
        if len(pkt) < rtp + 12 or pkt[rtp] >> 6 != 2:
            sys.exit(f"join-rtp: {path}: packet at byte {off - 16} is not RTP")
        struct.pack_into("!H", pkt, rtp - 2, 0)  # UDP checksum: none
        packets.append(((sec * units + frac) * (1_000_000_000 // units), pkt, rtp))
        off += incl
    if not packets:
        sys.exit(f"join-rtp: {path}: no packets")
    return data[:24], endian, units, packets


def audio_ip_offset(pkt, rtp):
    """The IPv4 header's offset: the RTP offset less UDP's 8 bytes and IHL."""
    for ip in sorted(set(LINK_HEADER.values())):
        if pkt[ip] >> 4 == 4 and ip + (pkt[ip] & 0x0F) * 4 + 8 == rtp:
            return ip
    raise ValueError("no IPv4 header before the RTP")


def set_ip_checksum(pkt, ip):
    """Recompute the IPv4 header checksum (RFC 791) after an address change."""
    ihl = (pkt[ip] & 0x0F) * 4
    struct.pack_into("!H", pkt, ip + 10, 0)
    total = sum(struct.unpack_from(f"!{ihl // 2}H", pkt, ip))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    struct.pack_into("!H", pkt, ip + 10, ~total & 0xFFFF)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("audio")
    ap.add_argument("events", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--gap-ms", type=float, default=500.0)
    ap.add_argument("--clock", type=int, default=8000)
    a = ap.parse_args()

    header, endian, units, audio = read_pcap(a.audio)
    t_last, pkt, rtp = audio[-1]
    seq, ts_last, ssrc = struct.unpack_from("!HII", pkt, rtp + 2)
    # SIPp's play_pcap_audio shifts every port by the file's lowest one onto
    # the SDP's media port: the events must come from the audio's addresses
    # and ports, or they land on another port.
    ip = audio_ip_offset(pkt, rtp)
    addresses, ports = bytes(pkt[ip + 12 : ip + 20]), bytes(pkt[rtp - 8 : rtp - 4])
    out = list(audio)
    start = t_last
    for path in a.events:
        _, _, _, events = read_pcap(path)
        start += round(a.gap_ms * 1_000_000)
        t0 = events[0][0]
        first_ts = {}  # the file's event timestamp -> the joined one
        for t, pkt, rtp in events:
            t = start + (t - t0)
            (old_ts,) = struct.unpack_from("!I", pkt, rtp + 4)
            if old_ts not in first_ts:
                first_ts[old_ts] = (ts_last + round((t - t_last) * a.clock / 1e9)) & 0xFFFFFFFF
            seq = (seq + 1) & 0xFFFF
            struct.pack_into("!HII", pkt, rtp + 2, seq, first_ts[old_ts], ssrc)
            ip = audio_ip_offset(pkt, rtp)
            pkt[ip + 12 : ip + 20] = addresses
            pkt[rtp - 8 : rtp - 4] = ports
            set_ip_checksum(pkt, ip)
            out.append((t, pkt, rtp))
    with open(a.output, "wb") as f:
        f.write(header)
        for t, pkt, _ in out:
            t_units = t // (1_000_000_000 // units)
            f.write(struct.pack(endian + "IIII", t_units // units, t_units % units, len(pkt), len(pkt)))
            f.write(pkt)
    print(
        f"join-rtp: {len(audio)} audio packets + {len(out) - len(audio)} event packets "
        f"from {len(a.events)} files, SSRC 0x{ssrc:08X}, last sequence number {seq}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
