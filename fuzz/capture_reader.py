"""Coverage-guided fuzz target: the capture reader (``sipflow.capture``).

    python fuzz/capture_reader.py fuzz/corpus/capture_reader -max_total_time=600

``check(data)`` is the harness: ``data`` is written to a file (the reader takes paths only)
and ``CaptureReader`` is iterated to the end. Only ``CaptureError`` may escape, and only from
the constructor; iterating a damaged file must end with warnings, never an exception. The
decoder's last-resort guard ("undecodable frame") firing counts as a bug too: it means a
length was not checked. One input in eight is also read gzip-compressed (the crc32 of the
input picks which), so the decompressing path sees the same records; gzip, bzip2 and xz seeds
in the corpus let the fuzzer damage the compressed streams themselves.

atheris is needed only to fuzz: ``tests/test_fuzz_regressions.py`` imports ``check`` from
here and runs it on the seed corpus and the regression inputs without atheris.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import os
import sys
import tempfile
import zlib

# Runnable from a checkout without installing sipflow.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if __name__ == "__main__":
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

    _instrumented = atheris.instrument_imports(include=["sipflow"])
else:
    _instrumented = contextlib.nullcontext()

with _instrumented:
    from sipflow.capture.reader import CaptureReader
    from sipflow.capture.types import SipPayload
    from sipflow.errors import CaptureError


@functools.cache
def _path() -> str:
    """One scratch file per process, in RAM when /dev/shm exists (removed after each read)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return os.path.join(base or tempfile.gettempdir(), f"sipflow-fuzz-{os.getpid()}.cap")


def read(data: bytes) -> None:
    """Read ``data`` as a capture file; fail on anything the reader must not do."""
    path = _path()
    with open(path, "wb") as f:
        f.write(data)
    try:
        try:
            reader = CaptureReader(path, name="fuzz")
        except CaptureError as exc:
            assert "\n" not in str(exc), "multi-line CaptureError"
            return
        with reader:
            for packet in reader:
                assert isinstance(packet, SipPayload)
                assert isinstance(packet.payload, bytes)
    finally:
        os.unlink(path)
    for warning in reader.warnings:
        assert "undecodable" not in warning.message, warning.message


def check(data: bytes) -> None:
    read(data)
    if zlib.crc32(data) & 7 == 0:
        read(gzip.compress(data, compresslevel=1, mtime=0))


def main(argv: list[str]) -> None:
    atheris.Setup(argv, lambda data: check(bytes(data)))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
