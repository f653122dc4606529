"""The ladder's pager, driven through a pseudo-terminal as a person at a terminal runs it."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES


def run_on_a_terminal(tmp_path: Path, env: dict[str, str]) -> str:
    """``sipflow ladder`` with its output on a pseudo-terminal; PAGER records the LESS it was given."""
    record = tmp_path / "less.txt"
    master, slave = pty.openpty()
    base = {k: v for k, v in os.environ.items() if k not in ("LESS", "PAGER", "MANPAGER", "LV")}
    pager = f'sh -c \'printf "%s" "${{LESS-unset}}" > {record}; cat > /dev/null\''
    env = base | {"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40", "PAGER": pager} | env
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "sipflow", "ladder", str(SAMPLES / "proxy-call.pcap"), "--call", "1"],
            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
        )  # fmt: skip
        os.close(slave)
        while True:  # drain the terminal so the child never blocks on it
            try:
                if not os.read(master, 65536):
                    break
            except OSError:
                break
        assert process.wait(timeout=60) == 0
    finally:
        os.close(master)
    return record.read_text()


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_the_pager_gets_less_frx_when_less_is_unset(tmp_path: Path) -> None:
    assert run_on_a_terminal(tmp_path, {}) == "FRX"


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_users_less_is_kept(tmp_path: Path) -> None:
    assert run_on_a_terminal(tmp_path, {"LESS": "-S"}) == "-S"
