#!/usr/bin/env python3
"""Write an impaired copy of an RTP pcap for SIPp's play_pcap_audio.

Used by samples/make-media-samples.sh (sample media-loss-jitter): the kernel
there has no netem qdisc, so loss and jitter are put into the audio file
SIPp plays. SIPp paces play_pcap_audio by the capture timestamps of the
pcap, so a packet missing from the file is never sent (real loss: a gap in
the RTP sequence numbers) and a later timestamp sends it later (real
jitter: the RTP timestamps keep their 20/30 ms steps).

  impair-rtp.py IN.pcap OUT.pcap [--seed N] [--loss PCT] [--burst N]
                [--max-delay-ms MS]

Seeded (default 2024), so the same input gives the same output:
  * about PCT % (default 3) of the packets are removed: one burst of
    BURST (default 4) consecutive packets, the rest single packets; the
    first and the last packet are always kept;
  * every kept packet's timestamp is moved later by a random delay of
    0..MS ms (default 25), then raised where needed so that timestamps
    never decrease (the packet order stays the same).
Only classic pcap files (microsecond or nanosecond, either byte order) are
read; standard library only. A summary goes to stderr.
"""
import argparse
import random
import struct
import sys

MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24 or data[:4] not in MAGICS:
        sys.exit(f"impair-rtp: {path}: not a classic pcap file")
    endian, units = MAGICS[data[:4]]
    header = data[:24]
    packets = []  # (timestamp in units, record header rest, packet bytes)
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            sys.exit(f"impair-rtp: {path}: truncated packet record")
        packets.append((sec * units + frac, orig, data[off:off + incl]))
        off += incl
    return endian, units, header, packets


def choose_losses(n, pct, burst, rng):
    """Indexes to remove: one burst of `burst` plus single packets."""
    total = max(burst, round(n * pct / 100.0))
    if n < burst + 2 or total > n - 2:
        sys.exit(f"impair-rtp: {n} packets are too few to remove {total}")
    lost = set()
    start = rng.randrange(1, n - burst)  # never the first or the last packet
    lost.update(range(start, start + burst))
    while len(lost) < total:
        i = rng.randrange(1, n - 1)
        # single losses: not next to another lost packet, so the burst
        # stays the only run of more than one
        if i in lost or i - 1 in lost or i + 1 in lost:
            continue
        lost.add(i)
    return lost, start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--loss", type=float, default=3.0, help="percent of packets removed")
    ap.add_argument("--burst", type=int, default=4, help="length of the one loss burst")
    ap.add_argument("--max-delay-ms", type=float, default=25.0)
    a = ap.parse_args()

    endian, units, header, packets = read_pcap(a.input)
    rng = random.Random(a.seed)
    lost, burst_at = choose_losses(len(packets), a.loss, a.burst, rng)

    out = [header]
    last = None
    delays = []
    for i, (ts, orig, pkt) in enumerate(packets):
        delay = rng.uniform(0.0, a.max_delay_ms) / 1000.0  # drawn for every packet
        if i in lost:
            continue
        if i == 0:
            delay = 0.0  # the first packet sets SIPp's time origin
        t = ts + round(delay * units)
        if last is not None and t < last:
            t = last
        last = t
        delays.append((t - ts) / units * 1000.0)
        out.append(struct.pack(endian + "IIII", t // units, t % units, len(pkt), orig))
        out.append(pkt)
    with open(a.output, "wb") as f:
        f.write(b"".join(out))
    print(
        f"impair-rtp: {len(packets)} packets -> {len(packets) - len(lost)}: "
        f"{len(lost)} removed ({100.0 * len(lost) / len(packets):.1f} %; burst of "
        f"{a.burst} from packet #{burst_at + 1}, singles at "
        f"{sorted(i + 1 for i in lost if not burst_at <= i < burst_at + a.burst)}), "
        f"delay {min(delays):.1f}..{max(delays):.1f} ms, seed {a.seed}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
