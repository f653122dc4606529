"""Registrations, OPTIONS, subscriptions, MESSAGE and other requests read in their own words:
their states (``KIND_STATES``), a registration's granted expiry, and how ``calls``,
``ladder``, ``export`` and ``stats`` say them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipflow.cli import main
from sipflow.model.call import KIND_STATES, Call, CallKind, CallState, build_call
from sipflow.pipeline import analyze
from sipflow.render.stats import stats_dict, stats_lines
from sipflow.stats import compute
from tests.conftest import SAMPLES, SHARED_CAPTURES
from tests.sipmsg import ALICE, BOB, SDP, Feeder, request, response

T0 = 1_700_000_000.0
REGISTER_PCAP = str(SAMPLES / "register.pcap")
WRONG_PASSWORD = "sip-register-wrong_password-401-403-401-403.pcapng"
CHALLENGE = 'WWW-Authenticate: Digest realm="x", nonce="n1"\r\n'
CREDENTIALS = 'Authorization: Digest username="alice", realm="x", nonce="n1", response="r"\r\n'


def item(feed: Feeder, end: float | None = None) -> Call:
    """The one item fed, checked to take a state of its kind."""
    result = feed.tracker.finish(None if end is None else T0 + end)
    (leg,) = result.legs
    call = build_call(1, (leg,))
    assert call.state in KIND_STATES[call.kind], (call.kind, call.state)
    return call


def with_headers(data: bytes, headers: str) -> bytes:
    """``data`` with header lines (each ending in CRLF) added before Content-Length."""
    return data.replace(
        b"\r\nContent-Length", b"\r\n" + headers.encode().rstrip(b"\r\n") + b"\r\nContent-Length", 1
    )


def register(cseq: int = 1, *, extra: str = "", contact: str | None = None) -> bytes:
    data = request("REGISTER", branch=f"z9hG4bK-r{cseq}", cseq=cseq, call_id="reg-1", extra=extra)
    if contact is not None:
        data = data.replace(b"Contact: <sip:alice@10.0.0.1>", f"Contact: {contact}".encode())
    return data


def test_every_state_belongs_to_a_kind_and_calls_keep_theirs() -> None:
    assert set(KIND_STATES) == set(CallKind)
    assert {s for states in KIND_STATES.values() for s in states} == set(CallState)
    assert KIND_STATES[CallKind.CALL] == (
        CallState.SETUP,
        CallState.RINGING,
        CallState.IN_CALL,
        CallState.COMPLETED,
        CallState.CANCELLED,
        CallState.REJECTED,
        CallState.FAILED,
    )
    for kind in CallKind:
        if kind is not CallKind.CALL:
            assert not set(KIND_STATES[kind]) & {CallState.SETUP, CallState.COMPLETED}, kind


# ------------------------------------------------------------------------------ registrations


def test_registered_after_a_challenge_with_the_expiry_granted_to_its_contact() -> None:
    feed = Feeder()
    first = register(1, extra="Expires: 3600\r\n")
    feed(0.0, ALICE, BOB, first)
    feed(0.01, BOB, ALICE, with_headers(response(first, 401, "Unauthorized", to_tag="r"), CHALLENGE))
    second = register(2, extra="Expires: 3600\r\n" + CREDENTIALS)
    feed(0.02, ALICE, BOB, second)
    # The registrar lists every binding of the AOR (RFC 3261 §10.3 step 8): ours is the second.
    ok = with_headers(
        response(second, 200, "OK", to_tag="r"),
        "Contact: <sip:alice@10.0.0.9>;expires=120, <sip:alice@10.0.0.1>;expires=1800\r\nExpires: 3600\r\n",
    )
    feed(0.03, BOB, ALICE, ok)
    call = item(feed)
    assert call.kind is CallKind.REGISTRATION
    assert (call.state, call.final_status, call.expires_s) == (CallState.REGISTERED, 200, 1800)


def test_granted_expiry_falls_back_to_the_expires_header_then_to_none() -> None:
    feed = Feeder()
    req = register()
    feed(0.0, ALICE, BOB, req)
    feed(0.1, BOB, ALICE, with_headers(response(req, 200, "OK", to_tag="r"), "Expires: 600\r\n"))
    assert item(feed).expires_s == 600
    feed = Feeder()
    feed(0.0, ALICE, BOB, req)
    feed(0.1, BOB, ALICE, response(req, 200, "OK", to_tag="r"))
    assert (item(feed).state, item(feed).expires_s) == (CallState.REGISTERED, None)


@pytest.mark.parametrize(
    ("contact", "extra"),
    [
        ("<sip:alice@10.0.0.1>", "Expires: 0\r\n"),
        ("<sip:alice@10.0.0.1>;expires=0", "Expires: 3600\r\n"),
        ("*", "Expires: 0\r\n"),
    ],
    ids=["expires-header", "contact-param", "wildcard"],
)
def test_unregistered(contact: str, extra: str) -> None:
    feed = Feeder()
    req = register(contact=contact, extra=extra)
    feed(0.0, ALICE, BOB, req)
    feed(0.1, BOB, ALICE, response(req, 200, "OK", to_tag="r"))
    call = item(feed)
    assert (call.state, call.final_status, call.expires_s) == (CallState.UNREGISTERED, 200, None)


@pytest.mark.parametrize(
    ("statuses", "end", "state"),
    [
        ([(401, "Unauthorized")], None, CallState.CHALLENGED),
        ([(407, "Proxy Authentication Required")], None, CallState.CHALLENGED),
        ([(401, "Unauthorized"), (403, "Forbidden")], None, CallState.REJECTED),
        ([(401, "Unauthorized"), (401, "Unauthorized")], None, CallState.CHALLENGED),
        ([(404, "Not Found")], None, CallState.REJECTED),
        ([(423, "Interval Too Brief")], None, CallState.REJECTED),
        ([(408, "Request Timeout")], None, CallState.FAILED),
        ([(503, "Service Unavailable")], None, CallState.FAILED),
        ([(401, "Unauthorized"), None], 5.0, CallState.PENDING),
        ([None], 40.0, CallState.FAILED),  # past timer F
    ],
)
def test_registration_judged_by_its_last_register(
    statuses: list[tuple[int, str] | None], end: float | None, state: CallState
) -> None:
    feed = Feeder()
    for n, answer in enumerate(statuses, start=1):
        req = register(n, extra=CREDENTIALS if n > 1 else "")
        feed(n * 1.0, ALICE, BOB, req)
        if answer is not None:
            status, reason = answer
            feed(n * 1.0 + 0.1, BOB, ALICE, response(req, status, reason, to_tag="r"))
    call = item(feed, end)
    last = statuses[-1]
    assert (call.state, call.final_status) == (state, last[0] if last else None)


# ----------------------------------------------------------------------------- OPTIONS, MESSAGE


@pytest.mark.parametrize(
    ("status", "end", "state"),
    [
        (200, None, CallState.ANSWERED),
        (404, None, CallState.ANSWERED),  # the peer is alive: it says it has no such user
        (503, None, CallState.ANSWERED),
        (408, None, CallState.FAILED),
        (504, None, CallState.FAILED),
        (None, 40.0, CallState.FAILED),
        (None, 1.0, CallState.PENDING),
    ],
)
def test_options_answered_by_any_final_response_but_a_timeout(
    status: int | None, end: float | None, state: CallState
) -> None:
    feed = Feeder()
    req = request("OPTIONS", call_id="ping")
    feed(0.0, ALICE, BOB, req)
    if status is not None:
        feed(0.1, BOB, ALICE, response(req, status, "Whatever", to_tag="o"))
    call = item(feed, end)
    assert (call.kind, call.state, call.final_status) == (CallKind.OPTIONS, state, status)


@pytest.mark.parametrize(
    ("method", "status", "end", "state"),
    [
        ("MESSAGE", 200, None, CallState.DELIVERED),
        ("MESSAGE", 202, None, CallState.DELIVERED),
        ("MESSAGE", 486, None, CallState.REJECTED),
        ("MESSAGE", 480, None, CallState.REJECTED),
        ("MESSAGE", 500, None, CallState.FAILED),
        ("MESSAGE", None, 40.0, CallState.FAILED),
        ("MESSAGE", None, 1.0, CallState.PENDING),
        ("PUBLISH", 200, None, CallState.ACCEPTED),
        ("PUBLISH", 412, None, CallState.REJECTED),
        ("INFO", None, 1.0, CallState.PENDING),
    ],
)
def test_message_and_other_requests(
    method: str, status: int | None, end: float | None, state: CallState
) -> None:
    feed = Feeder()
    req = request(method, call_id="m-1")
    feed(0.0, ALICE, BOB, req)
    if status is not None:
        feed(0.1, BOB, ALICE, response(req, status, "Whatever", to_tag="m"))
    assert item(feed, end).state is state


# -------------------------------------------------------------------------------- subscriptions


def subscribe(
    feed: Feeder, t: float, cseq: int, status: int | None, *, expires: int = 600, tagged: bool = False
) -> None:
    req = request(
        "SUBSCRIBE",
        branch=f"z9hG4bK-s{cseq}",
        cseq=cseq,
        call_id="sub-1",
        to_tag="s" if tagged else None,
        extra=f"Event: presence\r\nExpires: {expires}\r\n",
    )
    feed(t, ALICE, BOB, req)
    if status is not None:
        ok = response(req, status, "Whatever", to_tag="s")
        feed(t + 0.01, BOB, ALICE, with_headers(ok, f"Expires: {expires}\r\n") if status < 300 else ok)


def notify(feed: Feeder, t: float, cseq: int, state: str) -> None:
    req = request(
        "NOTIFY",
        branch=f"z9hG4bK-n{cseq}",
        cseq=cseq,
        call_id="sub-1",
        from_tag="s",
        to_tag="a1",
        extra=f"Event: presence\r\nSubscription-State: {state}\r\n",
    )
    feed(t, BOB, ALICE, req)
    feed(t + 0.01, ALICE, BOB, response(req, 200, "OK"))


def test_subscription_active_with_its_expiry_then_terminated_by_notify() -> None:
    feed = Feeder()
    subscribe(feed, 0.0, 1, 200)
    notify(feed, 0.1, 1, "active;expires=599")
    call = item(feed)
    assert (call.kind, call.state, call.final_status, call.expires_s) == (
        CallKind.SUBSCRIPTION,
        CallState.ACTIVE,
        200,
        600,
    )
    notify(feed, 5.0, 2, "terminated;reason=noresource")
    assert (item(feed).state, item(feed).expires_s) == (CallState.TERMINATED, None)


def test_subscription_refreshed_then_unsubscribed() -> None:
    feed = Feeder()
    subscribe(feed, 0.0, 1, 200)
    subscribe(feed, 300.0, 2, 200, tagged=True)  # a refresh inside the dialog
    assert item(feed).state is CallState.ACTIVE
    subscribe(feed, 400.0, 3, 200, tagged=True, expires=0)  # RFC 6665 §4.1.2.3
    assert item(feed).state is CallState.TERMINATED


@pytest.mark.parametrize(
    ("status", "end", "state"),
    [
        (403, None, CallState.REJECTED),
        (489, None, CallState.REJECTED),  # Bad Event
        (500, None, CallState.FAILED),
        (None, 40.0, CallState.FAILED),
        (None, 1.0, CallState.PENDING),
    ],
)
def test_subscription_refused_or_unanswered(status: int | None, end: float | None, state: CallState) -> None:
    feed = Feeder()
    subscribe(feed, 0.0, 1, status)
    assert item(feed, end).state is state


def test_notify_without_its_subscribe() -> None:
    feed = Feeder()
    notify(feed, 0.0, 1, "active")
    assert item(feed).state is CallState.ACTIVE
    feed = Feeder()
    notify(feed, 0.0, 1, "terminated")
    assert item(feed).state is CallState.TERMINATED


def test_calls_keep_their_states() -> None:
    feed = Feeder()
    inv = request("INVITE", body=SDP)
    feed(0.0, ALICE, BOB, inv)
    assert item(feed, 1.0).state is CallState.SETUP


# ---------------------------------------------------------------------------- real captures


def _shared(name: str) -> Path:
    path = SHARED_CAPTURES / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


def test_real_registrations() -> None:
    analysis = analyze([SAMPLES / "register.pcap"])
    assert [(c.kind.value, c.state.value, c.final_status, c.expires_s) for c in analysis.calls] == [
        ("registration", "registered", 200, 3600),
        ("options", "answered", 200, None),
    ]
    # REGISTER, 401, REGISTER with credentials, 403; the same for a SUBSCRIBE.
    analysis = analyze([_shared(WRONG_PASSWORD)])
    assert [(c.kind.value, c.state.value, c.final_status) for c in analysis.calls] == [
        ("registration", "rejected", 403),
        ("subscription", "rejected", 403),
    ]
    # One Call-ID for three accounts, the last REGISTER answered "401 nonce has changed".
    analysis = analyze([_shared("aaa.pcap")])
    assert [(c.state.value, c.final_status) for c in analysis.calls if c.kind is CallKind.REGISTRATION] == [
        ("challenged", 401),
        ("registered", 200),
    ]
    # The capture ends 0.2 s after the REGISTER re-sent with credentials.
    analysis = analyze([_shared("voip-extension2downata.pcap")])
    (registration,) = [c for c in analysis.calls if c.kind is CallKind.REGISTRATION]
    assert (registration.state, registration.final_status) == (CallState.PENDING, None)


# ------------------------------------------------------------------------------ command line


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "250"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", ["ladder", "export"])
def test_no_call_says_what_else_there_is(command: str, tmp_path: Path) -> None:
    out = ["-o", str(tmp_path / "x.svg")] if command == "export" else []
    code, stdout, err = run(command, REGISTER_PCAP, *out)
    assert (code, stdout) == (1, "")
    assert err == "sipflow: no call; 2 other Call-IDs (1 registration, 1 OPTIONS): add --all\n"
    code, _, err = run(command, REGISTER_PCAP, "--state", "registered", *out)
    assert code == 1
    assert err == "sipflow: no call matches; 1 other Call-ID does (1 registration): add --all\n"
    code, _, err = run(command, REGISTER_PCAP, "--state", "failed", *out)
    assert code == 1 and err.startswith("sipflow: no call matches (6 packets read;")
    code, _, _ = run(command, REGISTER_PCAP, "--all", "--state", "registered", *out)
    assert code == 0


def test_calls_all_in_every_format() -> None:
    code, out, _ = run("calls", REGISTER_PCAP, "--all")
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:3]]
    assert [(r[2], r[8], r[9]) for r in rows] == [  # after From, To, Source, Destination, Transport
        ("registration", "registered", "200"),
        ("options", "answered", "200"),
    ]
    _, out, _ = run("calls", REGISTER_PCAP, "--all", "--format", "csv")
    assert [(r["kind"], r["state"]) for r in csv.DictReader(io.StringIO(out))] == [
        ("registration", "registered"),
        ("options", "answered"),
    ]
    _, out, _ = run("calls", REGISTER_PCAP, "--all", "--format", "json")
    calls = json.loads(out)["calls"]
    assert [(c["kind"], c["state"], c.get("expires_s")) for c in calls] == [
        ("registration", "registered", 3600),
        ("options", "answered", None),
    ]
    assert [leg["state"] for c in calls for leg in c["legs"]] == ["registered", "answered"]
    _, out, _ = run("calls", REGISTER_PCAP, "--all", "--state", "answered", "--format", "json")
    assert [c["kind"] for c in json.loads(out)["calls"]] == ["options"]


def test_ladder_title_and_facts() -> None:
    code, out, _ = run("ladder", REGISTER_PCAP, "--all", "--plain")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Call 1: alice@127.0.0.20 -> alice@127.0.0.20  registered 200 OK  [registration]"
    assert lines[1] == "  expires 3600 s, 4 messages"
    assert "Call 2: alice@127.0.0.20 -> 127.0.0.20  answered 200 OK  [options]" in lines


def test_stats_count_items_by_kind_and_state() -> None:
    stats = compute(analyze([SAMPLES / "register.pcap"]))
    assert stats.items == {"registration": {"registered": 1}, "options": {"answered": 1}}
    assert stats_lines(stats)[-1] == "Items: 1 registration (1 registered); 1 OPTIONS (1 answered)"
    assert json.loads(json.dumps(stats_dict(stats)))["items"] == stats.items
    stats = compute(analyze([SAMPLES / "three-calls.pcap"]))
    assert stats_lines(stats)[-1] == "Items: 3 calls (3 completed)"
