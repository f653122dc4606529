"""Expectations checked against an analysis: one ``ExpectationResult`` per expectation.

``evaluate`` gives one result per call expectation, in file order (the calls its ``match``
names, each held to its outcome, status, flow, PDD and setup time), and one for ``count``. A
failed expectation carries one ``expect:<name>`` finding (severity ERROR) per failure, with
the frames concerned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sipflow.checks.expectations import CallExpectation, Expectations
from sipflow.checks.finding import Finding, Severity
from sipflow.checks.flow import call_flow, flow_label
from sipflow.checks.reason import decode_reason
from sipflow.media.collector import RtpStream
from sipflow.model.analysis import Analysis
from sipflow.model.call import Call, CallKind
from sipflow.model.caller import caller_view
from sipflow.model.media import media_direction, streams_by_call
from sipflow.model.message import Message

__all__ = ["ExpectationResult", "evaluate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectationResult:
    """What became of one expectation."""

    name: str
    passed: bool
    expected: str
    """What the expectation asked for, in words."""
    actual: str
    """What the trace shows, in the same words."""
    call_index: int | None
    """The call it was checked against, when there was exactly one."""
    findings: tuple[Finding, ...]
    """For a failed expectation: one ``expect:<name>`` finding (severity ERROR) per failure."""


_EXPLAIN: Final = {
    "match": "The expectation names calls by From/To, Call-ID or header; the trace does not hold "
    "the number of such calls it asks for (a call missing, or more calls than expected).",
    "outcome": "The call ended in another state than expected (see the final response and its Reason).",
    "status": "The caller saw another final response than expected.",
    "flow": "The messages the caller sent and received differ from the expected flow.",
    "pdd": "The call took longer to ring (first 18x, or the answer if it never rang) than allowed.",
    "setup": "The call took longer to be answered (2xx) than allowed.",
    "count": "The trace holds another number of calls than expected.",
    "media": "The call's RTP (the streams to the addresses its SDP described) goes other ways than "
    "expected: both, one (one-way audio), or none.",
    "loss": "One of the call's RTP streams lost a larger share of its packets than allowed.",
}


def _frames(messages: Iterable[Message]) -> tuple[tuple[str, int], ...]:
    return tuple(dict.fromkeys((m.file, m.frame) for m in messages))


def _frame_list(messages: Sequence[Message]) -> str:
    if not messages:
        return ""
    return (" at frame " if len(messages) == 1 else " at frames ") + ", ".join(str(m.frame) for m in messages)


def _call_name(call: Call) -> str:
    return f"call {call.index} (Call-ID {call.id})"


def _brief(call: Call) -> str:
    src = call.from_.uri.raw if call.from_ is not None else "?"
    dst = call.to.uri.raw if call.to is not None else "?"
    return f"call {call.index} {src} -> {dst} {call.state.value}"


def _final_message(call: Call) -> Message | None:
    """The final response the caller received to its INVITE: that of the attempt that decided
    the call (the answered one, else the last: ``caller_view``), the one ``Call.final_status``
    reports."""
    decisive = caller_view(call.legs[0]).decisive
    return decisive.final if decisive is not None else None


def _reason_of(call: Call) -> str | None:
    for m in call_flow(call):
        value = m.sip.headers.get("reason")
        if value and not m.retransmission:
            return decode_reason(value)
    return None


def _ms(value: float | None) -> str:
    return "none" if value is None else f"{value:.0f} ms"


class _Failure:
    __slots__ = ("actual", "expected", "kind", "messages")

    def __init__(self, kind: str, expected: str, actual: str, messages: Sequence[Message] = ()) -> None:
        self.kind = kind
        self.expected = expected
        self.actual = actual
        self.messages = tuple(messages)


def _check_media(
    expectation: CallExpectation, call: Call, streams: Sequence[RtpStream], failures: list[_Failure]
) -> tuple[list[str], list[str]]:
    expected: list[str] = []
    actual: list[str] = []
    answer = caller_view(call.legs[0]).answer
    at = [answer] if answer is not None else call.legs[0].messages[:1]
    listed = "; ".join(f"{s.src} -> {s.dst} ({s.figures.packets} packets)" for s in streams)
    if expectation.media is not None:
        got = media_direction(streams)
        expected.append(f"media {expectation.media}")
        actual.append(f"media {got}")
        if got != expectation.media:
            detail = f"media {got}" + (f": {listed}" if listed else ": no RTP to the call's SDP addresses")
            failures.append(_Failure("media", f"media {expectation.media}", detail, at))
    if expectation.max_loss_pct is not None:
        limit = expectation.max_loss_pct
        shares = [(s.figures.lost_pct, s) for s in streams if s.figures.lost_pct is not None]
        expected.append(f"loss <= {limit:g} %")
        if not shares:
            actual.append("loss unknown")
            failures.append(_Failure("loss", f"loss <= {limit:g} %", "no RTP of the call measured", at))
        else:
            worst, stream = max(shares, key=lambda p: p[0] or 0.0)
            actual.append(f"loss {worst:.1f} %")
            if (worst or 0.0) > limit:
                f = stream.figures
                got = f"loss {worst:.1f} % ({stream.src} -> {stream.dst}, {f.lost} of {f.expected})"
                failures.append(_Failure("loss", f"loss <= {limit:g} %", got, at))
    return expected, actual


def _check_call(
    expectation: CallExpectation, call: Call, streams: Sequence[RtpStream] = ()
) -> tuple[list[str], list[str], list[_Failure]]:
    """(expected parts, actual parts, failures) of one call against one expectation; ``streams``:
    the call's RTP, where the media was measured."""
    expected: list[str] = []
    actual: list[str] = []
    failures: list[_Failure] = []
    final = _final_message(call)
    at_final = [final] if final is not None else []
    if expectation.outcome:
        want = " or ".join(s.value for s in expectation.outcome)
        got = call.state.value
        if call.final_status is not None:
            got += f" {call.final_status} {call.final_reason or ''}".rstrip()
        cause = _reason_of(call)
        if cause:
            got += f" (Reason: {cause})"
        expected.append(f"outcome {want}")
        actual.append(f"outcome {got}")
        if call.state not in expectation.outcome:
            failures.append(_Failure("outcome", f"outcome {want}", got + _frame_list(at_final), at_final))
    if expectation.status is not None:
        expected.append(f"status {expectation.status}")
        actual.append(f"status {call.final_status if call.final_status is not None else 'none'}")
        if call.final_status != expectation.status:
            got = f"{call.final_status} {call.final_reason or ''}".rstrip() if call.final_status else "none"
            failures.append(
                _Failure("status", f"status {expectation.status}", got + _frame_list(at_final), at_final)
            )
    if expectation.flow is not None:
        messages = call_flow(call)
        labels = [flow_label(m) for m in messages]
        shown = " ".join(labels) or "(no messages)"
        expected.append(f"flow {expectation.flow}")
        actual.append(f"flow {shown}")
        result = expectation.flow.match(labels)
        if not result.ok:
            wanted = " or ".join(result.expected) if result.expected else "the end of the flow"
            if result.position < len(messages):
                at = messages[result.position]
                where = (
                    f"message {result.position + 1} ({labels[result.position]} at frame {at.frame}) "
                    f"where {wanted} was expected"
                )
                concerned: list[Message] = [at]
            else:
                where = f"the flow ends where {wanted} was expected"
                concerned = messages[-1:]
            # Said in the result's actual too, so every report shows where the flow diverged.
            actual[-1] = f"flow {shown}: {where}"
            failures.append(_Failure("flow", f"flow {expectation.flow}", actual[-1], concerned))
    if expectation.max_pdd_ms is not None:
        limit = expectation.max_pdd_ms
        value = call.pdd_ms if call.pdd_ms is not None else call.setup_ms
        what = "PDD" if call.pdd_ms is not None or call.setup_ms is None else "PDD (no 18x; time to answer)"
        expected.append(f"PDD <= {limit:g} ms")
        actual.append(f"{what} {_ms(value)}")
        if value is None or value > limit:
            got = f"{what} {_ms(value)}" if value is not None else "the call never rang nor was answered"
            failures.append(_Failure("pdd", f"PDD <= {limit:g} ms", got, _timing_messages(call, setup=False)))
    if expectation.max_setup_ms is not None:
        limit = expectation.max_setup_ms
        expected.append(f"setup <= {limit:g} ms")
        actual.append(f"setup {_ms(call.setup_ms)}")
        if call.setup_ms is None or call.setup_ms > limit:
            got = (
                f"setup {_ms(call.setup_ms)}" if call.setup_ms is not None else "the call was never answered"
            )
            failures.append(
                _Failure("setup", f"setup <= {limit:g} ms", got, _timing_messages(call, setup=True))
            )
    if expectation.media is not None or expectation.max_loss_pct is not None:
        more_expected, more_actual = _check_media(expectation, call, streams, failures)
        expected += more_expected
        actual += more_actual
    return expected, actual, failures


def _timing_messages(call: Call, *, setup: bool) -> list[Message]:
    """The messages a PDD (or, with ``setup``, a setup time) is measured between: the caller's
    first INVITE and its first 18x (its 2xx), as ``Call.pdd_ms`` and ``setup_ms`` measure them."""
    view = caller_view(call.legs[0])
    end = view.answer if setup else view.first_provisional
    return [m for m in (view.first_request, end) if m is not None]


def _finding(name: str, call: Call | None, failure: _Failure) -> Finding:
    subject = _call_name(call) if call is not None else "the trace"
    return Finding(
        rule=f"expect:{name}",
        severity=Severity.ERROR,
        message=f"{subject}: expected {failure.expected}; got {failure.actual}",
        explanation=_EXPLAIN[failure.kind],
        call_index=call.index if call is not None else None,
        call_id=call.id if call is not None else None,
        frames=_frames(failure.messages),
        cause=_reason_of(call) if call is not None and failure.kind in ("outcome", "status") else None,
    )


def _evaluate_call(
    expectation: CallExpectation, analysis: Analysis, streams: Mapping[int, list[RtpStream]]
) -> ExpectationResult:
    name = expectation.name
    matched = expectation.match.select(analysis)
    described = expectation.match.describe()
    want_count = 1 if expectation.count is None else expectation.count
    findings: list[Finding] = []
    expected_parts: list[str] = []
    actual_parts: list[str] = []

    if len(matched) != want_count:
        if expectation.count is None:
            expected_count = f"exactly one call matching {described}"
        else:
            expected_count = f"{_count_of(want_count, 'calls')} matching {described}"
        if not matched:
            others = [c for c in analysis.calls if c.kind is CallKind.CALL]
            listed = "; ".join(_brief(c) for c in others[:8]) + (" …" if len(others) > 8 else "")
            actual_count = "no call matches" + (
                f" (the trace has: {listed})" if others else " (the trace has no call)"
            )
        else:
            listed = "; ".join(_brief(c) for c in matched[:8]) + (" …" if len(matched) > 8 else "")
            actual_count = f"{_count_of(len(matched), 'calls')} match: {listed}"
        failure = _Failure("match", expected_count, actual_count)
        findings.append(_finding(name, None, failure))
        expected_parts.append(expected_count)
        actual_parts.append(actual_count)
        if expectation.count is None:
            # Which call to check is unknown: say what was expected of it and stop.
            expected_parts.extend(_check_call(expectation, matched[0])[0] if matched else [])
            return ExpectationResult(
                name=name,
                passed=False,
                expected="; ".join(expected_parts),
                actual="; ".join(actual_parts),
                call_index=None,
                findings=tuple(findings),
            )
    elif expectation.count is not None:
        expected_parts.append(f"{_count_of(want_count, 'calls')} matching {described}")
        actual_parts.append(f"{len(matched)} match")

    for call in matched:
        expected, actual, failures = _check_call(expectation, call, streams.get(call.index, ()))
        if call is matched[0]:
            expected_parts.extend(expected)
        if len(matched) == 1:
            actual_parts.append(f"call {call.index}")
            actual_parts.extend(actual)
        elif failures:
            actual_parts.append(f"call {call.index}: " + ", ".join(f.actual for f in failures))
        findings.extend(_finding(name, call, f) for f in failures)
    return ExpectationResult(
        name=name,
        passed=not findings,
        expected="; ".join(expected_parts) or f"calls matching {described}",
        actual="; ".join(actual_parts),
        call_index=matched[0].index if len(matched) == 1 else None,
        findings=tuple(findings),
    )


def _count_of(n: int, key: str) -> str:
    noun = "call" if n == 1 else "calls"
    return f"{n} {noun}" if key == "calls" else f"{n} {key} {noun}"


def _evaluate_count(count: Mapping[str, int], analysis: Analysis) -> ExpectationResult:
    calls = [c for c in analysis.calls if c.kind is CallKind.CALL]
    expected_parts: list[str] = []
    actual_parts: list[str] = []
    findings: list[Finding] = []
    for key, want in count.items():
        got = len(calls) if key == "calls" else sum(1 for c in calls if c.state.value == key)
        expected_parts.append(_count_of(want, key))
        actual_parts.append(_count_of(got, key))
        if got != want:
            failure = _Failure("count", _count_of(want, key), _count_of(got, key))
            findings.append(_finding("count", None, failure))
    return ExpectationResult(
        name="count",
        passed=not findings,
        expected=", ".join(expected_parts),
        actual=", ".join(actual_parts),
        call_index=None,
        findings=tuple(findings),
    )


def evaluate(expectations: Expectations, analysis: Analysis) -> list[ExpectationResult]:
    """One result per call expectation, in file order, then one for ``count`` if given."""
    streams = streams_by_call(analysis.calls, analysis.media) if analysis.media else {}
    results = [_evaluate_call(e, analysis, streams) for e in expectations.calls]
    if expectations.count:
        results.append(_evaluate_count(expectations.count, analysis))
    return results
