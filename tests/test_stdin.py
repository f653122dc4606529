"""Captures from pipes: ``-`` is standard input, nothing needs to seek, and what needs a second
read of the input (a worker process, a skew prescan, copying frames) says so or avoids it."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import sipflow
from sipflow.capture.reader import STDIN, CaptureReader
from sipflow.cli import main
from sipflow.errors import UsageError
from tests.conftest import SAMPLES

SAMPLE = SAMPLES / "proxy-call.pcap"
PCAPNG = SAMPLES / "b2bua-3pcc.pcap"


def sipflow_cli(args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """The installed command in a child process, its standard input a real pipe."""
    return subprocess.run(
        [sys.executable, "-m", "sipflow", *args], input=stdin, capture_output=True, timeout=120, check=False
    )


def calls_json(args: list[str], stdin: bytes = b"") -> dict[str, object]:
    result = sipflow_cli(["calls", *args, "--format", "json"], stdin)
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    document.pop("files")
    return document


@pytest.mark.parametrize(
    "compress",
    [lambda b: b, gzip.compress, bz2.compress, lzma.compress],
    ids=["plain", "gzip", "bzip2", "xz"],
)
@pytest.mark.parametrize("path", [SAMPLE, PCAPNG], ids=lambda p: p.name)
def test_a_capture_on_standard_input_gives_what_the_file_gives(path: Path, compress: object) -> None:
    assert callable(compress)
    data = compress(path.read_bytes())
    assert calls_json(["-"], data) == calls_json([str(path)])
    assert calls_json(["/dev/stdin"], data) == calls_json([str(path)])


def test_standard_input_beside_files_with_workers() -> None:
    # --jobs 2: the regular file may go to a worker, the pipe is read here; the skew prescan
    # cannot read the pipe twice and leaves it out.
    other = SAMPLES / "basic-call.pcap"
    piped = calls_json(["-", str(other), "--jobs", "2"], SAMPLE.read_bytes())
    files = calls_json([str(SAMPLE), str(other), "--jobs", "2"])
    assert json.dumps(piped) == json.dumps(files).replace(json.dumps(str(SAMPLE)), json.dumps(STDIN))


@pytest.mark.parametrize("pipe", [STDIN, "/dev/stdin"])
def test_a_pipe_beside_a_file_is_read_once(pipe: str) -> None:
    # The clock skew prescan reads the start of every file again: never a pipe's, whatever it
    # is called, or it would take octets the analysis has not read yet.
    other = SAMPLES / "basic-call.pcap"
    piped = calls_json([pipe, str(other)], SAMPLE.read_bytes())
    files = calls_json([str(SAMPLE), str(other)])
    assert json.dumps(piped) == json.dumps(files).replace(json.dumps(str(SAMPLE)), json.dumps(pipe))


def test_a_pcap_cannot_be_copied_out_of_dev_stdin(tmp_path: Path) -> None:
    result = sipflow_cli(
        ["export", "/dev/stdin", "--all", "-o", str(tmp_path / "x.pcap")], SAMPLE.read_bytes()
    )
    assert result.returncode == 2
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("sipflow: error: cannot write a pcap from standard input")


def test_a_pipe_that_trickles_is_read_as_the_file() -> None:
    # One octet at a time for the head (the magic number, the pcap header), then odd pieces:
    # no read may assume it gets what it asked for.
    data = SAMPLE.read_bytes()
    r, w = os.pipe()

    def write() -> None:
        with os.fdopen(w, "wb", buffering=0) as out:
            pos = 0
            for size in [1] * 40 + [7, 3, 1000, 1, 65536] * 100:
                if pos >= len(data):
                    break
                out.write(data[pos : pos + size])
                pos += size
            out.write(data[pos:])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with CaptureReader(f"/dev/fd/{r}", name="pipe") as reader:
            assert not reader.reopenable and reader.size == 0
            piped = [(p.frame, p.timestamp, p.payload) for p in reader]
    finally:
        writer.join()
        os.close(r)
    with CaptureReader(SAMPLE) as reader:
        assert reader.reopenable
        assert piped == [(p.frame, p.timestamp, p.payload) for p in reader]


def test_standard_input_without_a_file_descriptor() -> None:
    # An embedding application or a test harness: sys.stdin has no fileno; its buffer is read.
    runner = CliRunner()
    result = runner.invoke(main, ["calls", "-", "--format", "json"], input=SAMPLE.read_bytes())
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["files"] == [STDIN]
    assert document["summary"]["calls"] == 1


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"", "empty file"),
        (b"not a capture", "not a pcap or pcapng file: magic number 6e6f7420"),
        (gzip.compress(b"junk"), "not a pcap or pcapng file (after gzip decompression): magic number 6a75"),
    ],
    ids=["empty", "junk", "gzip-junk"],
)  # fmt: skip
def test_bad_standard_input_is_one_line_and_exit_2(stdin: bytes, message: str) -> None:
    result = sipflow_cli(["calls", "-"], stdin)
    assert result.returncode == 2
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith(f"sipflow: error: -, byte offset 0: {message}")


def test_a_pcap_cannot_be_copied_out_of_a_pipe(tmp_path: Path) -> None:
    result = sipflow_cli(["export", "-", "--all", "-o", str(tmp_path / "x.pcap")], SAMPLE.read_bytes())
    assert result.returncode == 2
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("sipflow: error: cannot write a pcap from standard input")
    assert not (tmp_path / "x.pcap").exists()
    # Other formats read the pipe as a file.
    result = sipflow_cli(["export", "-", "--call", "1", "-o", str(tmp_path / "x.json")], SAMPLE.read_bytes())
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads((tmp_path / "x.json").read_text())["summary"]["calls"] == 1


def test_analyze_takes_one_path_or_several_and_rejects_nonsense() -> None:
    one = sipflow.analyze(str(SAMPLE))  # a string is a path, not its characters
    assert one.files == (str(SAMPLE),)
    assert sipflow.analyze(SAMPLE).files == (str(SAMPLE),)
    assert len(sipflow.analyze([SAMPLE]).calls) == len(one.calls)
    for bad, text in [
        (b"x.pcap", "not bytes"),
        ([1], "not a file name: 1"),
        ([""], "not a file name: ''"),
        (["-", "-"], "standard input (-) can be read only once"),
        (42, "not int"),
    ]:
        with pytest.raises(UsageError) as info:
            sipflow.analyze(bad)  # type: ignore[arg-type]
        assert text in str(info.value)
