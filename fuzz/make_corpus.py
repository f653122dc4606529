"""(Re)build the seed corpora in fuzz/corpus/ from the sample captures.

    python fuzz/make_corpus.py [--shared /work/shared]

sip_parser: every distinct SIP payload of samples/*.pcap, tests/captures/transports/*.pcap
(and the shared captures), plus the RFC 4475 torture messages. capture_reader: the pcap/pcapng
files under 50 kB, each cut to its first records, plus gzip/bzip2/xz-compressed and truncated
variants of a few of them.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import lzma
import os
import sys
from pathlib import Path

# Runnable from a checkout without installing sipflow.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sipflow.capture.reader import CaptureReader
from sipflow.errors import CaptureError

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
MAX_SEED = 50_000


def _write(target: str, data: bytes, prefix: str) -> bool:
    name = f"{prefix}-{hashlib.sha1(data).hexdigest()[:12]}"
    path = CORPUS / target / name
    if path.exists():
        return False
    path.write_bytes(data)
    return True


def _captures(shared: Path) -> list[Path]:
    files = sorted((ROOT / "samples").glob("*.pcap*"))
    files += sorted((ROOT / "tests" / "captures" / "transports").glob("*.pcap*"))
    if (shared / "captures").is_dir():
        files += sorted((shared / "captures").glob("*.pcap*"))
    return files


def sip_seeds(shared: Path, per_file: int = 40) -> int:
    written = 0
    seen: set[bytes] = set()
    for path in _captures(shared):
        taken = 0
        try:
            with CaptureReader(path) as reader:
                for packet in reader:
                    payload = packet.payload
                    # One of each start line per file is plenty for coverage.
                    key = payload.split(b"\r\n", 1)[0][:40]
                    if key in seen or len(payload) > 4000:
                        continue
                    seen.add(key)
                    written += _write("sip_parser", payload, path.stem[:24])
                    taken += 1
                    if taken >= per_file:
                        break
        except CaptureError:
            continue
    rfc4475 = shared / "rfc4475"
    for dat in sorted(rfc4475.glob("*.dat")) if rfc4475.is_dir() else []:
        written += _write("sip_parser", dat.read_bytes(), "rfc4475-" + dat.stem)
    return written


def capture_seeds(shared: Path, cut: int = 12_000) -> int:
    written = 0
    for path in _captures(shared):
        data = path.read_bytes()
        if len(data) > MAX_SEED:
            continue
        # The first few records hold the headers and the first messages; small inputs fuzz faster.
        head = data[:cut]
        written += _write("capture_reader", head, path.stem[:24])
    small = sorted((p for p in _captures(shared) if p.stat().st_size < 8000), key=lambda p: p.stat().st_size)
    for path in small[:3]:
        data = path.read_bytes()
        written += _write("capture_reader", gzip.compress(data, mtime=0), "gz-" + path.stem[:20])
        written += _write("capture_reader", gzip.compress(data, mtime=0)[:-9], "gzcut-" + path.stem[:17])
    if small:
        data = small[0].read_bytes()
        written += _write("capture_reader", bz2.compress(data), "bz2-" + small[0].stem[:20])
        written += _write("capture_reader", lzma.compress(data), "xz-" + small[0].stem[:20])
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    for target in ("sip_parser", "capture_reader"):
        (CORPUS / target).mkdir(parents=True, exist_ok=True)
    print("sip_parser seeds written:", sip_seeds(args.shared))
    print("capture_reader seeds written:", capture_seeds(args.shared))


if __name__ == "__main__":
    main()
