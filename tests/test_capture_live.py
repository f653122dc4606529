"""Live sources: a stream read as it comes, the HEP collector, and a capture on loopback while
SIPp makes a call (bounded: every process has a timeout and is stopped by its PID)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipflow.capture.live import HepListener, LiveCapture, raw_udp_packet
from sipflow.capture.reader import CaptureReader
from sipflow.model.analysis import Analysis
from sipflow.model.call import CallState
from sipflow.pipeline import analyze

from .capture_util import pcap_bytes, records, sip_request, sip_response, udp_frame
from .conftest import SAMPLES


def _hep_datagrams(path: Path) -> list[bytes]:
    """The UDP payloads (HEP messages) of a HEP sample."""
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    return [bytes(p[UDP].payload) for p in rdpcap(str(path)) if UDP in p]


def test_a_stream_is_read_as_it_comes() -> None:
    """The first packet of a pipe is handed up while the writer still holds the rest back."""
    data = pcap_bytes(records([udp_frame(sip_request("INVITE")), udp_frame(sip_response(180, "Ringing"))]))
    first_end = 24 + 16 + len(udp_frame(sip_request("INVITE")))
    read_fd, write_fd = os.pipe()
    seen = threading.Event()

    def writer() -> None:
        os.write(write_fd, data[:first_end])
        seen.wait(timeout=10)  # the reader must get the first packet before the rest comes
        os.write(write_fd, data[first_end:])
        os.close(write_fd)

    thread = threading.Thread(target=writer)
    thread.start()
    got = []
    try:
        with CaptureReader(f"/dev/fd/{read_fd}") as reader:
            assert reader.live
            for packet in reader:
                got.append((packet.frame, time.monotonic()))
                seen.set()
    finally:
        thread.join()
        os.close(read_fd)
    assert [frame for frame, _ in got] == [1, 2]
    assert seen.is_set()


def test_hep_listener_collects_what_kamailio_sent(tmp_path: Path) -> None:
    sample = SAMPLES / "hep-udp.pcap"
    datagrams = _hep_datagrams(sample)
    kept = tmp_path / "kept.pcap"
    stop = threading.Event()
    partials: list[int] = []
    with HepListener("127.0.0.1", 0, write=str(kept)) as listener:

        def send() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for d in datagrams:
                    s.sendto(d, listener.address)
                    time.sleep(0.002)
            time.sleep(1.0)  # a partial analysis comes while nothing more arrives
            stop.set()

        sender = threading.Thread(target=send)
        sender.start()
        live = analyze([listener.path], partial=lambda a: partials.append(a.summary.sip_messages),
                       partial_every=0.2, stop=stop)  # fmt: skip
        sender.join()
    expected = analyze(sample)
    assert live.summary.sip_messages == expected.summary.sip_messages
    assert [c.call_ids for c in live.calls] == [c.call_ids for c in expected.calls]
    assert partials and partials[-1] == expected.summary.sip_messages
    assert analyze(kept).summary.sip_messages == expected.summary.sip_messages


def test_raw_udp_packets_decode() -> None:
    for src, dst in ((("127.0.0.9", 5000), ("127.0.0.1", 9060)), (("::1", 5000), ("::1", 9060))):
        packet = raw_udp_packet(src, dst, b"HEP3")
        assert packet[0] >> 4 == (6 if ":" in src[0] else 4)
        assert packet.endswith(b"HEP3")


# --- a live capture on loopback with SIPp ---------------------------------------------------


def _can_capture() -> str | None:
    if shutil.which("sipp") is None:
        return "sipp (Debian sip-tester) is not installed"
    if shutil.which("dumpcap") is None and shutil.which("tcpdump") is None:
        return "neither dumpcap nor tcpdump is installed"
    if os.geteuid() != 0:
        return "capturing on lo needs root (or capture capabilities)"
    return None


def _require_live() -> None:
    why = _can_capture()
    if why is not None:
        if os.environ.get("SIPFLOW_REQUIRE_LIVE"):
            pytest.fail(f"live capture is required here (SIPFLOW_REQUIRE_LIVE): {why}")
        pytest.skip(why)


def ringing_call(tmp_path: Path, ring_ms: int = 3000) -> Iterator[subprocess.Popen[bytes]]:
    """A SIPp callee on 127.0.0.2:5060 and a caller on 127.0.0.1 that cancels after ``ring_ms``
    of ringing: yields once both run; stops both (by PID) at the end."""
    scenario = (SAMPLES / "scenarios" / "uac-cancel.xml").read_text()
    assert 'milliseconds="1000"' in scenario
    uac = tmp_path / "uac-cancel-late.xml"
    uac.write_text(scenario.replace('milliseconds="1000"', f'milliseconds="{ring_ms}"'))
    common = ["-bind_local", "-nostdin", "-timeout", "20s", "-timeout_error", "-m", "1"]
    callee = subprocess.Popen(
        ["timeout", "30", "sipp", "-sf", str(SAMPLES / "scenarios" / "uas-ring.xml"), "-i", "127.0.0.2",
         "-p", "5060", *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    time.sleep(0.5)
    caller = subprocess.Popen(
        ["timeout", "30", "sipp", "127.0.0.2:5060", "-sf", str(uac), "-i", "127.0.0.1", "-p", "5072",
         *common],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    try:
        yield caller
    finally:
        for process in (caller, callee):
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=10)


def test_a_live_call_on_loopback_shows_while_it_rings(tmp_path: Path) -> None:
    _require_live()
    stop = threading.Event()
    seen: list[Analysis] = []
    kept = tmp_path / "live.pcapng"
    with LiveCapture(["lo"], "udp port 5060 or udp port 5072", write=str(kept)) as capture:
        time.sleep(1.0)  # the capture program opens the interface
        results: list[Analysis] = []
        reading = threading.Thread(
            target=lambda: results.append(
                analyze([capture.path], partial=seen.append, partial_every=0.3, stop=stop)
            )
        )
        reading.start()
        calls = ringing_call(tmp_path)
        caller = next(calls)
        caller.wait(timeout=30)
        time.sleep(1.0)
        stop.set()
        calls.close()
        capture.close()
        reading.join(timeout=10)
    assert results, "the live analysis did not end"
    ringing = [a for a in seen if any(c.state is CallState.RINGING for c in a.calls)]
    assert ringing, (
        f"no partial analysis showed the call ringing: {[[c.state for c in a.calls] for a in seen]}"
    )
    final = results[0]
    assert [c.state for c in final.calls] == [CallState.CANCELLED]
    assert analyze(kept).summary.sip_messages == final.summary.sip_messages
