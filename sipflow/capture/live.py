"""Live sources, each a capture stream that ``CaptureReader`` reads as it comes.

- ``LiveCapture``: packets of network interfaces through libpcap, by ``dumpcap`` (several
  interfaces, pcapng) or ``tcpdump`` (one interface, pcap) with a BPF filter.
- ``HepListener``: a HEP collector (what ``sngrep -L`` is): HEP datagrams received on a UDP
  address, each written into the stream as the raw IP packet it came in.

Each has a ``path`` (``/dev/fd/N``, the read end of a pipe) to hand to ``analyze`` or
``CaptureReader``, optionally a copy of the stream written to a file as it goes (``write``),
and ``close()`` stops it (the process it started, by its PID; the socket it opened).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import IO, Final

from sipflow.errors import UsageError

SIP_FILTER: Final = (
    "port 5060 or port 5061 or port 5080"
    " or (udp and (udp[8:4] = 0x5349502f or udp[8:4] = 0x494e5649 or udp[8:4] = 0x41434b20"
    " or udp[8:4] = 0x42594520 or udp[8:4] = 0x43414e43 or udp[8:4] = 0x52454749"
    " or udp[8:4] = 0x4f505449))"
    " or (tcp and (tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x5349502f"
    " or tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x494e5649))"
)
"""The default BPF filter: the usual SIP ports, and UDP or TCP packets whose payload starts
like SIP on any port (``SIP/``, ``INVI``, ``ACK ``, ``BYE ``, ``CANC``, ``REGI``, ``OPTI``)."""

_LINKTYPE_RAW: Final = 101


class _Tee:
    """Copies a stream into the write end of a pipe (and a file), in a thread, until it ends."""

    def __init__(self, source: IO[bytes], write: str | None) -> None:
        read_fd, self._write_fd = os.pipe()
        self.path = f"/dev/fd/{read_fd}"
        self._read_fd = read_fd
        self._source = source
        self._file = open(write, "wb") if write else None  # noqa: SIM115  # closed by the thread
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while chunk := os.read(self._source.fileno(), 1 << 16):
                if self._file is not None:
                    self._file.write(chunk)
                    self._file.flush()
                os.write(self._write_fd, chunk)
        except OSError:
            pass  # the reader went away, or the source was closed
        finally:
            with contextlib.suppress(OSError):
                os.close(self._write_fd)
            if self._file is not None:
                self._file.close()

    def close(self) -> None:
        self._thread.join(timeout=2)
        with contextlib.suppress(OSError):
            os.close(self._read_fd)


class LiveCapture:
    """A capture of ``interfaces`` with the BPF ``bpf`` filter (default ``SIP_FILTER``), by
    dumpcap where it is installed, else tcpdump (one interface)."""

    def __init__(
        self, interfaces: Sequence[str], bpf: str | None = None, *, write: str | None = None
    ) -> None:
        if not interfaces:
            raise UsageError("no interface to capture on")
        bpf = SIP_FILTER if bpf is None else bpf
        dumpcap, tcpdump = shutil.which("dumpcap"), shutil.which("tcpdump")
        if dumpcap is not None:
            command = [dumpcap, "-q", "-w", "-", "-f", bpf]
            for name in interfaces:
                command += ["-i", name]
        elif tcpdump is not None:
            if len(interfaces) > 1:
                raise UsageError("several interfaces need dumpcap (Wireshark): tcpdump captures on one")
            command = [tcpdump, "-i", interfaces[0], "-U", "-s", "0", "-w", "-", bpf]
        else:
            raise UsageError("live capture needs dumpcap (Wireshark) or tcpdump on PATH")
        self.command = command
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._process.stdout is not None
        self._tee = _Tee(self._process.stdout, write)
        self.path = self._tee.path
        """What to read the capture from (``analyze([capture.path])``)."""

    def failure(self) -> str | None:
        """What the capture program said when it stopped on its own (no permission, no such
        interface, a bad filter), or None while it runs."""
        if self._process.poll() is None:
            return None
        assert self._process.stderr is not None
        text = self._process.stderr.read().decode("utf-8", "replace").strip()
        return text.splitlines()[-1] if text else f"{os.path.basename(self.command[0])} exited"

    def close(self) -> None:
        """Stop the capture program (the one this started, by its PID) and the copying."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._tee.close()
        for stream in (self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def raw_udp_packet(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """An IPv4 or IPv6 packet carrying ``payload`` in UDP from ``src`` to ``dst`` (the UDP
    checksum left out, as IPv4 allows; IPv6 packets carry zero too, which receivers here read)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    if ":" in src[0] or ":" in dst[0]:
        s = socket.inet_pton(socket.AF_INET6, src[0].split("%")[0])
        d = socket.inet_pton(socket.AF_INET6, dst[0].split("%")[0])
        return struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + s + d + udp
    s, d = socket.inet_aton(src[0]), socket.inet_aton(dst[0])
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, s, d)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + udp


class HepListener:
    """Receives HEP (v1, v2, v3) datagrams on ``host:port`` (UDP) and writes each, as the IP
    packet it came in, into a pcap stream (``path``) that the HEP decoder reads."""

    def __init__(self, host: str, port: int, *, write: str | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise UsageError(f"cannot listen for HEP on {host}:{port}: {exc.strerror or exc}") from None
        self._socket.settimeout(0.25)
        self.address = self._socket.getsockname()[:2]
        """The address and port listened on (the port the system chose for port 0)."""
        read_fd, self._write_fd = os.pipe()
        self.path = f"/dev/fd/{read_fd}"
        self._read_fd = read_fd
        self._file = open(write, "wb") if write else None  # noqa: SIM115  # closed by close()
        self._closing = threading.Event()
        self._emit(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, _LINKTYPE_RAW))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _emit(self, data: bytes) -> None:
        if self._file is not None:
            self._file.write(data)
            self._file.flush()
        os.write(self._write_fd, data)

    def _run(self) -> None:
        try:
            while not self._closing.is_set():
                try:
                    data, sender = self._socket.recvfrom(65535)
                except TimeoutError:
                    continue
                now = time.time()
                packet = raw_udp_packet((sender[0], sender[1]), (self.address[0], self.address[1]), data)
                sec, usec = int(now), int((now % 1) * 1_000_000)
                self._emit(struct.pack("<IIII", sec, usec, len(packet), len(packet)) + packet)
        except OSError:
            pass  # closed
        finally:
            with contextlib.suppress(OSError):
                os.close(self._write_fd)

    def failure(self) -> str | None:
        """Never: a listener that could bind runs until closed."""
        return None

    def close(self) -> None:
        """Stop listening; the stream ends."""
        self._closing.set()
        self._thread.join(timeout=2)
        self._socket.close()
        if self._file is not None:
            self._file.close()
        with contextlib.suppress(OSError):
            os.close(self._read_fd)

    def __enter__(self) -> HepListener:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
