"""One capture over several processes (``sipflow.shard``): the JSON is that of one process."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import sipflow.sip.parse as parse_module
from sipflow import readahead, shard
from sipflow.capture.types import SipPayload
from sipflow.cli import main
from sipflow.correlate import CorrelationOptions
from sipflow.errors import CaptureError
from sipflow.pipeline import AnalysisOptions, analyze
from sipflow.readahead import Parsed, ParseFailure, parse_or_failure
from sipflow.render.json import iter_dumps
from tests.conftest import SAMPLES, sample_captures, shared_captures
from tests.sipmsg import request, response

ROTATED = sorted((SAMPLES / "rotated").glob("part-*.pcap"))


@pytest.fixture(autouse=True)
def _threads_of_other_tests_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other tests in this process leave idle pool threads behind (Dask's offload thread), which
    would make ``shard.start`` decline to fork; here only the threads a test starts count."""
    before = set(threading.enumerate()) - {threading.main_thread()}
    monkeypatch.setattr(threading, "active_count", lambda: len(set(threading.enumerate()) - before))


def _one_process(paths: list[str], options: AnalysisOptions, **selection: object) -> str:
    analysis = analyze(paths, options)
    return "".join(iter_dumps(analysis, analysis.select(**selection)))  # type: ignore[arg-type]


def _sharded(paths: list[str], options: AnalysisOptions, **selection: object) -> str | None:
    run = shard.calls_json(paths, options, selection=dict(selection), min_bytes=0)
    return None if run is None else "".join(run.pieces)


CAPTURES = [p for p in sample_captures() + shared_captures() if p.stat().st_size]


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_same_json_as_one_process(path: Path) -> None:
    # Every item (--all), so that registrations and the like are compared too.
    options = AnalysisOptions(jobs=1)
    expected = _one_process([str(path)], options, all_kinds=True)
    assert _sharded([str(path)], AnalysisOptions(jobs=3), all_kinds=True) == expected


def test_indented_json_as_one_process() -> None:
    # Indented, a worker renders each call whole (no legs made ahead).
    path = str(SAMPLES / "b2bua-load.pcap")
    analysis = analyze([path], AnalysisOptions(jobs=1))
    expected = "".join(iter_dumps(analysis, analysis.calls, indent=2))
    run = shard.calls_json([path], AnalysisOptions(jobs=2), indent=2, min_bytes=0)
    assert run is not None
    assert "".join(run.pieces) == expected


def test_several_files_merged_and_deduped_as_one_process() -> None:
    # Rotated parts with calls across the cuts, and a capture with two interfaces (skews,
    # copies of one message at two capture points).
    for paths in ([str(p) for p in ROTATED], [str(SAMPLES / "two-probes.pcapng")]):
        expected = _one_process(paths, AnalysisOptions(jobs=1))
        assert _sharded(paths, AnalysisOptions(jobs=2)) == expected


def test_b2bua_legs_on_different_workers_make_one_call() -> None:
    # The legs of a B2BUA's calls have Call-IDs of their own: most calls have legs in both
    # workers, which hand them over to the call's owner.
    path = str(SAMPLES / "b2bua-load.pcap")
    expected = _one_process([path], AnalysisOptions(jobs=1))
    document = json.loads(expected)
    assert sum(len(c["legs"]) > 1 for c in document["calls"]) >= 10
    assert _sharded([path], AnalysisOptions(jobs=2)) == expected
    off = CorrelationOptions(enabled=False)
    expected = _one_process([path], AnalysisOptions(jobs=1, correlation=off))
    assert _sharded([path], AnalysisOptions(jobs=2, correlation=off)) == expected


def test_selection_applied_in_the_workers() -> None:
    path = str(SAMPLES / "b2bua-load.pcap")
    # A B leg's Call-ID selects its call; the caller's address needs every leg (handed over
    # whole), the others only the call's outcome (legs handed over as outlines).
    b_leg = next(
        c for c in json.loads(_one_process([path], AnalysisOptions(jobs=1)))["calls"] if len(c["legs"]) > 1
    )
    selections = (
        {"state": ("completed",)},
        {"status": "4xx"},
        {"from_": "1"},
        {"to": "2"},
        {"call_id": b_leg["legs"][1]["call_id"]},
        {"call_id": "none-such"},
    )
    for selection in selections:
        expected = _one_process([path], AnalysisOptions(jobs=1), **selection)
        assert _sharded([path], AnalysisOptions(jobs=2), **selection) == expected
    assert not json.loads(expected)["calls"]  # none selected: the document all the same


def _broken_call_id(k: int) -> str:
    """The Call-ID of the k-th refused OPTIONS: of two workers, alternately the first's and the
    second's (the workers fork from this process, so they hash as it does)."""
    return next(f"m{k}-{j}" for j in itertools.count() if hash(f"m{k}-{j}") % 2 == (k // 2) % 2)


def _mixed_capture(tmp_path: Path, count: int = 24) -> str:
    """Calls whose Call-ID is read alone (plain messages) or only by parsing (a folded header
    line, bare LFs), and packets that are no message: OPTIONS that ``_failing`` refuses (their
    Call-ID read alone) and Status-Lines with a CR inside (none read), in turn."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    link = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
    payloads: list[bytes] = []
    for k in range(count):
        invite = request("INVITE", call_id=f"c{k}@h", branch=f"z9hG4bK-{k}", from_tag=f"f{k}")
        busy = response(invite, 486, "Busy Here", to_tag=f"t{k}")
        if k % 3 == 1:  # folded: the compiled scan does not read it, every worker parses it
            invite = invite.replace(b"\r\nMax-Forwards: 70", b"\r\nMax-Forwards:\r\n 70")
        elif k % 3 == 2:
            invite, busy = invite.replace(b"\r\n", b"\n"), busy.replace(b"\r\n", b"\n")
        payloads += [invite, busy]
        if k % 2:
            payloads.append(
                request(
                    "OPTIONS", call_id=_broken_call_id(k), branch=f"z9hG4bK-o{k}", extra="X-Broken: 1\r\n"
                )
            )
        else:
            payloads.append(f"SIP/2.0 200\rX\r\nCall-ID: m{k}\r\n\r\n".encode())
    frames = [
        link / IP(src="10.0.0.1", dst="10.0.0.3") / UDP(sport=5060, dport=5060) / payload
        for payload in payloads
    ]
    for n, frame in enumerate(frames):
        frame.time = 1_700_000_000 + n / 10
    path = tmp_path / "mixed.pcap"
    wrpcap(str(path), frames)
    return str(path)


def _failing(packet: SipPayload) -> Parsed:
    """``parse_or_failure``, failing the messages marked X-Broken: a payload that passes the
    start-line test and the Call-ID read alone but no parse is rare; these stand for it."""
    if b"X-Broken" in packet.payload:
        return ParseFailure("broken on purpose", 0)
    return parse_or_failure(packet)


def test_messages_parsed_by_their_worker_and_malformed_ones_kept_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _mixed_capture(tmp_path)
    monkeypatch.setattr(readahead, "parse_or_failure", _failing)
    monkeypatch.setattr(shard, "parse_or_failure", _failing)
    hint = parse_module.call_id_hint
    if hint is not None:  # the refused OPTIONS go to the workers of both shards, by Call-ID
        assert hint(request("OPTIONS", call_id="m1")) == "m1"
        assert hint(b"SIP/2.0 200\rX\r\nCall-ID: m0\r\n\r\n") is None
        assert {hash(_broken_call_id(k)) % 2 for k in range(1, 24, 2)} == {0, 1}
    expected = _one_process([path], AnalysisOptions(jobs=1), all_kinds=True)
    document = json.loads(expected)
    reasons = [m["reason"] for m in document["malformed"]]
    assert len(reasons) == 24 and reasons.count("broken on purpose") == 12
    assert len(document["calls"]) == 24
    for jobs in (2, 3):
        assert _sharded([path], AnalysisOptions(jobs=jobs), all_kinds=True) == expected


def test_a_call_id_misread_alone_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Were the Call-ID read alone ever not the parsed one, a leg could be split between workers:
    # the sharded run stops with the frame, not a wrong answer, and the CLI reads in one process.
    path = _mixed_capture(tmp_path, count=4)
    monkeypatch.setattr(shard, "call_id_hint", lambda data: "not-the-call-id")
    with pytest.raises(shard.ShardingError, match=r"mixed.pcap: frame \d+: the Call-ID read alone"):
        shard.calls_json([path], AnalysisOptions(jobs=2), min_bytes=0)
    monkeypatch.setattr(shard, "MIN_BYTES", 0)
    one = CliRunner().invoke(main, ["calls", path, "--format", "json", "--jobs", "1"])
    two = CliRunner().invoke(main, ["calls", path, "--format", "json", "--jobs", "2"])
    assert two.exit_code == 0 and two.stdout == one.stdout and one.exit_code == 0
    assert "the Call-ID read alone" in two.stderr and "reading it again in one process" in two.stderr


def test_one_process_where_sharding_does_not_apply(tmp_path: Path) -> None:
    path = str(SAMPLES / "basic-call.pcap")
    assert shard.calls_json([path], AnalysisOptions(jobs=1), min_bytes=0) is None
    assert shard.calls_json([path], AnalysisOptions(jobs=2)) is None  # smaller than MIN_BYTES
    assert shard.calls_json([path], AnalysisOptions(jobs=2, media=True), min_bytes=0) is None
    assert shard.calls_json(["-"], AnalysisOptions(jobs=2), min_bytes=0) is None
    # More Call-IDs than the limit: one process says which messages it left out.
    three = str(SAMPLES / "three-calls.pcap")
    assert shard.calls_json([three], AnalysisOptions(jobs=2, max_call_ids=1), min_bytes=0) is None
    assert shard.calls_json([three], AnalysisOptions(jobs=2, max_call_ids=3), min_bytes=0) is not None
    assert shard.shard_count(None) >= 1
    assert shard.shard_count(4) == 4


def test_one_process_while_other_threads_run() -> None:
    # A fork copies only the thread that forks: a lock another thread held stays held.
    path = str(SAMPLES / "basic-call.pcap")
    release = threading.Event()
    thread = threading.Thread(target=release.wait, daemon=True)
    thread.start()
    try:
        assert shard.calls_json([path], AnalysisOptions(jobs=2), min_bytes=0) is None
    finally:
        release.set()
        thread.join()


def test_a_bad_file_is_the_error_one_process_gives(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-capture.pcap"
    bad.write_bytes(b"this is no capture file at all" * 10)
    with pytest.raises(CaptureError) as one:
        analyze([str(bad)])
    with pytest.raises(CaptureError) as sharded:
        shard.calls_json([str(bad)], AnalysisOptions(jobs=2), min_bytes=0)
    assert str(sharded.value) == str(one.value)


def test_cli_jobs_gives_the_same_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shard, "MIN_BYTES", 0)
    used = []
    real = shard.start

    def spy(*args: object, **kwargs: object) -> shard.Sharded | None:
        started = real(*args, **kwargs)  # type: ignore[arg-type]
        used.append(started is not None)
        return started

    monkeypatch.setattr(shard, "start", spy)
    runner = CliRunner()
    path = str(SAMPLES / "b2bua-load.pcap")
    one = runner.invoke(main, ["calls", path, "--format", "json", "--jobs", "1"])
    two = runner.invoke(main, ["calls", path, "--format", "json", "--jobs", "2"])
    default = runner.invoke(main, ["calls", path, "--format", "json"])
    assert one.exit_code == two.exit_code == default.exit_code == 0, (two.output, two.exception)
    assert two.output == one.output == default.output
    # --jobs 1: one process; 2 and the default (one per core, where there are several): shards.
    assert used == [False, True, shard.shard_count(None) > 1]


def _long_capture(tmp_path: Path, count: int = 30, late: tuple[int, ...] = (0, 3, 7, 8)) -> str:
    """Calls 20 s apart, each over 10 s after it began (the leg retired once quiet), some
    ringing or talking longer than ``QUIET`` first; ``late``: a Call-ID that has a message
    again a minute after its call (its leg built again); packets that are no message, and
    OPTIONS every 2 s."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    link = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
    a, b = ("10.0.0.1", 5060), ("10.0.0.3", 5060)
    timed: list[tuple[float, tuple[str, int], tuple[str, int], bytes]] = []
    for k in range(count):
        t = 20.0 * k
        call_id, tag = f"c{k}@h", f"t{k}"
        invite = request("INVITE", call_id=call_id, branch=f"z9hG4bK-i{k}", from_tag=f"f{k}")
        talk = 10.0 if k % 4 else 50.0  # every fourth talks longer than QUIET
        ring = 40.0 if k % 5 == 2 else 1.0  # some ring longer than QUIET
        timed += [(t, a, b, invite), (t + 0.5, b, a, response(invite, 180, "Ringing", to_tag=tag))]
        if k % 6 == 5:  # refused
            timed.append((t + ring, b, a, response(invite, 486, "Busy Here", to_tag=tag)))
            timed.append((t + ring + 0.1, a, b, request("ACK", call_id=call_id, branch=f"z9hG4bK-i{k}",
                                                        from_tag=f"f{k}", to_tag=tag)))  # fmt: skip
        else:
            timed.append((t + ring, b, a, response(invite, 200, "OK", to_tag=tag)))
            ack = request("ACK", call_id=call_id, branch=f"z9hG4bK-a{k}", from_tag=f"f{k}", to_tag=tag)
            bye = request(
                "BYE", call_id=call_id, branch=f"z9hG4bK-b{k}", from_tag=f"f{k}", to_tag=tag, cseq=2
            )
            timed += [(t + ring + 0.1, a, b, ack), (t + ring + talk, a, b, bye),
                      (t + ring + talk + 0.1, b, a, response(bye, 200, "OK"))]  # fmt: skip
        if k in late:
            again = request("OPTIONS", call_id=call_id, branch=f"z9hG4bK-o{k}", from_tag=f"g{k}", cseq=7)
            timed += [(t + 120.0, a, b, again), (t + 120.1, b, a, response(again, 200, "OK"))]
            # Refused by ``_failing``: malformed, its Call-ID read alone that of a leg built again.
            broken = request("OPTIONS", call_id=call_id, branch=f"z9hG4bK-x{k}", extra="X-Broken: 1\r\n")
            timed.append((t + 125.0, a, b, broken))
        if k % 7 == 3:
            timed.append((t + 3.0, a, b, f"SIP/2.0 200\rX\r\nCall-ID: m{k}\r\n\r\n".encode()))
    for n in range(int(20 * count / 2)):  # pings, each its own Call-ID: every worker's time goes on
        ping = request("OPTIONS", call_id=f"p{n}@h", branch=f"z9hG4bK-p{n}", from_tag=f"p{n}")
        timed += [(2.0 * n + 0.3, a, b, ping), (2.0 * n + 0.4, b, a, response(ping, 200, "OK"))]
    timed.sort(key=lambda item: item[0])
    frames = []
    for t, (src, sport), (dst, dport), payload in timed:
        frame = link / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / payload
        frame.time = 1_700_000_000 + t
        frames.append(frame)
    path = tmp_path / "long.pcap"
    wrpcap(str(path), frames)
    return str(path)


def test_legs_retired_while_reading_and_built_again_give_the_json_of_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Legs over are retired while the input is read (after every message here), and a Call-ID
    # with a message after its leg was retired is built again from a second reading: the
    # output is still that of one process, for every selection the outcome decides.
    path = _long_capture(tmp_path)
    monkeypatch.setattr(shard, "_RETIRE_EVERY", 1)
    monkeypatch.setattr(readahead, "parse_or_failure", _failing)
    monkeypatch.setattr(shard, "parse_or_failure", _failing)
    for selection in ({}, {"all_kinds": True}, {"state": ["completed"]}, {"status": "4xx"}):
        expected = _one_process([path], AnalysisOptions(jobs=1), **selection)
        document = json.loads(expected)
        assert len(document["calls"]) > 3
        assert [m["reason"] for m in document["malformed"]].count("broken on purpose") == 4
        for jobs in (2, 3):
            started = shard.start([path], AnalysisOptions(jobs=jobs), selection=dict(selection), min_bytes=0)
            assert started is not None
            run = started.run()
            assert run is not None
            assert "".join(run.pieces) == expected, (selection, jobs)
            assert started.retracted == 4  # the late Call-IDs' legs, retired then built again
