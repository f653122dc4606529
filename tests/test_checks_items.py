"""``sipflow check`` on items that are not calls: the rules about INVITE dialogs leave them
alone, the others still apply, and ``register-storm`` finds UAs that register far too often
or are challenged again and again."""

from __future__ import annotations

import pytest

from sipflow.checks.config import CheckConfig
from sipflow.checks.finding import Severity
from sipflow.checks.rules import RULES, rule, run_rules
from sipflow.model.call import CallKind
from sipflow.pipeline import analyze
from tests.conftest import SAMPLES, SHARED_CAPTURES
from tests.sipmsg import ALICE, BOB, PROXY, SDP, Feeder, request, response
from tests.test_checks_rules import PUBLIC, analysis_of, drop_header, frames, only, with_body

INVITE_DIALOG_RULES = {
    "invite-no-final",
    "2xx-not-acked",
    "2xx-acked-late",
    "request-outside-dialog",
    "cancel-after-final",
    "no-to-tag",
    "sdp-no-common-codec",
    "sdp-unreachable-media",
    "slow-pdd",
    "slow-setup",
    "one-way-audio",
    "no-media",
    "media-address-mismatch",
    "rtp-loss",
    "rtp-jitter",
    "media-after-bye",
    "codec-not-negotiated",
}
NOT_CALLS = {CallKind.REGISTRATION, CallKind.SUBSCRIPTION, CallKind.OPTIONS, CallKind.MESSAGE}
CREDENTIALS = 'Authorization: Digest username="alice", realm="x", nonce="n1", response="r"\r\n'


def test_which_kinds_each_rule_looks_at() -> None:
    for r in RULES:
        if r.id in INVITE_DIALOG_RULES:
            assert r.kinds == {CallKind.CALL, CallKind.OTHER}, r.id
        elif r.id == "register-storm":
            assert r.kinds == {CallKind.REGISTRATION}
        else:
            assert r.kinds == set(CallKind), r.id  # Via, headers, lengths, retransmissions, 481...


# ------------------------------------------------------- INVITE-dialog rules skip other items


def test_sdp_rules_skip_an_options_answer_describing_capabilities() -> None:
    # RFC 3261 §11.2: a 200 to OPTIONS may carry SDP listing what the UA supports, often with
    # c=0.0.0.0 or a private address; it offers no media.
    feed = Feeder()
    ping = request("OPTIONS", call_id="ping")
    feed(0.0, ALICE, PUBLIC, ping)
    capabilities = SDP.replace("c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0")
    feed(0.1, PUBLIC, ALICE, with_body(response(ping, 200, "OK", to_tag="o"), capabilities))
    feed(0.2, ALICE, PUBLIC, with_body(request("OPTIONS", call_id="ping2"), SDP))
    analysis = analysis_of(feed)
    assert {c.kind for c in analysis.calls} == {CallKind.OPTIONS}
    assert run_rules(analysis) == []


def test_sdp_rules_skip_a_message_carrying_sdp() -> None:
    feed = Feeder()
    message = with_body(request("MESSAGE", call_id="im-1"), SDP)
    feed(0.0, ALICE, BOB, message)
    pcma = SDP.replace("RTP/AVP 0 101", "RTP/AVP 8 101").replace("10.0.0.1", "10.0.0.3")
    feed(0.1, BOB, ALICE, with_body(response(message, 200, "OK", to_tag="m"), pcma))
    analysis = analysis_of(feed)
    assert analysis.calls[0].kind is CallKind.MESSAGE
    assert run_rules(analysis) == []


def test_dialog_rules_skip_a_bye_in_a_registration() -> None:
    # A BYE with no To tag belongs to no dialog; in a call that is request-outside-dialog.
    feed = Feeder()
    reg = request("REGISTER", call_id="reg-1")
    feed(0.0, ALICE, BOB, reg)
    feed(0.1, BOB, ALICE, response(reg, 200, "OK", to_tag="r"))
    bye = request("BYE", branch="z9hG4bK-b", cseq=2, call_id="reg-1")
    feed(0.2, ALICE, BOB, bye)
    feed(0.3, BOB, ALICE, response(bye, 200, "OK"))
    analysis = analysis_of(feed)
    assert analysis.calls[0].kind is CallKind.REGISTRATION
    assert run_rules(analysis) == []
    lone = Feeder()  # the same BYE in a Call-ID of its own (its INVITE not captured): judged
    lone(0.2, ALICE, BOB, bye)
    lone(0.3, BOB, ALICE, response(bye, 200, "OK"))
    assert only(run_rules(analysis_of(lone)), "request-outside-dialog").call_index == 1


def test_invite_transaction_and_timing_rules_skip_slow_and_unanswered_items() -> None:
    feed = Feeder()
    reg = request("REGISTER", call_id="reg-1")
    feed(0.0, ALICE, BOB, reg)
    feed(40.0, BOB, ALICE, response(reg, 200, "OK", to_tag="r"))  # answered after 40 s
    message = request("MESSAGE", call_id="im-1")
    feed(41.0, ALICE, BOB, message)  # never answered
    subscribe = request("SUBSCRIBE", call_id="sub-1", extra="Event: presence\r\nExpires: 60\r\n")
    feed(42.0, ALICE, BOB, subscribe)
    feed(42.1, BOB, ALICE, response(subscribe, 200, "OK", to_tag="s"))  # no ACK: none is due
    analysis = analysis_of(feed, end=90.0)
    assert {c.kind for c in analysis.calls} == {
        CallKind.REGISTRATION,
        CallKind.MESSAGE,
        CallKind.SUBSCRIPTION,
    }
    assert run_rules(analysis) == []


def test_general_rules_still_apply_to_other_items() -> None:
    feed = Feeder()
    reg = drop_header(request("REGISTER", call_id="reg-1"), "Max-Forwards")
    feed(0.0, ALICE, BOB, reg)
    feed(0.1, BOB, ALICE, response(reg, 200, "OK", to_tag="r"))
    finding = only(run_rules(analysis_of(feed)), "missing-header")
    assert finding.message.startswith("registration 1 (Call-ID reg-1): REGISTER (CSeq 1) at frame 1")


# ------------------------------------------------------------------------------ register-storm


def registrations(
    feed: Feeder,
    times: list[float],
    *,
    status: tuple[int, str] = (200, "OK"),
    granted: int = 3600,
    new_call_ids: bool = False,
    via: tuple[object, object] = (ALICE, BOB),
) -> None:
    """One REGISTER per time, each answered ``status`` (a 2xx granting ``granted`` seconds)."""
    client, server = via
    for n, t in enumerate(times, start=1):
        call_id = f"reg-{n}" if new_call_ids else "reg-1"
        req = request("REGISTER", branch=f"z9hG4bK-r{n}", cseq=n, call_id=call_id, extra="Expires: 3600\r\n")
        ok = response(req, *status, to_tag="r")
        if 200 <= status[0] < 300:
            ok = ok.replace(
                b"\r\nContent-Length",
                f"\r\nContact: <sip:alice@10.0.0.1>;expires={granted}\r\nContent-Length".encode(),
            )
        feed(t, client, server, req)  # type: ignore[arg-type]
        feed(t + 0.01, server, client, ok)  # type: ignore[arg-type]


def test_ua_re_registering_every_second() -> None:
    feed = Feeder()
    registrations(feed, [float(t) for t in range(10)])
    finding = only(run_rules(analysis_of(feed)), "register-storm")
    assert finding.severity is Severity.WARNING and finding.call_index == 1
    assert frames(finding) == [3, 5, 7, 9, 11, 13, 15, 17, 19]  # every REGISTER after the first
    assert finding.message.startswith(
        "registration 1 (Call-ID reg-1): 9 REGISTERs for bob@example.com from 10.0.0.1:5060 in 8.0 s"
    )
    assert "limit 5 in 60 s" in finding.message
    assert (
        "the first, REGISTER (CSeq 2) at frame 3, refreshed 1.0 s into the 3600 s granted" in finding.message
    )
    assert finding.explanation == rule("register-storm").explanation


def test_storm_over_many_call_ids_is_reported_once_in_the_registration_where_it_starts() -> None:
    feed = Feeder()
    registrations(feed, [float(t) for t in range(8)], new_call_ids=True)
    finding = only(run_rules(analysis_of(feed)), "register-storm")
    assert finding.call_index == 2 and finding.call_id == "reg-2"
    assert "7 REGISTERs" in finding.message and finding.message.endswith("; over 7 Call-IDs")


def test_refreshes_due_by_the_expiry_granted_are_no_storm() -> None:
    feed = Feeder()
    registrations(feed, [t * 1.5 for t in range(20)], granted=2)  # 75 % into a 2 s grant
    assert run_rules(analysis_of(feed)) == []
    feed = Feeder()
    registrations(feed, [t * 30.0 for t in range(20)])  # too early, but twice a minute
    assert run_rules(analysis_of(feed)) == []


def test_retries_straight_after_a_refusal() -> None:
    feed = Feeder()
    registrations(feed, [t * 2.0 for t in range(8)], status=(403, "Forbidden"))
    finding = only(run_rules(analysis_of(feed)), "register-storm")
    assert (
        "7 REGISTERs" in finding.message
        and "sent 2.0 s after 403 Forbidden (CSeq 1 REGISTER)" in finding.message
    )


def test_each_hop_is_judged_on_its_own() -> None:
    feed = Feeder()
    registrations(feed, [float(t) for t in range(4)])  # 3 unneeded: under the limit
    registrations(feed, [float(t) + 0.001 for t in range(4)], via=(PROXY, BOB))
    assert run_rules(analysis_of(feed)) == []


def challenge_loop(feed: Feeder, challenges: int, *, gap: float = 1.0, then_ok: bool = False) -> None:
    for n in range(1, challenges + 2 if then_ok else challenges + 1):
        req = request(
            "REGISTER", branch=f"z9hG4bK-c{n}", cseq=n, call_id="reg-1", extra=CREDENTIALS if n > 1 else ""
        )
        feed(n * gap, ALICE, BOB, req)
        if n <= challenges:
            feed(n * gap + 0.01, BOB, ALICE, response(req, 401, "Unauthorized", to_tag="r"))
        else:
            feed(n * gap + 0.01, BOB, ALICE, response(req, 200, "OK", to_tag="r"))


def test_challenged_again_and_again() -> None:
    feed = Feeder()
    challenge_loop(feed, 4)
    analysis = analysis_of(feed)
    assert analysis.calls[0].state.value == "challenged"
    finding = only(run_rules(analysis), "register-storm")
    assert frames(finding) == [1, 2, 4, 6, 8]
    assert (
        "bob@example.com from 10.0.0.1:5060 was challenged 4 times in a row in 3.0 s without a 2xx "
        "(frames 2, 4, 6, 8; limit 2 in 60 s), from REGISTER (CSeq 1) at frame 1 on"
    ) in finding.message
    config = CheckConfig(thresholds={"register-storm": {"max_challenges": 4}})
    assert run_rules(analysis, config) == []
    assert run_rules(analysis, CheckConfig(disabled=frozenset({"register-storm"}))) == []


def test_a_stale_nonce_or_slow_challenges_are_no_loop() -> None:
    feed = Feeder()
    challenge_loop(feed, 2, then_ok=True)  # 401, 401 (stale nonce), 200
    assert run_rules(analysis_of(feed)) == []
    feed = Feeder()
    challenge_loop(feed, 4, gap=40.0)  # one challenge each 40 s: 2 within a minute
    assert run_rules(analysis_of(feed)) == []


# ------------------------------------------------------------------------------ real captures


def test_register_samples() -> None:
    assert run_rules(analyze([SAMPLES / "register.pcap"])) == []
    path = SHARED_CAPTURES / "sip-register-wrong_password-401-403-401-403.pcapng"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    # One challenge, then 403 for the wrong password: refused, not a storm; nothing else wrong.
    assert run_rules(analyze([path])) == []


def test_aaa_registrations_challenged_twice_per_account_are_no_storm() -> None:
    # The phone answers each 401 after ~17 s, when the nonce has already changed: 401, 401
    # "nonce has changed" for each of three accounts, minutes apart.
    path = SHARED_CAPTURES / "aaa.pcap"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    findings = run_rules(analyze([path]))
    assert not [f for f in findings if f.rule == "register-storm"]
    assert {f.call_index for f in findings if f.rule in INVITE_DIALOG_RULES} <= {
        c.index for c in analyze([path]).calls if c.kind not in NOT_CALLS
    }
