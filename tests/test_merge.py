"""Several captures of the same traffic: duplicates merged, clock skew estimated or given."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipflow.capture.types import Endpoint, SipPayload, Transport
from sipflow.cli import main
from sipflow.errors import UsageError
from sipflow.merge import DEDUPE_WINDOW, Deduplicator, DuplicateKey, duplicate_key, estimate_skew
from sipflow.model.analysis import Analysis
from sipflow.pipeline import analyze
from sipflow.render import json as json_render
from sipflow.sip.parse import parse_message
from tests.conftest import SAMPLES
from tests.sipmsg import ALICE, BOB, PROXY, request, response

T0 = 1_700_000_000.0
INVITE = request("INVITE")
TRYING = response(INVITE, 100, "Trying")


def packet(
    file: str,
    frame: int,
    t: float,
    data: bytes = INVITE,
    src: Endpoint = ALICE,
    dst: Endpoint = BOB,
    *,
    interface: int = 0,
    ip_id: int | None = None,
) -> SipPayload:
    return SipPayload(
        interface=interface,
        ip_id=ip_id,
        frame=frame,
        frames=(frame,),
        timestamp=T0 + t,
        src=src,
        dst=dst,
        transport=Transport.UDP,
        payload=data,
        file=file,
    )


def key(p: SipPayload) -> DuplicateKey | None:
    return duplicate_key(p, parse_message(p.payload))


def run_dedupe(
    packets: list[SipPayload], window: float = DEDUPE_WINDOW
) -> tuple[list[tuple[str, int, tuple[tuple[str, int], ...]]], int]:
    dedupe: Deduplicator[int] = Deduplicator(window)
    out = []
    for p in packets:
        out += dedupe.push(p, p.frame, key(p))
    out += dedupe.flush()
    assert all(m.item == m.packet.frame for m in out)
    return [(m.packet.file, m.packet.frame, m.copies) for m in out], dedupe.duplicates


# --- the key ----------------------------------------------------------------------------------------


def test_key_names_the_hop_and_the_message() -> None:
    k = key(packet("a", 1, 0.0))
    assert k == DuplicateKey("call-1@10.0.0.1", 1, "INVITE", "INVITE", None, "z9hG4bK-1", ALICE, BOB)
    assert key(packet("a", 2, 0.0, TRYING, BOB, ALICE)) == DuplicateKey(
        "call-1@10.0.0.1", 1, "INVITE", None, 100, "z9hG4bK-1", BOB, ALICE
    )
    # The same bytes on another hop (another src or dst) are another message.
    assert key(packet("a", 1, 0.0, src=PROXY)) != k
    assert key(packet("a", 1, 0.0, request("INVITE", branch="z9hG4bK-2"))) != k


def test_no_key_without_call_id() -> None:
    data = INVITE.replace(b"Call-ID: call-1@10.0.0.1\r\n", b"")
    assert key(packet("a", 1, 0.0, data)) is None


# --- the deduplicator -------------------------------------------------------------------------------


def test_copy_from_another_file_is_folded_in() -> None:
    items, dups = run_dedupe([packet("a", 1, 0.0), packet("b", 7, 0.001), packet("c", 3, 0.002)])
    assert items == [("a", 1, (("b", 7), ("c", 3)))]
    assert dups == 2


def test_same_datagram_twice_at_one_capture_point_is_one_message() -> None:
    # A SPAN of ingress and egress: the same IPv4 datagram twice, microseconds apart.
    items, dups = run_dedupe([packet("a", 1, 0.0, ip_id=7), packet("a", 2, 0.00002, ip_id=7)])
    assert items == [("a", 1, (("a", 2),))] and dups == 1
    # No identification to compare (IPv6): the same bytes within the window.
    items, dups = run_dedupe([packet("a", 1, 0.0), packet("a", 2, 0.00002)])
    assert items == [("a", 1, (("a", 2),))] and dups == 1


def test_a_new_datagram_at_the_same_point_is_left_to_the_model() -> None:
    # Another IPv4 identification: sent again (a retransmission), however soon.
    items, dups = run_dedupe([packet("a", 1, 0.0, ip_id=7), packet("a", 2, 0.001, ip_id=8)])
    assert items == [("a", 1, ()), ("a", 2, ())] and dups == 0
    # Other bytes with the same key (a UA's second 180 with another body): another message.
    other = INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 69")
    items, dups = run_dedupe([packet("a", 1, 0.0), packet("a", 2, 0.001, other)])
    assert items == [("a", 1, ()), ("a", 2, ())] and dups == 0
    # The same datagram outside the window: not taken for a copy (it is a retransmission then).
    items, dups = run_dedupe([packet("a", 1, 0.0, ip_id=7), packet("a", 2, DEDUPE_WINDOW * 2, ip_id=7)])
    assert dups == 0


def test_interfaces_of_one_file_are_capture_points() -> None:
    items, dups = run_dedupe([packet("a", 1, 0.0, ip_id=7), packet("a", 2, 0.001, ip_id=7, interface=1)])
    assert items == [("a", 1, (("a", 2),))] and dups == 1


def test_each_file_adds_one_copy_per_message() -> None:
    # a sent it twice (two datagrams), b saw both: each b copy joins one a message.
    items, dups = run_dedupe(
        [
            packet("a", 1, 0.0, ip_id=1),
            packet("a", 2, 0.0001, ip_id=2),
            packet("b", 1, 0.0002, ip_id=1),
            packet("b", 2, 0.0003, ip_id=2),
        ]
    )
    assert items == [("a", 1, (("b", 1),)), ("a", 2, (("b", 2),))] and dups == 2
    # Each probe saw each datagram twice (a doubled SPAN at both): all of it is one message.
    items, dups = run_dedupe(
        [
            packet("a", 1, 0.0, ip_id=1),
            packet("a", 2, 0.0001, ip_id=1),
            packet("b", 1, 0.0002, ip_id=1),
            packet("b", 2, 0.0003, ip_id=1),
        ]
    )
    assert items == [("a", 1, (("a", 2), ("b", 1), ("b", 2)))] and dups == 3


def test_outside_the_window_is_another_message() -> None:
    items, dups = run_dedupe([packet("a", 1, 0.0), packet("b", 1, DEDUPE_WINDOW * 2)])
    assert items == [("a", 1, ()), ("b", 1, ())] and dups == 0


def test_copies_pair_up_in_order() -> None:
    a1, a2 = packet("a", 1, 0.0, ip_id=1), packet("a", 2, 0.004, ip_id=2)
    items, _ = run_dedupe([a1, a2, packet("b", 1, 0.0041, ip_id=1)], window=0.005)
    assert items == [("a", 1, (("b", 1),)), ("a", 2, ())]
    # Out of the window, the older one is not a candidate any more.
    items, _ = run_dedupe([a1, a2, packet("b", 1, 0.0061, ip_id=1)], window=0.005)
    assert items == [("a", 1, ()), ("a", 2, (("b", 1),))]


def test_released_in_order_once_older_than_the_window() -> None:
    dedupe: Deduplicator[str] = Deduplicator(0.01)
    first = packet("a", 1, 0.0)
    assert dedupe.push(first, "invite", key(first)) == []
    bad = packet("a", 2, 0.005, b"INVITE garbage")
    assert dedupe.push(bad, "malformed", None) == []  # no key: held in its place, never merged
    trying = packet("a", 3, 0.011, TRYING, BOB, ALICE)
    released = dedupe.push(trying, "trying", key(trying))
    assert [m.item for m in released] == ["invite"]
    later = packet("b", 9, 0.1)
    assert [m.item for m in dedupe.push(later, "late", key(later))] == ["malformed", "trying"]
    assert [m.item for m in dedupe.flush()] == ["late"]
    assert dedupe.flush() == []


def test_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        Deduplicator(-1.0)


# --- clock skew -------------------------------------------------------------------------------------


def _keys(n: int) -> list[DuplicateKey]:
    return [DuplicateKey(f"c{i}", 1, "INVITE", "INVITE", None, f"z9hG4bK-{i}", ALICE, BOB) for i in range(n)]


def test_skew_is_the_median_difference() -> None:
    keys = _keys(9)
    obs = [("a", k, T0 + i) for i, k in enumerate(keys)]
    obs += [("b", k, T0 + i + 0.35) for i, k in enumerate(keys[:7])]
    obs += [("b", k, T0 + i + 5.0) for i, k in enumerate(keys[7:], start=7)]  # outliers
    obs += [("b", keys[0], T0 + 99.0)]  # a later retransmission: only the first time counts
    assert estimate_skew(obs, ["a", "b"]) == {"a": 0.0, "b": pytest.approx(0.35, abs=1e-9)}
    # Seen from b, a runs behind.
    assert estimate_skew(obs, ["b", "a"]) == {"b": 0.0, "a": pytest.approx(-0.35, abs=1e-9)}


def test_skew_needs_shared_messages() -> None:
    k1, k2 = _keys(2)
    assert estimate_skew([("a", k1, T0), ("b", k2, T0 + 3)], ["a", "b"]) == {"a": 0.0}
    assert estimate_skew([], ["a"]) == {"a": 0.0}
    assert estimate_skew([], []) == {}


def test_no_skew_between_files_that_follow_one_another() -> None:
    # A capture rotated every minute: the INVITEs retransmitted across the cut (0.5 s later)
    # are in both files, and are no copies taken at another point.
    keys = _keys(120)
    obs = [("part1", k, T0 + i) for i, k in enumerate(keys[:60])]
    obs += [("part2", k, T0 + 60 + i) for i, k in enumerate(keys[60:])]
    obs += [("part2", k, T0 + 59 + i * 0.1 + 0.5) for i, k in enumerate(keys[55:60])]
    assert estimate_skew(obs, ["part1", "part2"]) == {"part1": 0.0}
    # Two probes watching the same minute are linked, whichever started first.
    obs = [("a", k, T0 + i) for i, k in enumerate(keys[:60])]
    obs += [("b", k, T0 + i + 0.35) for i, k in enumerate(keys[30:60], start=30)]
    assert estimate_skew(obs, ["a", "b"]) == {"a": 0.0, "b": pytest.approx(0.35, abs=1e-9)}


def test_no_skew_between_short_files_whose_retransmissions_line_up() -> None:
    # Files of 3 s each: each retransmission first seen after the cut is the second one, 1.5 s
    # (T1 + 2·T1) after its original, so the pairs agree on 1.5 s and the files, shifted by it,
    # overlap by half their span; but 3 pairs among the ~50 messages each file holds while
    # both "watched" are no copies.
    keys = _keys(200)
    obs = [("part1", k, T0 + i * 0.03) for i, k in enumerate(keys[:100])]
    obs += [("part2", k, T0 + 2.98 + i * 0.03) for i, k in enumerate(keys[100:])]
    obs += [("part2", keys[i], T0 + i * 0.03 + 1.5) for i in (70, 80, 90)]
    assert estimate_skew(obs, ["part1", "part2"]) == {"part1": 0.0}
    # A probe that sees a third of the other's traffic, 0.35 s ahead, is linked.
    obs = [("a", k, T0 + i * 0.03) for i, k in enumerate(keys)]
    obs += [("b", k, T0 + i * 0.03 + 0.35 + 0.001 * (i % 3)) for i, k in enumerate(keys) if i % 3 == 0]
    assert estimate_skew(obs, ["a", "b"]) == {"a": 0.0, "b": pytest.approx(0.35, abs=1e-9)}


def test_skew_through_another_file() -> None:
    k1, k2 = _keys(2)
    obs = [("a", k1, T0), ("b", k1, T0 + 1.0), ("b", k2, T0 + 2.0), ("c", k2, T0 + 2.5)]
    assert estimate_skew(obs, ["a", "b", "c"]) == {
        "a": 0.0,
        "b": pytest.approx(1.0),
        "c": pytest.approx(1.5),
    }
    # A fixed skew is kept, and the others follow from it.
    assert estimate_skew(obs, ["a", "b", "c"], fixed={"b": 0.25}) == {
        "a": 0.0,
        "b": 0.25,
        "c": pytest.approx(0.75),
    }


# --- real captures: proxy-call.pcap seen at two points ----------------------------------------------

PROXY_CALL = SAMPLES / "proxy-call.pcap"
CALLER = "127.0.0.10"
SHIFT = 0.35


def _write_part(
    path: Path, *, keep_caller_hop: bool, shift: float, drop: frozenset[int] = frozenset()
) -> list[int]:
    """Write the frames of proxy-call.pcap on (or off) the caller's hop, times shifted by ``shift``;
    returns their frame numbers in proxy-call.pcap."""
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap, wrpcap

    kept, frames = [], []
    for number, pkt in enumerate(rdpcap(str(PROXY_CALL)), start=1):
        on_hop = CALLER in (pkt[IP].src, pkt[IP].dst)
        if on_hop == keep_caller_hop and number not in drop:
            pkt.time = pkt.time + Decimal(str(shift))
            kept.append(pkt)
            frames.append(number)
    wrpcap(str(path), kept)
    return frames


@pytest.fixture(scope="module")
def caller_side(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[int]]:
    """File B: only the caller <-> proxy frames, its clock 0.35 s ahead."""
    path = tmp_path_factory.mktemp("merge") / "b.pcap"
    return str(path), _write_part(path, keep_caller_hop=True, shift=SHIFT)


def _shape(analysis: Analysis) -> list[object]:
    return [
        (
            c.kind,
            c.state,
            c.final_status,
            [(t.method, t.cseq, t.final_status, len(t.messages)) for leg in c.legs for t in leg.transactions],
        )
        for c in analysis.calls
    ]


def _check_merged(merged: Analysis, b: str, b_frames: list[int]) -> None:
    alone = analyze([PROXY_CALL])
    assert _shape(merged) == _shape(alone)
    assert len(merged.messages) == len(alone.messages) == 14
    assert [(m.file, m.frame) for m in merged.messages] == [(m.file, m.frame) for m in alone.messages]
    assert [m.timestamp for m in merged.messages] == [m.timestamp for m in alone.messages]
    assert merged.summary.retransmissions == 0
    assert merged.summary.duplicates == len(b_frames) == 7
    for m in merged.messages:
        if m.frame in b_frames:
            assert m.copies == ((b, b_frames.index(m.frame) + 1),)
        else:
            assert m.copies == ()


def test_two_capture_points_estimated_skew(caller_side: tuple[str, list[int]]) -> None:
    b, b_frames = caller_side
    merged = analyze([PROXY_CALL, b])
    _check_merged(merged, b, b_frames)
    assert merged.summary.skew == {b: pytest.approx(SHIFT, abs=1e-6)}


@pytest.mark.parametrize("name", ["path", "basename"])
def test_two_capture_points_given_skew(caller_side: tuple[str, list[int]], name: str) -> None:
    b, b_frames = caller_side
    merged = analyze([PROXY_CALL, b], skew={b if name == "path" else "b.pcap": SHIFT})
    _check_merged(merged, b, b_frames)
    assert merged.summary.skew == {b: SHIFT}


def test_reference_is_the_first_file(caller_side: tuple[str, list[int]]) -> None:
    b, _ = caller_side
    merged = analyze([b, PROXY_CALL])
    assert merged.summary.skew == {str(PROXY_CALL): pytest.approx(-SHIFT, abs=1e-6)}
    assert merged.summary.duplicates == 7 and len(merged.messages) == 14
    alone = analyze([PROXY_CALL])
    assert [m.timestamp for m in merged.messages] == pytest.approx(
        [m.timestamp + SHIFT for m in alone.messages]
    )
    assert {m.file for m in merged.messages} == {b, str(PROXY_CALL)}  # B's frames first on its hop


def test_message_only_in_the_skewed_file_gets_the_first_files_clock(tmp_path: Path) -> None:
    # A lacks frame 2 (alice's 100 Trying); B has it, 0.35 s late on its clock.
    a = tmp_path / "a.pcap"
    b = tmp_path / "b.pcap"
    _write_part(a, keep_caller_hop=True, shift=0.0, drop=frozenset({2}))
    a_frames = _write_part(tmp_path / "a-rest.pcap", keep_caller_hop=False, shift=0.0)
    assert 2 not in a_frames
    b_frames = _write_part(b, keep_caller_hop=True, shift=SHIFT)
    merged = analyze([a, tmp_path / "a-rest.pcap", b])
    alone = analyze([PROXY_CALL])
    assert merged.summary.skew == {str(b): pytest.approx(SHIFT, abs=1e-6)}
    assert merged.summary.duplicates == len(b_frames) - 1
    assert [m.timestamp for m in merged.messages] == pytest.approx(
        [m.timestamp for m in alone.messages], abs=1e-6
    )
    assert _shape(merged) == _shape(alone)


def test_captures_sharing_nothing_are_not_merged() -> None:
    files = [PROXY_CALL, SAMPLES / "busy-486.pcap"]
    merged = analyze(files)
    assert merged.summary.skew == {} and merged.summary.duplicates == 0
    assert len(merged.messages) == sum(len(analyze([f]).messages) for f in files)
    assert all(m.copies == () for m in merged.messages)


def test_skew_naming_no_file_is_a_usage_error(caller_side: tuple[str, list[int]]) -> None:
    b, _ = caller_side
    with pytest.raises(UsageError, match=r"nope\.pcap"):
        analyze([PROXY_CALL, b], skew={"nope.pcap": 1.0})
    with pytest.raises(UsageError, match="not a number"):
        analyze([PROXY_CALL, b], skew={b: float("nan")})


def test_json_copies_and_summary(caller_side: tuple[str, list[int]]) -> None:
    b, _ = caller_side
    merged = analyze([PROXY_CALL, b])
    doc = json.loads(json_render.dumps(merged, merged.select()))
    assert doc["summary"]["duplicates"] == 7
    assert doc["summary"]["skew"] == {b: pytest.approx(SHIFT, abs=1e-6)}
    txs = doc["calls"][0]["legs"][0]["transactions"]
    with_copies = [tx for tx in txs if "copies" in tx]
    assert with_copies and all(
        tx["src"].startswith(CALLER) or tx["dst"].startswith(CALLER) for tx in with_copies
    )
    assert sum(len(tx.get("copies", ())) for tx in txs) == 7
    assert all(file == b for tx in with_copies for file, _ in tx["copies"])
    # One capture: the summary and transactions keep schema 1's keys only.
    alone = analyze([PROXY_CALL])
    single = json.loads(json_render.dumps(alone, alone.select()))
    assert "skew" not in single["summary"] and "duplicates" not in single["summary"]
    assert all("copies" not in tx for tx in single["calls"][0]["legs"][0]["transactions"])


# --- the command line -------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "250"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_summary_shows_duplicates_and_skew(caller_side: tuple[str, list[int]]) -> None:
    b, _ = caller_side
    code, out, _ = run("calls", str(PROXY_CALL), b)
    assert code == 0
    assert "14 SIP messages" in out and "7 copies merged (7 from 2 capture points)" in out
    assert f"clock skew {b} +0.35 s" in out
    code, out, _ = run("ladder", str(PROXY_CALL), b, "--skew", "b.pcap=+0.35", "--plain")
    assert code == 0 and "Call 1:" in out and "14 messages" in out


@pytest.mark.parametrize("value", ["b.pcap", "b.pcap=", "=0.3", "b.pcap=soon", "b.pcap=nan", "b.pcap=inf"])
@pytest.mark.parametrize("command", ["calls", "ladder"])
def test_cli_bad_skew(caller_side: tuple[str, list[int]], command: str, value: str) -> None:
    b, _ = caller_side
    code, out, err = run(command, str(PROXY_CALL), b, "--skew", value)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sipflow: error: --skew") and "FILE=SECONDS" in err


def test_cli_skew_for_an_unknown_file(caller_side: tuple[str, list[int]]) -> None:
    b, _ = caller_side
    code, out, err = run("calls", str(PROXY_CALL), b, "--skew", "other.pcap=1")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "other.pcap" in err and err.startswith("sipflow: error: ")
