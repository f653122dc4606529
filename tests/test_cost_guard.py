"""A guard on the cost per SIP message that does not time anything.

Wall-clock figures belong to ``benchmarks/``; here a fixed, generated capture (1,000 seeded
scenarios of ``benchmarks/generate.py``: calls with unique Call-IDs, tags and branches,
realistic headers and SDP, registrations, OPTIONS, retransmissions) is analysed and the work
is counted: Python function calls per message (``cProfile``, deterministic for a given
interpreter) and bytes the result keeps per message (``tracemalloc``). An accidental
per-message cost (a second parse, a copy of the headers, a lookup that scans) moves these
counts and fails the build without timing noise. The bounds are the counts measured when
they were set, plus a margin; lower them when the code gets cheaper.
"""

from __future__ import annotations

import cProfile
import gc
import importlib.util
import pstats
import sys
import tracemalloc
from pathlib import Path

import pytest

from sipflow.capture.reader import CaptureReader
from sipflow.model.tracker import Tracker
from sipflow.pipeline import analyze
from sipflow.sip.parse import COMPILED, parse_message

ROOT = Path(__file__).resolve().parent.parent

if COMPILED:
    INGEST_CALLS_PER_MESSAGE = 40
    """Read, parse and feed one message, the C scan and parse built: 34 when set."""
    ANALYZE_CALLS_PER_MESSAGE = 120
    """The whole ``analyze`` (dedupe, transactions, dialogs, legs, correlation, calls): 104 when set."""
    RETAINED_BYTES_PER_MESSAGE = 1650
    """What the ``Analysis`` keeps per message, its raw bytes (about 480) included: 1,430 when set
    (a call's messages share one str per Call-ID, tag and branch)."""
else:
    INGEST_CALLS_PER_MESSAGE = 160
    """The same in pure Python (``SIPFLOW_PURE_PYTHON``): 148 when set."""
    ANALYZE_CALLS_PER_MESSAGE = 250
    """222 when set."""
    RETAINED_BYTES_PER_MESSAGE = 2000
    """1,730 when set."""


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location(
        "sipflow_bench_generate", ROOT / "benchmarks" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    path = tmp_path_factory.mktemp("guard") / "guard.pcap"
    module.generate(path, calls=1000, rtp_per_call=0, duration=60.0, hosts=200)
    return path


def _calls(func: object) -> int:
    profile = cProfile.Profile()
    profile.enable()
    func()  # type: ignore[operator]
    profile.disable()
    return pstats.Stats(profile).total_calls  # type: ignore[attr-defined, no-any-return]


def test_function_calls_per_message(capture: Path) -> None:
    analyze([capture])  # warm the memos and imports: count the steady state
    tracker = Tracker()

    def ingest() -> None:
        with CaptureReader(capture) as reader:
            for packet in reader:
                tracker.feed(packet, parse_message(packet.payload))

    ingest_calls = _calls(ingest)
    messages = len(tracker.messages)
    assert messages > 5_000
    assert ingest_calls / messages <= INGEST_CALLS_PER_MESSAGE, ingest_calls / messages
    analyze_calls = _calls(lambda: analyze([capture]))
    assert analyze_calls / messages <= ANALYZE_CALLS_PER_MESSAGE, analyze_calls / messages


def test_bytes_kept_per_message(capture: Path) -> None:
    gc.collect()
    tracemalloc.start()
    try:
        analysis = analyze([capture])
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_message = kept / analysis.summary.sip_messages
    assert per_message <= RETAINED_BYTES_PER_MESSAGE, per_message
