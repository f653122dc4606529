"""``sipflow.stats``: counts cross-checked live with ``tshark -z sip,stat``, every RFC 6076 metric
on literal traces with hand-computed values, and the bundled samples."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from sipflow import analyze
from sipflow.model.analysis import Analysis, Summary
from sipflow.model.call import build_call
from sipflow.render.stats import stats_dict, stats_lines
from sipflow.stats import Distribution, Stats, compute
from tests.conftest import SAMPLES, run_tshark, sample_captures, shared_captures
from tests.sipmsg import ALICE, BOB, Feeder, request, response
from tests.test_shared_captures import DIFFERENCES

HEP_REFERENCE = {"hep-udp.pcap": "hep-udp-direct.pcap", "hep-tcp.pcap": "hep-tcp-direct.pcap"}
"""HEP samples (samples/make-hep-samples.sh) and the capture of the same run's SIP port."""


def _copy_frames() -> dict[str, str]:
    """Wire samples holding copies of packets (samples/wire-facts.json): a tshark display
    filter for the copies, which tshark counts as messages and sipflow folds into the first."""
    facts = SAMPLES / "wire-facts.json"
    if not facts.is_file():
        return {}
    out = {}
    for name, capture in json.loads(facts.read_text())["captures"].items():
        frames = sorted(copy for _, copy in capture["copy_pairs"])
        if frames:
            out[name] = "frame.number in {" + ", ".join(map(str, frames)) + "}"
    return out


COPIES = _copy_frames()

BASE = 1_700_000_000.0
"""``Feeder`` times are seconds after this."""

# ---------------------------------------------------------------------------------------------
# Live: the per-method and per-code counts equal tshark's


def _tshark_stat(tshark: str, path: Path) -> tuple[int, Counter[str], Counter[int]]:
    """(messages, requests by method, responses by code) from ``tshark -q -z sip,stat``.

    tshark files a status code it has no name for under "Other <class>" (199, 299...): none of
    the captures here has one, and such a line would show up as a code we never saw."""
    out = run_tshark(tshark, ["-r", str(path), "-q", "-z", "sip,stat"])
    match = re.search(r"Number of SIP messages: (\d+)", out)
    assert match, out
    codes_part, _, methods_part = out.partition("* List of SIP Request methods")
    methods_part = methods_part.split("* Average setup time", 1)[0]
    responses = Counter(
        {
            int(code): int(n)
            for code, n in re.findall(r"^\s+SIP (\d{3}) .*:\s+(\d+) Packets$", codes_part, re.M)
        }
    )
    requests = Counter(dict(re.findall(r"^\s+(\S+)\s+:\s+(\d+) Packets$", methods_part, re.M)))
    return int(match.group(1)), Counter({k: int(v) for k, v in requests.items()}), responses


def _tshark_unseen(tshark: str, path: Path, display_filter: str) -> tuple[Counter[str], Counter[int]]:
    """Requests and responses tshark decodes over a transport sipflow does not read yet."""
    out = run_tshark(
        tshark,
        ["-r", str(path), "-Y", f"sip && {display_filter}", "-T", "fields", "-E", "occurrence=a",
         "-E", "aggregator=,", "-e", "sip.Method", "-e", "sip.Status-Code"],
    )  # fmt: skip
    requests: Counter[str] = Counter()
    responses: Counter[int] = Counter()
    for line in out.splitlines():
        methods, _, codes = line.partition("\t")
        requests.update(m for m in methods.split(",") if m)
        responses.update(int(c) for c in codes.split(",") if c)
    return requests, responses


@pytest.mark.parametrize("path", shared_captures() + sample_captures(), ids=lambda p: p.name)
def test_counts_agree_with_tshark(path: Path, tshark: str) -> None:
    """Requests by method, responses by code and the total equal tshark's ``-z sip,stat``.

    Both count every SIP message, retransmissions included; where a packet was captured
    twice (``COPIES``), sipflow counts it once, so tshark's counts lose the copies first.
    Where sipflow does not read a
    transport yet (``test_shared_captures.DIFFERENCES``: SCTP, WebSocket), the messages tshark
    decodes over it are taken out of tshark's counts first. tshark's "resent" is its own
    heuristic (same Call-ID, CSeq and addresses seen before), not RFC 3261 transaction
    matching, so ``Stats.resent`` is not compared."""
    stats = compute(analyze([path]))
    # tshark 4.0 has no HEP dissector: count the same run's SIP-port capture instead, whose
    # messages the HEP capture carries one for one (tests/test_hep_samples.py)
    reference = HEP_REFERENCE.get(path.name)
    total, requests, responses = _tshark_stat(tshark, path.with_name(reference) if reference else path)
    for table in (DIFFERENCES, COPIES):
        if path.name not in table:
            continue
        entry = table[path.name]
        display_filter = entry if isinstance(entry, str) else entry[1]
        unseen_requests, unseen_responses = _tshark_unseen(tshark, path, display_filter)
        assert unseen_requests or unseen_responses, f"tshark sees nothing for {display_filter}"
        requests -= unseen_requests
        responses -= unseen_responses
        total -= unseen_requests.total() + unseen_responses.total()
    assert dict(stats.requests) == dict(requests)
    assert dict(stats.responses) == dict(responses)
    assert stats.messages == total
    assert sum(stats.requests.values()) + sum(stats.responses.values()) == stats.messages


@pytest.mark.parametrize("path", shared_captures(), ids=lambda p: p.name)
def test_every_shared_capture_renders(path: Path) -> None:
    stats = compute(analyze([path]))
    assert sum(stats.retransmissions.values()) == stats.resent
    json.dumps(stats_dict(stats))
    assert stats_lines(stats)[0].startswith("SIP messages: ")


# ---------------------------------------------------------------------------------------------
# Literal traces


def _analysis(feed: Feeder, capture_end: float | None = None) -> Analysis:
    model = feed.tracker.finish(None if capture_end is None else BASE + capture_end)
    legs = sorted(model.legs, key=lambda leg: leg.messages[0].index)
    calls = tuple(build_call(i, (leg,)) for i, leg in enumerate(legs, start=1))
    summary = Summary(
        files=("test.pcap",),
        packets=len(model.messages),
        sip_messages=len(model.messages),
        malformed=0,
        non_sip_packets=0,
        non_sip={},
        unsupported={},
        retransmissions=sum(1 for m in model.messages if m.retransmission),
        calls=len(calls),
        items=len(calls),
        partial=False,
        first_time=None,
        last_time=None,
    )
    return Analysis(
        files=("test.pcap",),
        summary=summary,
        calls=calls,
        messages=model.messages,
        malformed=model.malformed,
        transactions=model.transactions,
        dialogs=model.dialogs,
        warnings=(),
    )


def _call(
    feed: Feeder,
    t: float,
    call_id: str,
    answers: list[tuple[float, int, str]],
    *,
    bye: tuple[float, float | None] | None = None,
    cancel: float | None = None,
) -> None:
    """One INVITE from alice at ``t`` answered by bob with ``answers`` ((delay, status, reason));
    an ACK follows a final response; ``bye`` = (delay, answer delay or None) after the 2xx."""
    invite = request("INVITE", branch=f"z9hG4bK-{call_id}", call_id=call_id)
    feed(t, ALICE, BOB, invite)
    for delay, status, reason in answers:
        if cancel is not None and cancel < delay:
            c = request("CANCEL", branch=f"z9hG4bK-{call_id}", call_id=call_id)
            feed(t + cancel, ALICE, BOB, c)
            feed(t + cancel + 0.001, BOB, ALICE, response(c, 200, "OK"))
            cancel = None
        feed(t + delay, BOB, ALICE, response(invite, status, reason, to_tag="b" if status > 100 else None))
        if status >= 300:
            ack = request("ACK", branch=f"z9hG4bK-{call_id}", call_id=call_id, to_tag="b")
            feed(t + delay + 0.001, ALICE, BOB, ack)
        elif status >= 200:
            ack = request("ACK", branch=f"z9hG4bK-{call_id}-ack", call_id=call_id, to_tag="b")
            feed(t + delay + 0.001, ALICE, BOB, ack)
            if bye is not None:
                b = request("BYE", branch=f"z9hG4bK-{call_id}-bye", cseq=2, call_id=call_id, to_tag="b")
                feed(t + delay + bye[0], ALICE, BOB, b)
                if bye[1] is not None:
                    feed(t + delay + bye[0] + bye[1], BOB, ALICE, response(b, 200, "OK"))


def test_session_with_auth_challenge() -> None:
    """INVITE → 407 → ACK → INVITE with credentials → 100 → 180 → 200 → ACK … BYE → 200.

    SRD runs from the first INVITE, through the challenge, to the 180: 300 ms (RFC 6076 §4.3.1);
    SDT from the 200 to the BYE: 10 s (§4.5); SDD from the BYE to its 200: 50 ms (§4.4); the
    challenged INVITE and its re-send are one attempt, so every ratio is 1 (or 0 for ISA)."""
    feed = Feeder()
    first = request("INVITE", branch="z9hG4bK-1", cseq=1)
    feed(0.000, ALICE, BOB, first)
    feed(0.010, BOB, ALICE, response(first, 407, "Proxy Authentication Required", to_tag="x"))
    feed(0.011, ALICE, BOB, request("ACK", branch="z9hG4bK-1", cseq=1, to_tag="x"))
    second = request(
        "INVITE", branch="z9hG4bK-2", cseq=2, extra='Proxy-Authorization: Digest username="a"\r\n'
    )
    feed(0.100, ALICE, BOB, second)
    feed(0.110, BOB, ALICE, response(second, 100, "Trying"))
    feed(0.300, BOB, ALICE, response(second, 180, "Ringing", to_tag="b"))
    feed(1.100, BOB, ALICE, response(second, 200, "OK", to_tag="b"))
    feed(1.101, ALICE, BOB, request("ACK", branch="z9hG4bK-3", cseq=2, to_tag="b"))
    bye = request("BYE", branch="z9hG4bK-4", cseq=3, to_tag="b")
    feed(11.100, ALICE, BOB, bye)
    feed(11.150, BOB, ALICE, response(bye, 200, "OK", to_tag="b"))
    stats = compute(_analysis(feed))

    assert stats.messages == 10 and stats.resent == 0
    assert dict(stats.requests) == {"ACK": 2, "INVITE": 2, "BYE": 1}
    assert dict(stats.responses) == {100: 1, 180: 1, 200: 2, 407: 1}
    assert stats.reasons[407] == "Proxy Authentication Required"
    # Per transaction: the first INVITE's first and final response is the 407 (10 ms); the
    # second's first is the 100 (10 ms), its final the 200 (1000 ms).
    assert stats.first_response["INVITE"] == Distribution.of([10.0, 10.0])
    assert stats.final_response["INVITE"].min_ms == pytest.approx(10.0)
    assert stats.final_response["INVITE"].max_ms == pytest.approx(1000.0)
    assert stats.final_response["BYE"].mean_ms == pytest.approx(50.0)
    assert "ACK" not in stats.first_response

    m = stats.rfc6076
    assert m["srd_ms"] == pytest.approx(300.0)
    assert m["srd_failed_ms"] is None
    assert m["sdt_s"] == pytest.approx(10.0)
    assert m["sdd_ms"] == pytest.approx(50.0)
    assert m["rrd_ms"] is None
    assert (m["ser"], m["seer"], m["isa"], m["scr"], m["asr"], m["ner"]) == (1.0, 1.0, 0.0, 1.0, 1.0, 1.0)
    assert stats.sessions["attempts"] == 1 and stats.sessions["pending"] == 0


def test_session_ratios() -> None:
    """Ten calls, each outcome once; the ratios by hand:

    attempts with an outcome 9 (the ringing one is pending), answered 2 (c1, c9), redirected 1:
    SER 2/8, SEER (2 + 486 + 603)/8, ISA (503 + timer B)/9, SCR 1/9 (c9 never hung up),
    ASR 2/9, NER (2 + 486 + 603 + 487)/9."""
    feed = Feeder()
    _call(feed, 0, "c1", [(0.050, 180, "Ringing"), (1.000, 200, "OK")], bye=(3.0, 0.020))
    _call(feed, 10, "c2", [(0.040, 486, "Busy Here")])
    _call(feed, 20, "c3", [(0.015, 302, "Moved Temporarily")])
    _call(feed, 30, "c4", [(0.005, 100, "Trying"), (0.020, 503, "Service Unavailable")])
    _call(feed, 40, "c5", [(0.030, 180, "Ringing"), (2.000, 603, "Decline")])
    _call(feed, 50, "c6", [(0.010, 404, "Not Found")])
    _call(feed, 60, "c7", [])  # no answer at all: timer B fires (the capture runs on past 92 s)
    _call(feed, 70, "c8", [(0.010, 180, "Ringing")])  # still ringing when the capture ends
    _call(feed, 80, "c9", [(0.070, 200, "OK")])  # answered, never hung up
    _call(feed, 90, "c10", [(0.060, 180, "Ringing"), (1.500, 487, "Request Terminated")], cancel=1.0)
    stats = compute(_analysis(feed, capture_end=130.0))

    s = stats.sessions
    assert (s["attempts"], s["pending"], s["answered"], s["redirected"]) == (9, 1, 2, 1)
    assert (s["effective"], s["ineffective"], s["network_effective"], s["completed"]) == (4, 2, 5, 1)
    m = stats.rfc6076
    assert m["ser"] == pytest.approx(2 / 8)
    assert m["seer"] == pytest.approx(4 / 8)
    assert m["isa"] == pytest.approx(2 / 9, abs=1e-6)
    assert m["scr"] == pytest.approx(1 / 9, abs=1e-6)
    assert m["asr"] == pytest.approx(2 / 9, abs=1e-6)
    assert m["ner"] == pytest.approx(5 / 9, abs=1e-6)
    # SRD, successful setups: c1 to its 180 (50 ms), c9 to its 200 (70 ms, no provisional).
    assert stats.delays["srd"] == Distribution.of([50.0, 70.0])
    assert m["srd_ms"] == pytest.approx(60.0)
    # Failed setups (4xx-6xx): c2 486 40, c4 503 20 (the 100 does not count), c5 180 30,
    # c6 404 10, c10 180 60; c7 got nothing back and c3 was redirected.
    failed = stats.delays["srd_failed"]
    assert failed.count == 5
    assert (failed.min_ms, failed.p50_ms, failed.p90_ms, failed.max_ms) == pytest.approx((10, 30, 60, 60))
    assert m["srd_failed_ms"] == pytest.approx(32.0)
    assert m["sdd_ms"] == pytest.approx(20.0)
    assert m["sdt_s"] == pytest.approx(3.0)


def test_pending_only_gives_no_ratios() -> None:
    feed = Feeder()
    _call(feed, 0, "c1", [(0.010, 180, "Ringing")])
    stats = compute(_analysis(feed))
    assert stats.sessions["pending"] == 1 and stats.sessions["attempts"] == 0
    assert all(stats.rfc6076[k] is None for k in ("ser", "seer", "isa", "scr", "asr", "ner"))


def test_disconnect_delay_timeout() -> None:
    """RFC 6076 §4.4: "Time of 2XX or Timeout": an unanswered BYE counts as timer F, 32 s."""
    feed = Feeder()
    _call(feed, 0, "c1", [(0.100, 200, "OK")], bye=(5.0, None))
    stats = compute(_analysis(feed, capture_end=60.0))
    assert stats.rfc6076["sdd_ms"] == pytest.approx(32000.0)
    # The BYE was never answered: the session did not complete (RFC 6076 §4.9).
    assert stats.rfc6076["scr"] == 0.0
    assert stats.rfc6076["ser"] == 1.0


WWW_STALE = b'WWW-Authenticate: Digest realm="x", nonce="n2", stale=true\r\nContent-Length'
WWW = b'WWW-Authenticate: Digest realm="x", nonce="n1"\r\nContent-Length'
AUTH = 'Authorization: Digest username="alice"\r\n'


def test_registration_request_delay() -> None:
    """RFC 6076 §4.1, three attempts on one Call-ID:

    1. REGISTER → 401 → REGISTER with credentials → 200: RRD 40 ms, from the first REGISTER;
    2. REGISTER → 401 → REGISTER with credentials → 401 (not stale): refused, a failure;
    3. REGISTER → 401 → credentials → 401 stale=true → credentials → 200: RRD 80 ms."""
    feed = Feeder()
    n = 0

    def register(t: float, status: int, reason: str, *, auth: bool, challenge: bytes = WWW) -> None:
        nonlocal n
        n += 1
        req = request("REGISTER", branch=f"z9hG4bK-r{n}", cseq=n, call_id="reg-1", extra=AUTH if auth else "")
        feed(t, ALICE, BOB, req)
        resp = response(req, status, reason, to_tag="r")
        if status == 401:
            resp = resp.replace(b"Content-Length", challenge, 1)
        feed(t + 0.010, BOB, ALICE, resp)

    register(0.000, 401, "Unauthorized", auth=False)
    register(0.030, 200, "OK", auth=True)
    register(100.000, 401, "Unauthorized", auth=False)
    register(100.020, 401, "Unauthorized", auth=True)
    register(200.000, 401, "Unauthorized", auth=False)
    register(200.020, 401, "Unauthorized", auth=True, challenge=WWW_STALE)
    register(200.070, 200, "OK", auth=True)
    stats = compute(_analysis(feed))

    # Attempt 1: first REGISTER at 0.000, its 200 at 0.040; attempt 3: 200.000 → 200.080.
    assert stats.delays["rrd"] == Distribution.of([40.0, 80.0])
    assert stats.rfc6076["rrd_ms"] == pytest.approx(60.0)
    assert (stats.sessions["registrations"], stats.sessions["registered"]) == (3, 2)
    assert stats.sessions["attempts"] == 0


def test_challenge_never_answered_is_a_failed_registration() -> None:
    feed = Feeder()
    req = request("REGISTER", branch="z9hG4bK-r1", call_id="reg-1")
    feed(0.0, ALICE, BOB, req)
    feed(0.01, BOB, ALICE, response(req, 401, "Unauthorized", to_tag="r").replace(b"Content-Length", WWW, 1))
    req = request("REGISTER", branch="z9hG4bK-r2", cseq=2, call_id="reg-1")  # no credentials again
    feed(60.0, ALICE, BOB, req)
    feed(60.01, BOB, ALICE, response(req, 200, "OK", to_tag="r"))
    stats = compute(_analysis(feed))
    assert (stats.sessions["registrations"], stats.sessions["registered"]) == (2, 1)
    assert stats.rfc6076["rrd_ms"] == pytest.approx(10.0)


def test_retransmissions_by_method() -> None:
    """An INVITE sent three times and its 200 twice (the ACK was late)."""
    feed = Feeder()
    invite = request("INVITE")
    feed(0.0, ALICE, BOB, invite)
    feed(0.5, ALICE, BOB, invite)
    feed(1.5, ALICE, BOB, invite)
    ok = response(invite, 200, "OK", to_tag="b")
    feed(1.6, BOB, ALICE, ok)
    feed(2.1, BOB, ALICE, ok)
    feed(2.2, ALICE, BOB, request("ACK", branch="z9hG4bK-ack", to_tag="b"))
    stats = compute(_analysis(feed))
    assert dict(stats.retransmissions) == {"INVITE": 2, "response to INVITE": 1}
    assert stats.resent == 3
    assert dict(stats.requests) == {"INVITE": 3, "ACK": 1}
    assert dict(stats.responses) == {200: 2}
    # Timed from the first copy of the request: what the caller waited.
    assert stats.final_response["INVITE"].max_ms == pytest.approx(1600.0)


def test_distribution() -> None:
    assert Distribution.of([]) == Distribution(count=0)
    d = Distribution.of(float(v) for v in range(100, 0, -1))
    assert (d.count, d.min_ms, d.p50_ms, d.p90_ms, d.p99_ms, d.max_ms, d.mean_ms) == (
        100, 1.0, 50.0, 90.0, 99.0, 100.0, 50.5,
    )  # fmt: skip
    one = Distribution.of([7.25])
    assert one.p50_ms == one.p99_ms == one.mean_ms == 7.25


# ---------------------------------------------------------------------------------------------
# The bundled samples (samples/README.md says what each one holds)


def _sample(name: str) -> tuple[Analysis, Stats]:
    analysis = analyze([SAMPLES / name])
    return analysis, compute(analysis)


def test_sample_auth_407() -> None:
    """SRD is measured from the first INVITE (the one challenged with 407) to the 180, as the
    call's PDD is; the challenge does not make a second attempt, so SER is 1."""
    analysis, stats = _sample("auth-407.pcap")
    (call,) = analysis.calls
    first_invite = next(m for m in analysis.messages if m.label == "INVITE")
    ringing = next(m for m in analysis.messages if m.label.startswith("180") and m.dst == first_invite.src)
    assert stats.rfc6076["srd_ms"] == pytest.approx(
        (ringing.timestamp - first_invite.timestamp) * 1000, abs=0.001
    )
    assert stats.rfc6076["srd_ms"] == pytest.approx(call.pdd_ms, abs=0.001)
    assert stats.rfc6076["ser"] == 1.0 and stats.rfc6076["scr"] == 1.0
    assert stats.rfc6076["sdt_s"] == pytest.approx(call.duration_s)
    assert stats.sessions["attempts"] == 1


def test_sample_register() -> None:
    """REGISTER → 401 → REGISTER with credentials → 200: RRD spans the challenge."""
    analysis, stats = _sample("register.pcap")
    registers = [m for m in analysis.messages if m.cseq_method == "REGISTER"]
    expected = (registers[-1].timestamp - registers[0].timestamp) * 1000
    assert [m.label.split()[0] for m in registers] == ["REGISTER", "401", "REGISTER", "200"]
    assert stats.rfc6076["rrd_ms"] == pytest.approx(expected, abs=0.001)
    assert stats.rfc6076["ser"] is None  # no INVITE at all
    assert set(stats.final_response) == {"OPTIONS", "REGISTER"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("basic-call.pcap", {"ser": 1.0, "seer": 1.0, "isa": 0.0, "scr": 1.0, "asr": 1.0, "ner": 1.0}),
        ("busy-486.pcap", {"ser": 0.0, "seer": 1.0, "isa": 0.0, "scr": 0.0, "asr": 0.0, "ner": 1.0}),
        ("cancel.pcap", {"ser": 0.0, "seer": 0.0, "isa": 0.0, "scr": 0.0, "asr": 0.0, "ner": 1.0}),
        ("no-answer-timeout.pcap", {"ser": 0.0, "seer": 0.0, "isa": 1.0, "scr": 0.0, "asr": 0.0, "ner": 0.0}),
        ("three-calls.pcap", {"ser": 1.0, "seer": 1.0, "isa": 0.0, "scr": 1.0, "asr": 1.0, "ner": 1.0}),
    ],
)
def test_sample_ratios(name: str, expected: dict[str, float]) -> None:
    analysis, stats = _sample(name)
    assert {k: stats.rfc6076[k] for k in expected} == expected
    assert stats.resent == 0  # samples/README.md: nothing is retransmitted
    # The proxy's second hop is not an attempt: one per call.
    assert stats.sessions["attempts"] == len(analysis.calls)


def test_sample_proxy_call_response_times_per_hop() -> None:
    """Response times are per transaction at every hop: two INVITEs, two BYEs."""
    _, stats = _sample("proxy-call.pcap")
    assert stats.final_response["INVITE"].count == 2
    assert stats.final_response["BYE"].count == 2
    first, final = stats.first_response["INVITE"].max_ms, stats.final_response["INVITE"].min_ms
    assert first is not None and final is not None and first < final  # 100 Trying, then ringing


# ---------------------------------------------------------------------------------------------
# Renderers


def test_stats_lines_and_dict() -> None:
    _, stats = _sample("auth-407.pcap")
    lines = stats_lines(stats)
    text = "\n".join(lines)
    assert lines[0] == "SIP messages: 17 (0 retransmitted)"
    assert re.search(r"^INVITE\s+3\s+0\s+0$", text, re.M)
    assert re.search(r"^407 Proxy Authentication Required\s+1$", text, re.M)
    assert re.search(r"^SER\s+Session Establishment Ratio\s+100\.0 %\s+1 of 1$", text, re.M)
    assert re.search(r"^SRD\s+Session Request Delay\s+56\.\d ms\s+n=1$", text, re.M)
    assert re.search(r"^INVITE final\s+3(\s+\S+){6}$", text, re.M)
    assert all(line == line.rstrip() for line in lines)

    document = json.loads(json.dumps(stats_dict(stats)))
    assert document["responses"] == {"100": 2, "180": 2, "200": 4, "407": 1}
    assert document["reasons"]["407"] == "Proxy Authentication Required"
    assert document["requests"] == {"ACK": 3, "INVITE": 3, "BYE": 2}
    assert document["rfc6076"]["ser"] == 1.0
    assert set(document["first_response"]["INVITE"]) == {
        "count", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms",
    }  # fmt: skip
    assert document["delays"]["srd"]["count"] == 1


def test_packet_text_is_cleaned_in_lines() -> None:
    feed = Feeder()
    invite = request("INVITE")
    feed(0.0, ALICE, BOB, invite)
    feed(0.1, BOB, ALICE, response(invite, 486, "Busy\x1b[31m Here", to_tag="b"))
    stats = compute(_analysis(feed))
    text = "\n".join(stats_lines(stats))
    assert "\x1b" not in text
    assert "486 Busy\ufffd[31m Here" in text
