"""``sipflow browse``: the list's filtering and sorting as functions, and the Textual app driven
headless by its pilot (open a capture, filter by part of a number, open a call, step through
its messages, view one, write it), with snapshots of its screens at 80x24 and 160x48."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from sipflow.browse.app import BrowseApp, CallScreen, ExportScreen, TextScreen
from sipflow.browse.ladder_view import LadderView, without_retransmissions
from sipflow.browse.listing import ListView, matches, visible
from sipflow.capture.live import HepListener, LiveCapture
from sipflow.capture.reader import CaptureReader
from sipflow.model.call import CallKind
from sipflow.pipeline import analyze
from sipflow.render.options import LayoutOptions

from .capture_util import pcap_bytes, records, sip_request, sip_response, udp_frame
from .conftest import SAMPLES, sample_captures, shared_captures

SIZES = [(80, 24), (160, 48)]


def _run(
    app: BrowseApp, steps: Callable[[Pilot[None]], Awaitable[None]], size: tuple[int, int] = (120, 36)
) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await _loaded(pilot)
            await steps(pilot)

    asyncio.run(main())


async def _loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, BrowseApp)
    for _ in range(200):
        if not app.loading:
            break
        await pilot.pause(0.05)
    await pilot.pause()
    assert not app.loading, "the capture was not read in time"


# --- the list as functions ------------------------------------------------------------------


def test_filter_matches_numbers_header_text_and_call_ids() -> None:
    analysis = analyze(SAMPLES / "b2bua-3pcc.pcap")
    calls = analysis.calls
    everything = visible(calls, ListView())
    assert len(everything) == sum(1 for c in calls if c.kind is CallKind.CALL)
    # Part of a number: the B2BUA rewrote +4930123 to 004930123 on leg B, so both find every call.
    assert visible(calls, ListView(text="930123")) == everything
    assert visible(calls, ListView(text="0049301")) == everything
    # A Call-ID of one leg finds that call only; a status code finds the calls refused so.
    leg_b = calls[3].legs[-1].call_id
    assert [c.index for c in visible(calls, ListView(text=leg_b.upper()))] == [calls[3].index]
    refused = [c for c in everything if c.final_status == 603]
    assert refused and set(refused) <= set(visible(calls, ListView(text="603")))
    # Any header text: the User-Agent of the sample's B2BUA.
    assert visible(calls, ListView(text="sipflow-sample-b2bua")) == everything
    assert visible(calls, ListView(text="no such text anywhere")) == []
    assert matches(calls[0], "   ")


def test_kinds_and_sorting() -> None:
    analysis = analyze([SAMPLES / "register.pcap", SAMPLES / "three-calls.pcap"])
    calls = analysis.calls
    only_calls = visible(calls, ListView())
    with_registrations = visible(calls, ListView(kinds=frozenset({CallKind.CALL, CallKind.REGISTRATION})))
    assert len(with_registrations) > len(only_calls)
    assert {c.kind for c in with_registrations} == {CallKind.CALL, CallKind.REGISTRATION}
    by_duration = visible(calls, ListView(sort="duration", descending=True))
    durations = [c.duration_s for c in by_duration if c.duration_s is not None]
    assert durations == sorted(durations, reverse=True)
    assert ListView(kinds=frozenset({CallKind.CALL, CallKind.OPTIONS})).shown_columns()[2] == "kind"


def test_hiding_retransmissions_keeps_the_other_arrows_in_order() -> None:
    analysis = analyze(SAMPLES / "faulty-no-ack.pcap")  # the 200 OK resent: no ACK came
    call = next(c for c in analysis.calls if c.retransmissions)
    ladder = LayoutOptions().ladder(call)
    hidden = without_retransmissions(ladder)
    assert len(hidden.arrows) == len(ladder.arrows) - sum(a.retransmission for a in ladder.arrows)
    kept = [a.message.index for a in ladder.arrows if not a.retransmission]
    assert [a.message.index for a in hidden.arrows] == kept


# --- the app, driven ------------------------------------------------------------------------


def test_find_a_call_by_part_of_a_number_read_it_and_step_through() -> None:
    app = BrowseApp([str(SAMPLES / "b2bua-3pcc.pcap")])
    expected = visible(analyze(SAMPLES / "b2bua-3pcc.pcap").calls, ListView(text="603"))

    async def steps(pilot: Pilot[None]) -> None:
        screen = app.calls_screen
        assert len(screen.shown) == 36
        await pilot.press("slash", "6", "0", "3")
        await pilot.pause(0.4)
        assert [c.index for c in screen.shown] == [c.index for c in expected]
        table = screen.query_one(DataTable)
        assert table.row_count == len(expected)
        await pilot.press("enter")  # leaves the filter box
        await pilot.press("down", "enter")  # the second call shown
        await pilot.pause()
        call_screen = app.screen
        assert isinstance(call_screen, CallScreen)
        assert call_screen.call.index == expected[1].index
        view = call_screen.query_one(LadderView)
        assert view.selected == 0
        await pilot.press("down", "down")
        await pilot.pause()
        assert view.selected == 2
        arrow = view.ladder.arrows[2]
        pane = call_screen.query_one("#message", Static)
        shown = _plain(pane)
        assert arrow.raw_lines[0] in shown and "Call-ID" in shown
        await pilot.press("end")
        assert view.selected == len(view.ladder.arrows) - 1
        await pilot.press("t")
        await pilot.pause()
        assert view.since == call_screen.call.messages[0].timestamp
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, TextScreen)
        assert "leg A" in _plain(app.screen.query_one(Static))
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.screen is screen

    _run(app, steps)


def test_findings_of_a_faulty_call() -> None:
    app = BrowseApp([str(SAMPLES / "faulty-no-ack.pcap")])

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, TextScreen)
        text = _plain(app.screen.query_one(Static))
        assert "error" in text and "ACK" in text

    _run(app, steps)


@pytest.mark.parametrize("suffix", ["svg", "pcap", "mmd", "json"])
def test_write_the_selected_call(tmp_path: Path, suffix: str) -> None:
    app = BrowseApp([str(SAMPLES / "proxy-call.pcap")])
    out = tmp_path / f"flow.{suffix}"

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        box = app.screen.query_one("#path")
        box.value = str(out)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()

    _run(app, steps)
    data = out.read_bytes()
    if suffix == "svg":
        assert data.lstrip().startswith((b"<?xml", b"<svg")) and b"INVITE" in data
    elif suffix == "pcap":
        with CaptureReader(out) as reader:
            sent = list(reader)
        call = analyze(SAMPLES / "proxy-call.pcap").calls[0]
        assert len(sent) == len(call.messages)
    elif suffix == "mmd":
        assert data.startswith(b"sequenceDiagram")
    else:
        assert b'"flow"' in data


def test_a_bad_file_is_said_and_the_app_stays(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-capture.pcap"
    bad.write_bytes(b"hello, this is not a pcap")
    app = BrowseApp([str(bad)])

    async def steps(pilot: Pilot[None]) -> None:
        assert app.error is not None and "not-a-capture.pcap" in app.error
        assert "not a pcap" in _plain(app.calls_screen.query_one("#status", Static))

    _run(app, steps)


def test_packet_text_is_never_markup(tmp_path: Path) -> None:
    evil = 'From: "[bold red]boss[/] \x1b[2J" <sip:[link=x]a@atlanta.example.com>;tag=1928301774\r\n'
    invite = sip_request("INVITE").replace(
        b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n", evil.encode()
    )
    path = tmp_path / "evil.pcap"
    busy = sip_response(486, "Busy [i]Here[/i]")
    path.write_bytes(pcap_bytes(records([udp_frame(invite), udp_frame(busy)])))
    app = BrowseApp([str(path)])

    async def steps(pilot: Pilot[None]) -> None:
        table = app.calls_screen.query_one(DataTable)
        row = " ".join(cell.plain for cell in table.get_row_at(0))
        assert "[link=x]a@atlanta" in row
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CallScreen)
        pane = _plain(app.screen.query_one("#message", Static))
        assert "[bold red]boss[/]" in pane and "\x1b" not in pane
        await pilot.press("down")
        await pilot.pause()
        assert "Busy [i]Here[/i]" in _plain(app.screen.query_one("#message", Static))

    _run(app, steps)


def _plain(widget: Static) -> str:
    content = widget.render()
    return content.plain if isinstance(content, Text) else str(content)


# --- snapshots ------------------------------------------------------------------------------


async def _wait(pilot: Pilot[Any]) -> None:
    await _loaded(pilot)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_call_list(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(BrowseApp([str(SAMPLES / "b2bua-3pcc.pcap")]), terminal_size=size, run_before=_wait)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_call_flow(snap_compare: Any, size: tuple[int, int]) -> None:
    async def open_call(pilot: Pilot[Any]) -> None:
        await _loaded(pilot)
        await pilot.press("enter", "down", "down", "down")
        await pilot.pause()

    app = BrowseApp([str(SAMPLES / "b2bua-3pcc.pcap")])
    assert snap_compare(app, terminal_size=size, run_before=open_call)


# --- live sources -----------------------------------------------------------------------------


def test_hep_collector_fills_the_list() -> None:
    from .test_capture_live import _hep_datagrams

    datagrams = _hep_datagrams(SAMPLES / "hep-udp.pcap")
    expected = [c.call_ids for c in analyze(SAMPLES / "hep-udp.pcap").calls if c.kind is CallKind.CALL]
    with HepListener("127.0.0.1", 0) as listener:
        app = BrowseApp([listener.path], labels={listener.path: "HEP test"}, live=[listener])

        async def main() -> None:
            async with app.run_test(size=(120, 36)) as pilot:
                await pilot.pause(0.3)
                assert "HEP test" in _plain(app.calls_screen.query_one("#status", Static))
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    for d in datagrams:
                        s.sendto(d, listener.address)
                for _ in range(60):
                    await pilot.pause(0.1)
                    if len(app.calls_screen.shown) == len(expected):
                        break
                assert [c.call_ids for c in app.calls_screen.shown] == expected
                assert app.loading  # a live source goes on until the app ends
                await pilot.press("q")

        asyncio.run(main())
    assert app.stop.is_set()


def test_live_call_on_loopback_appears_while_it_rings(tmp_path: Path) -> None:
    from .test_capture_live import _require_live, ringing_call

    _require_live()
    with LiveCapture(["lo"], "udp port 5060 or udp port 5072") as capture:
        app = BrowseApp([capture.path], labels={capture.path: "live lo"}, live=[capture])
        states: list[list[str]] = []

        async def main() -> None:
            async with app.run_test(size=(120, 36)) as pilot:
                await pilot.pause(1.0)  # the capture program opens lo
                calls = ringing_call(tmp_path)
                next(calls)
                try:
                    for _ in range(80):
                        await pilot.pause(0.1)
                        states.append([c.state.value for c in app.calls_screen.shown])
                        if ["ringing"] in states:
                            break
                    assert ["ringing"] in states, states
                    await pilot.press("enter")
                    await pilot.pause()
                    assert isinstance(app.screen, CallScreen)
                    assert app.screen.call.legs[0].messages[0].sip.first_line.startswith("INVITE")
                finally:
                    calls.close()

        asyncio.run(main())


def test_browse_command_line() -> None:
    from click.testing import CliRunner

    from sipflow.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["browse"])
    assert result.exit_code == 2 and "--interface or --hep-listen" in result.output
    result = runner.invoke(main, ["browse", str(SAMPLES / "basic-call.pcap"), "--write", "x.pcap"])
    assert result.exit_code == 2 and "--write" in result.output
    result = runner.invoke(main, ["browse", str(SAMPLES / "basic-call.pcap")])
    assert result.exit_code == 2 and "needs a terminal" in result.output


def test_marked_calls_are_written_together(tmp_path: Path) -> None:
    app = BrowseApp([str(SAMPLES / "three-calls.pcap")])
    pcap, svg = tmp_path / "two.pcap", tmp_path / "two.svg"

    async def write(pilot: Pilot[None], out: Path) -> None:
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        app.screen.query_one("#path").value = str(out)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("space", "down", "space")  # marks the first and the third
        await pilot.pause()
        assert app.calls_screen.marked == {1, 3}
        table = app.calls_screen.query_one(DataTable)
        marks = [table.get_row_at(i)[0].plain for i in range(table.row_count)]
        assert marks == ["*", " ", "*"]
        await write(pilot, pcap)
        await write(pilot, svg)

    _run(app, steps)
    calls = analyze(SAMPLES / "three-calls.pcap").calls
    with CaptureReader(pcap) as reader:
        assert len(list(reader)) == len(calls[0].messages) + len(calls[2].messages)
    assert not svg.exists()  # a diagram holds one call: said, nothing written


def test_aliases_toggle() -> None:
    from sipflow.render.options import LayoutOptions as Layout

    app = BrowseApp(
        [str(SAMPLES / "proxy-call.pcap")], ladder_options=Layout(aliases=(("127.0.0.10", "alice"),))
    )

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CallScreen)
        titles = [c.title for c in app.screen.full_ladder.columns]
        await pilot.press("a")
        await pilot.pause()
        plain = [c.title for c in app.screen.full_ladder.columns]
        assert "alice" in titles and "alice" not in plain

    _run(app, steps)


@pytest.mark.parametrize("path", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_every_capture_opens(path: Path) -> None:
    """Every sample and shared capture: the list, the first item's flow, each of its messages
    in the pane, the evidence and findings screens, without an error."""
    app = BrowseApp([str(path)])

    async def steps(pilot: Pilot[None]) -> None:
        assert app.error is None, app.error
        screen = app.calls_screen
        if not screen.shown:
            await pilot.press("R", "O", "X")  # registrations, OPTIONS, the rest
            await pilot.pause()
        if not screen.shown:
            return
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CallScreen)
        view = app.screen.query_one(LadderView)
        await pilot.press("down", "end", "r", "e")
        assert view.selected == len(view.ladder.arrows) - 1
        await pilot.pause()
        await pilot.press("escape", "f")
        await pilot.pause()
        assert isinstance(app.screen, TextScreen)

    _run(app, steps, size=(100, 30))
