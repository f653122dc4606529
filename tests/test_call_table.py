"""The ``sipflow calls`` table (sipflow/render/call_table.py): columns that fit the terminal
(issue 17: at 80 columns a row stayed one line), Source, Destination and Transport, --columns,
--sort, and the date when the calls span days."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

import sipflow
from sipflow.cli import main
from sipflow.model.call import Call
from sipflow.render.call_table import BY_KEY, calls_table, parse_columns, parse_sort, sort_calls

from .conftest import SAMPLES


def _calls(name: str) -> tuple[Call, ...]:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return sipflow.analyze(path).calls


def _lines(calls: tuple[Call, ...] | list[Call], **kwargs: object) -> list[str]:
    return [t.plain for t in calls_table(calls, plain=True, **kwargs)]  # type: ignore[arg-type]


def test_at_80_columns_each_row_is_one_line_with_the_essentials() -> None:
    calls = _calls("b2bua-3pcc.pcap")
    lines = _lines(calls, width=80)
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == ["#", "Start", "(UTC)", "From", "To", "State", "Code", "PDD", "Dur."]
    assert len(lines) == len(calls) + 1
    first = lines[1].split()
    assert first[0] == "1" and first[4:] == ["completed", "200", "109", "ms", "1.0", "s"]
    assert "Call-ID" not in lines[0]


@pytest.mark.parametrize("width", [60, 72, 80, 100, 120, 160, 240])
def test_every_width_fits_and_columns_go_in_order(width: int) -> None:
    calls = _calls("proxy-call.pcap") + _calls("b2bua-3pcc.pcap")
    lines = _lines(list(calls), width=width)
    assert all(len(line) <= width for line in lines), width
    wide = _lines(list(calls))
    assert max(len(line) for line in wide) >= 240  # nothing dropped or cut into a pipe
    assert "Call-ID" in wide[0] and "Transport" in wide[0]
    # A wider terminal never shows fewer columns.
    narrower = _lines(list(calls), width=width - 10)
    assert len(narrower[0].split()) <= len(lines[0].split())


def test_source_destination_transport() -> None:
    (udp,) = _calls("proxy-call.pcap")
    (tcp,) = _calls("tcp-call.pcap")
    head, row = _lines([udp], columns=("src", "dst", "transport"))
    assert head.split() == ["Source", "Destination", "Transport"]
    assert row.split() == [str(udp.messages[0].src), str(udp.messages[0].dst), "UDP"]
    assert "TCP" in _lines([tcp], columns=("transport",))[1]


def test_chosen_columns_are_never_dropped_only_cut() -> None:
    calls = _calls("b2bua-3pcc.pcap")
    keys = ("index", "from", "call-id", "retr")
    lines = _lines(calls, width=60, columns=keys)
    assert lines[0].split() == ["#", "From", "Call-ID", "Retr"]
    assert "…" in lines[1]  # the Call-IDs were cut to fit


def test_columns_and_sort_are_validated() -> None:
    assert parse_columns("From, to,STATE", media=False) == ("from", "to", "state")
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        parse_columns("from,nope", media=False)
    with pytest.raises(ValueError, match="needs --media"):
        parse_columns("mos", media=False)
    with pytest.raises(ValueError, match="twice"):
        parse_columns("from,from", media=False)
    assert parse_sort("-pdd", media=False) == ("pdd", True)
    result = CliRunner().invoke(main, ["calls", str(SAMPLES / "proxy-call.pcap"), "--columns", "from,bogus"])
    assert result.exit_code == 2 and "--columns" in result.output and "bogus" in result.output
    result = CliRunner().invoke(main, ["calls", str(SAMPLES / "proxy-call.pcap"), "--sort", "mos"])
    assert result.exit_code == 2 and "--media" in result.output


def test_sort_by_a_column_calls_without_a_value_last() -> None:
    calls = _calls("b2bua-3pcc.pcap")
    up = sort_calls(calls, "pdd")
    down = sort_calls(calls, "pdd", descending=True)
    valued = [c.pdd_ms for c in up if c.pdd_ms is not None]
    assert valued == sorted(valued)
    assert [c.pdd_ms for c in down if c.pdd_ms is not None] == sorted(valued, reverse=True)
    missing = sum(1 for c in calls if c.pdd_ms is None)
    assert (
        missing
        and all(c.pdd_ms is None for c in up[-missing:])
        and all(c.pdd_ms is None for c in down[-missing:])
    )
    # Ties keep capture order (a stable sort).
    by_state = sort_calls(calls, "state")
    for state in {c.state for c in calls}:
        same = [c.index for c in by_state if c.state == state]
        assert same == sorted(same)
    # Through the CLI: every format in that order, each call keeping its number.
    out = CliRunner().invoke(main, ["calls", str(SAMPLES / "b2bua-3pcc.pcap"), "--sort", "-duration"]).stdout
    rows = out.splitlines()[1 : 1 + len(calls)]  # then the summary line
    numbers = [int(line.split()[0]) for line in rows]
    assert numbers == [c.index for c in sort_calls(calls, "duration", descending=True)]


def test_the_date_when_the_calls_span_days() -> None:
    (call,) = _calls("proxy-call.pcap")
    later = dataclasses.replace(call, index=2, start=call.start + 86400.0)
    lines = _lines([call, later], columns=("index", "start"))
    assert lines[1].split()[1].count("-") == 2 and lines[2].split()[1] > lines[1].split()[1]
    assert _lines([call], columns=("start",))[1].count("-") == 0


def test_every_column_has_a_title_and_a_sort_key() -> None:
    (call,) = _calls("proxy-call.pcap")
    for column in BY_KEY.values():
        assert column.title
        column.sort(call, ())  # never raises, also without media
        assert isinstance(column.cell(call, ()), str)
