"""The ladder layout carries what renderers draw (issue 13): renderers never reach into the
model through it, and the rows' geometry lets a scrolling view draw only what it shows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sipflow.pipeline import analyze
from sipflow.render.ladder import build_ladder
from sipflow.render.summary import call_summary, heading
from sipflow.render.terminal import ladder_lines

from .conftest import SAMPLES

RENDERERS = ("terminal", "graphviz", "html", "mermaid", "plantuml")
PACKAGE = Path(__file__).resolve().parent.parent / "sipflow" / "render"


@pytest.mark.parametrize("name", RENDERERS)
def test_renderers_read_only_the_layout(name: str) -> None:
    """No ``arrow.message`` or ``ladder.call``: what a renderer shows comes from the layout."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert node.attr != "message", f"{name}.py line {node.lineno} reads a message through the layout"
            if node.attr == "call" and isinstance(node.value, ast.Name):
                assert node.value.id not in ("ladder", "layout"), f"{name}.py line {node.lineno}"


def _ladders() -> list[object]:
    out = []
    for name in ("proxy-call.pcap", "b2bua-3pcc.pcap", "faulty-via-487-proxy.pcap", "auth-407.pcap"):
        analysis = analyze([SAMPLES / name])
        out.extend(build_ladder(call) for call in analysis.calls)
    return out


def test_the_heading_says_what_the_call_says() -> None:
    for ladder in _ladders():
        assert call_summary(ladder.heading) == call_summary(ladder.call)  # type: ignore[attr-defined]
        assert ladder.heading == heading(ladder.call)  # type: ignore[attr-defined]


def test_arrows_carry_their_message_facts() -> None:
    for ladder in _ladders():
        for arrow in ladder.arrows:  # type: ignore[attr-defined]
            message = arrow.message
            assert arrow.timestamp == message.timestamp
            assert arrow.retransmission == message.retransmission
            assert arrow.call_id == message.sip.call_id
            assert arrow.first_line == message.sip.first_line
            assert arrow.marked.startswith(arrow.label)


@pytest.mark.parametrize("full", [False, True])
def test_geometry_matches_what_the_terminal_draws(full: bool) -> None:
    for ladder in _ladders():
        geometry = ladder.geometry(full=full)  # type: ignore[attr-defined]

        def draw(rows: range | None = None, ladder: object = ladder) -> list[str]:
            lines = ladder_lines(ladder, width=120, plain=True, full=full, rows=rows)  # type: ignore[arg-type]
            return [t.plain for t in lines]

        whole = draw()
        head = len(whole) - geometry.total
        assert head > 0 and len(geometry.tops) == len(ladder.arrows)  # type: ignore[attr-defined]
        # Any window of lines: the rows it names, drawn alone, are those lines of the whole.
        for first in range(0, geometry.total, 3):
            rows = geometry.rows(first, 7)
            assert rows.start <= rows.stop
            drawn = draw(rows)
            start = geometry.tops[rows.start]
            assert drawn[head:] == whole[head + start : head + start + len(drawn) - head]
            assert start <= first < start + (len(drawn) - head)
        assert geometry.rows(0, 0) == range(0)
        assert geometry.rows(geometry.total, 3) == range(0)
        assert geometry.rows(-10, 5) == range(0)
        assert geometry.rows(-10, 11) == range(0, 1)


def test_each_hop_shows_its_transport() -> None:
    """Issue 17: the transport of each hop, beside its frame, in the terminal, SVG and HTML."""
    from sipflow.render import graphviz
    from sipflow.render.html import ladder_html

    for name, transport in (("tcp-call.pcap", "TCP"), ("proxy-call.pcap", "UDP")):
        (call,) = analyze([SAMPLES / name]).calls
        ladder = build_ladder(call)
        assert {arrow.transport for arrow in ladder.arrows} == {transport}
        text = [t.plain for t in ladder_lines(ladder, width=100, plain=True)]
        wheres = [line.split()[0] for line in text if line.lstrip().startswith(transport + " #")]
        assert len(wheres) == len(ladder.arrows)
        dot = graphviz.ladder_dot(ladder)
        assert dot.count(f"{transport} #") == len(ladder.arrows)
        page = ladder_html(ladder, "<svg></svg>")
        assert page.count(f" {transport}  ") >= len(ladder.arrows)


@pytest.mark.parametrize("plain", [True, False])
def test_nothing_is_cut_without_a_mark(plain: bool) -> None:
    """Issue 17: ``ladder --full`` at 80 columns cut the Via branch silently. A line's text
    that runs past the edge now ends with ``...`` (``…`` on a terminal)."""
    (call,) = analyze([SAMPLES / "proxy-call.pcap"]).calls
    ladder = build_ladder(call)
    more = "..." if plain else "…"
    drawn = [t.plain for t in ladder_lines(ladder, width=80, plain=plain, full=True)]
    assert all(len(line) <= 80 for line in drawn)
    shown = {line.strip() for line in drawn}
    cut = 0
    for arrow in ladder.arrows:
        for raw_line in arrow.raw_lines:
            if not raw_line.strip():
                continue
            if len("  " + raw_line) <= 80 - 22:
                assert any(raw_line.strip() in line for line in shown)
            else:
                cut += 1
                head = raw_line[: 80 - 22 - 2 - len(more)]
                assert any(line.startswith(head.strip()) and line.endswith(more) for line in shown), raw_line
    assert cut > 0  # the Via lines of this call are longer than 80 columns allow
