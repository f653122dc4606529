"""Shared fixtures: where the captures are, tshark for live cross-checks, golden files."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
GOLDEN = Path(__file__).resolve().parent / "golden"
SHARED = Path(os.environ.get("SIPFLOW_SHARED", ROOT.parent / "shared"))
SHARED_CAPTURES = SHARED / "captures"
RFC4475 = SHARED / "rfc4475"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="Rewrite tests/golden/ from the current output."
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def sample_captures() -> list[Path]:
    return sorted(p for p in SAMPLES.glob("*.pcap*") if p.is_file())


def shared_captures() -> list[Path]:
    if not SHARED_CAPTURES.is_dir():
        return []
    return sorted(p for p in SHARED_CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz"))


def _require_tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        if os.environ.get("SIPFLOW_REQUIRE_TSHARK"):
            pytest.fail("tshark is required here (SIPFLOW_REQUIRE_TSHARK is set) but not on PATH")
        pytest.skip("tshark not installed (apt-get install tshark)")
    return path


@pytest.fixture(scope="session")
def tshark() -> str:
    return _require_tshark()


def run_tshark(tshark: str, args: Sequence[str]) -> str:
    """Run tshark with default preferences (no personal profile) and return its stdout."""
    env = dict(os.environ, WIRESHARK_CONFIG_DIR="/nonexistent-sipflow", HOME="/nonexistent-sipflow")
    result = subprocess.run([tshark, *args], capture_output=True, text=True, env=env, check=True, timeout=300)
    return result.stdout
