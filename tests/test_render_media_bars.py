"""RTP streams drawn in the ladders (as sngrep's RTP rows): a bar per stream between its media
endpoints' columns, at the time of its first packet, labelled with codec, packets and loss.

On the public capture ``rtp_rtcp_sip_ipv4_udp.pcap``: call 1 offers media at 200.57.7.196:40376
(not a SIP endpoint: a column of its own, right of the others) and is answered with
200.57.7.204:8000 (drawn on the column of 200.57.7.204's SIP port); its two G.711 streams start
just before and just after the ACK.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import sipflow
from sipflow.capture.types import Endpoint
from sipflow.media.collector import RtpStream
from sipflow.media.rtp import StreamFigures
from sipflow.model.call import Call
from sipflow.model.media import streams_by_call
from sipflow.render import graphviz
from sipflow.render.html import ladder_html
from sipflow.render.ladder import Arrow, Ladder, MediaBar, bar_label, build_ladder
from sipflow.render.mermaid import ladder_mermaid
from sipflow.render.plantuml import ladder_plantuml
from sipflow.render.terminal import LadderView, ladder_lines

from .conftest import SAMPLES, SHARED_CAPTURES

CAPTURE = SHARED_CAPTURES / "rtp_rtcp_sip_ipv4_udp.pcap"
HOSTILE_CODEC = "<b>&\x1b[31m"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def call_and_media() -> tuple[Call, list[RtpStream]]:
    if not CAPTURE.exists():
        pytest.skip(f"{CAPTURE} missing")
    analysis = sipflow.analyze(CAPTURE, media=True)
    (call,) = analysis.select(index=1)
    return call, streams_by_call(analysis.calls, analysis.media).get(call.index, [])


@pytest.fixture(scope="module")
def ladder(call_and_media: tuple[Call, list[RtpStream]]) -> Ladder:
    call, media = call_and_media
    return build_ladder(call, media=media)


def _hostile(call_and_media: tuple[Call, list[RtpStream]]) -> Ladder:
    call, media = call_and_media
    return build_ladder(call, media=[dataclasses.replace(s, codecs=(HOSTILE_CODEC,)) for s in media])


def _plain(ladder: Ladder, width: int = 100) -> str:
    return "\n".join(t.plain for t in ladder_lines(ladder, width=width, plain=True))


# --- the layout ----------------------------------------------------------------------------------


def test_bars_join_the_media_endpoints_columns_in_time_order(ladder: Ladder) -> None:
    keys = [c.key for c in ladder.columns]
    assert keys == ["200.57.7.195:5060", "200.57.7.204:5061", "200.57.7.196:40376"]
    first, second = ladder.bars
    # 200.57.7.204:8000 is drawn on 200.57.7.204's SIP column; .196 had none: a new one.
    assert (first.src, first.dst) == (1, 2)
    assert (second.src, second.dst) == (2, 1)
    assert first.stream.src == Endpoint("200.57.7.204", 8000)
    assert first.first_time < second.first_time
    assert (first.first_frame, first.last_frame) == (first.stream.first_frame, first.stream.last_frame)
    assert first.label == "RTP PCMA 548 pkts 0.0% lost"
    assert second.label == "RTP pcma 891 pkts 0.0% lost"
    assert first.text == f"RTP PCMA 548 pkts 0.0% lost ({first.duration:.1f} s, until #{first.last_frame})"
    # The first starts after the 200 OK (arrow 3) and before the ACK (arrow 4); the second after it.
    assert (first.row, second.row) == (4, 5)
    labels = [e.label for e in ladder.entries]
    assert labels[3:] == ["200 Ok (SDP answer)", first.label, "ACK", second.label]
    for entry in ladder.entries:
        assert isinstance(entry, Arrow | MediaBar)
    times = [e.timestamp if isinstance(e, Arrow) else e.first_time for e in ladder.entries]
    assert times == sorted(times)


def test_the_sip_columns_and_arrows_do_not_move(
    call_and_media: tuple[Call, list[RtpStream]], ladder: Ladder
) -> None:
    bare = build_ladder(call_and_media[0])
    assert bare.bars == () and bare.entries == bare.arrows
    assert ladder.columns[: len(bare.columns)] == bare.columns
    assert ladder.arrows == bare.arrows


def test_by_host_keys_the_media_column_by_host(call_and_media: tuple[Call, list[RtpStream]]) -> None:
    call, media = call_and_media
    ladder = build_ladder(call, media=media, by_host=True)
    assert [c.key for c in ladder.columns] == ["200.57.7.195", "200.57.7.204", "200.57.7.196"]
    assert [(b.src, b.dst) for b in ladder.bars] == [(1, 2), (2, 1)]


def test_aliases_name_a_media_column(call_and_media: tuple[Call, list[RtpStream]]) -> None:
    call, media = call_and_media
    ladder = build_ladder(call, media=media, aliases={"200.57.7.196": "media server"})
    assert ladder.columns[2].title == "media server"
    assert "media server" in _plain(ladder, 120)


def test_loss_and_duplicates_in_the_label(call_and_media: tuple[Call, list[RtpStream]]) -> None:
    stream = call_and_media[1][0]
    figures = stream.figures
    lossy = dataclasses.replace(
        stream, figures=dataclasses.replace(figures, packets=500, expected=512, lost=12)
    )
    assert bar_label(lossy) == "RTP PCMA 500 pkts 2.3% lost"
    doubled = dataclasses.replace(stream, figures=dataclasses.replace(figures, packets=551, lost=-3))
    assert bar_label(doubled) == "RTP PCMA 551 pkts 3 dup"
    unnamed = dataclasses.replace(stream, codecs=(), figures=dataclasses.replace(figures, payload_types=()))
    assert bar_label(unnamed) == "RTP 548 pkts 0.0% lost"


def test_geometry_counts_the_bar_rows(ladder: Ladder) -> None:
    geometry = ladder.geometry()
    whole = ladder_lines(ladder, width=120, plain=True)
    head = len(whole) - geometry.total
    assert len(geometry.tops) == len(ladder.entries) == len(ladder.arrows) + len(ladder.bars)
    for first in range(0, geometry.total, 3):
        rows = geometry.rows(first, 5)
        part = [t.plain for t in ladder_lines(ladder, width=120, plain=True, rows=rows)[head:]]
        start = head + geometry.tops[rows.start]
        assert part == [t.plain for t in whole[start : start + len(part)]]


# --- the formats ---------------------------------------------------------------------------------


def test_terminal_draws_each_bar_with_its_direction(ladder: Ladder) -> None:
    text = _plain(ladder)
    lines = text.splitlines()
    first, second = ladder.bars
    assert any(first.text in line and line.startswith("17:58:11.445") for line in lines)
    assert any(second.label in line for line in lines)
    assert re.search(rf"#{first.first_frame} .*\|=+>\|", text)
    assert re.search(rf"#{second.first_frame} .*\|<=+\|", text)
    fancy = "\n".join(t.plain for t in ladder_lines(ladder, width=100))
    assert "═▶│" in fancy and "│◀═" in fancy
    # A bar's text is never cropped at the right edge: it moves left.
    assert all(len(line) <= 100 for line in lines if "RTP" in line)


def test_terminal_styles_come_from_text_objects(call_and_media: tuple[Call, list[RtpStream]]) -> None:
    from rich.console import Console

    console = Console(width=100, force_terminal=True, color_system="standard", record=True)
    console.print(LadderView(_hostile(call_and_media)))
    out = console.export_text(styles=True, clear=False)
    # The packet's ESC is replaced, so its "[31m" is shown, not obeyed; "<b>" is not markup:
    # the whole label is one magenta run.
    assert "\x1b[35mRTP <b>&\ufffd[31m 548 pkts 0.0% lost (24.1 s, until #3892)\x1b[0m" in out
    assert "RTP <b>&\ufffd[31m 548 pkts" in console.export_text()
    assert "\x1b" not in _plain(_hostile(call_and_media))


def test_svg_source_carries_the_bars(ladder: Ladder) -> None:
    dot = graphviz.ladder_dot(ladder)
    for k, bar in enumerate(ladder.bars):
        assert f'id="rtp-{k}"' in dot and f'label="{bar.text}\\n"' in dot
    assert 'tooltip="RTP"' in dot  # the key
    assert "msg-5" not in dot  # bars are not messages


def _svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def _system_graphviz() -> None:
    if shutil.which("neato") is None:
        if os.environ.get("SIPFLOW_REQUIRE_GRAPHVIZ"):
            pytest.fail("Graphviz is required here (SIPFLOW_REQUIRE_GRAPHVIZ is set) but not installed")
        pytest.skip("Graphviz not installed")


def test_svg_and_html_draw_the_bars(ladder: Ladder) -> None:
    _system_graphviz()
    svg = graphviz.ladder_svg(ladder, backend="system")
    texts = _svg_texts(svg)
    for bar in ladder.bars:
        assert bar.text in texts
    page = ladder_html(ladder, svg)
    assert page.count('data-msg="') == len(ladder.arrows)  # the message list is the messages
    assert "<h2>RTP streams</h2>" in page
    assert "200.57.7.204:5061 → 200.57.7.196:40376  RTP PCMA 548 pkts 0.0% lost" in page


def test_svg_escapes_a_hostile_codec(call_and_media: tuple[Call, list[RtpStream]]) -> None:
    hostile = _hostile(call_and_media)
    dot = graphviz.ladder_dot(hostile)
    assert "\x1b" not in dot and "<b>&amp;\ufffd[31m" in dot
    _system_graphviz()
    svg = graphviz.ladder_svg(hostile, backend="system")
    assert "<b>" not in svg and "\x1b" not in svg
    assert any("RTP <b>&\ufffd[31m 548 pkts" in t for t in _svg_texts(svg))  # shown as written
    page = ladder_html(hostile, svg)
    assert "<b>" not in page and "\x1b" not in page
    assert "RTP &lt;b&gt;&amp;\ufffd[31m 548 pkts" in page


def test_mermaid_notes_over_the_two_columns(ladder: Ladder) -> None:
    text = ladder_mermaid(ladder)
    assert "    Note over P1,P2: 17:58:11.445 ⇒ RTP PCMA 548 pkts 0.0#37; lost (" in text
    assert "    Note over P1,P2: 17:58:11.495 ⇐ RTP pcma 891 pkts 0.0#37; lost (" in text
    lines = text.splitlines()
    ack = next(i for i, line in enumerate(lines) if " ACK " in line)
    assert "RTP PCMA" in lines[ack - 1] and "RTP pcma" in lines[ack + 1]


def test_plantuml_bold_arrows(ladder: Ladder) -> None:
    text = ladder_plantuml(ladder)
    assert "P1 -[#8e3b96,bold]> P2 : 17:58:11.445 RTP PCMA 548 pkts 0.0&#37; lost (" in text
    assert "P2 -[#8e3b96,bold]> P1 : 17:58:11.495 RTP pcma 891 pkts 0.0&#37; lost (" in text


def test_text_formats_escape_a_hostile_codec(call_and_media: tuple[Call, list[RtpStream]]) -> None:
    hostile = _hostile(call_and_media)
    mermaid = ladder_mermaid(hostile)
    assert "RTP #60;b#62;#38;\ufffd[31m 548 pkts" in mermaid
    plantuml = ladder_plantuml(hostile)
    assert "RTP <U+003C>b<U+003E>&#38;&#65533;[31m 548 pkts" in plantuml
    for text in (mermaid, plantuml):
        assert "<b>" not in text and "\x1b" not in text and "&\x1b" not in text


def test_plantuml_renders_the_bars(ladder: Ladder, tmp_path: Path) -> None:
    plantuml = shutil.which("plantuml")
    if plantuml is None:
        if os.environ.get("SIPFLOW_REQUIRE_PLANTUML"):
            pytest.fail("plantuml is required here (SIPFLOW_REQUIRE_PLANTUML is set) but not on PATH")
        pytest.skip("plantuml not installed")
    (tmp_path / "bars.puml").write_text(ladder_plantuml(ladder), encoding="utf-8")
    result = subprocess.run(
        [plantuml, "-tsvg", "-charset", "UTF-8", "-failfast2", str(tmp_path / "bars.puml")],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, JAVA_TOOL_OPTIONS="-Djava.awt.headless=true"),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    svg = (tmp_path / "bars.svg").read_text(encoding="utf-8")
    assert "Syntax Error" not in svg
    assert "RTP PCMA 548 pkts 0.0% lost" in svg


# --- without media, nothing changes --------------------------------------------------------------


def test_no_media_draws_what_it_drew(call_and_media: tuple[Call, list[RtpStream]]) -> None:
    """The golden files pin the samples' outputs; here: no streams, the same bytes."""
    call = call_and_media[0]
    bare, empty = build_ladder(call), build_ladder(call, media=())
    assert empty.bars == ()
    assert _plain(bare) == _plain(empty)
    assert "RTP" not in _plain(bare)
    for render in (graphviz.ladder_dot, ladder_mermaid, ladder_plantuml):
        assert render(bare) == render(empty)
        assert "RTP" not in render(bare).replace("rtp_rtcp", "")


# --- columns shared by a host --------------------------------------------------------------------


def _stream(src: Endpoint, dst: Endpoint, first_time: float, **figures: object) -> RtpStream:
    values: dict[str, object] = {
        "packets": 50,
        "expected": 50,
        "lost": 0,
        "sequence_errors": 0,
        "min_delta_ms": 20.0,
        "mean_delta_ms": 20.0,
        "max_delta_ms": 20.0,
        "min_jitter_ms": 0.0,
        "mean_jitter_ms": 0.0,
        "max_jitter_ms": 0.0,
        "clock_rate": 8000,
        "payload_types": (0,),
    } | figures
    return RtpStream(
        src=src,
        dst=dst,
        ssrc=1,
        first_frame=100,
        last_frame=149,
        first_time=first_time,
        last_time=first_time + 1.0,
        figures=StreamFigures(**values),  # type: ignore[arg-type]
        codecs=("PCMU",),
    )


def test_of_two_columns_on_a_host_a_stream_takes_the_one_whose_sdp_described_it() -> None:
    """ipv6-call: both UAs on ::1 (ports 5061 and 5060); the offer (from 5061) says ::1 port
    6010, the answer (from 5060) port 6000."""
    (call,) = sipflow.analyze([SAMPLES / "ipv6-call.pcap"]).calls
    start = call.messages[-1].timestamp + 0.5
    media = [
        _stream(Endpoint("::1", 6000), Endpoint("::1", 6010), start),
        _stream(Endpoint("::1", 6010), Endpoint("::1", 6000), start + 0.01),
        _stream(Endpoint("::1", 7000), Endpoint("::1", 6010), start + 0.02),  # described by none
    ]
    ladder = build_ladder(call, media=media)
    assert [c.key for c in ladder.columns] == ["[::1]:5061", "[::1]:5060"]
    assert [(b.src, b.dst) for b in ladder.bars] == [(1, 0), (0, 1), (0, 0)]
    assert all(b.row == len(ladder.arrows) for b in ladder.bars)
    text = _plain(ladder)
    assert "|<====" in text and "====>|" in text and "|=@" in text  # the last one: a loop
    assert text.count("RTP PCMU 50 pkts 0.0% lost (1.0 s, until #149)") == 3


def test_mermaid_parses_and_renders_the_bars(
    call_and_media: tuple[Call, list[RtpStream]], ladder: Ladder, tmp_path: Path
) -> None:
    """With ``SIPFLOW_MERMAID`` naming a folder where ``npm install mermaid jsdom`` was run."""
    import json

    from .test_render_text_formats import _MERMAID_JS

    folder = os.environ.get("SIPFLOW_MERMAID")
    node = shutil.which("node")
    if not folder or node is None:
        pytest.skip("set SIPFLOW_MERMAID to a folder with mermaid and jsdom installed by npm (needs node)")
    files = {"bars": ladder, "hostile": _hostile(call_and_media)}
    for name, each in files.items():
        (tmp_path / f"{name}.mmd").write_text(ladder_mermaid(each), encoding="utf-8")
    (tmp_path / "check.mjs").write_text(_MERMAID_JS)
    result = subprocess.run(
        [node, str(tmp_path / "check.mjs"), *(str(tmp_path / f"{name}.mmd") for name in files)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, SIPFLOW_MERMAID=str(Path(folder).resolve())),
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    svgs = json.loads(result.stdout)
    bars = svgs[str(tmp_path / "bars.mmd")]
    assert "⇒ RTP PCMA 548 pkts 0.0% lost (24.1 s, until #3892) #499" in bars
    hostile = svgs[str(tmp_path / "hostile.mmd")]
    assert "<b>" not in hostile and "RTP &lt;b&gt;&amp;\ufffd[31m 548 pkts" in hostile


def test_ladder_and_export_media_options(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sipflow.cli import main

    if not CAPTURE.is_file():
        pytest.skip(f"{CAPTURE} not available")
    runner = CliRunner()
    plain = runner.invoke(main, ["ladder", str(CAPTURE), "--call", "1", "--plain", "--width", "100"])
    with_media = runner.invoke(
        main, ["ladder", str(CAPTURE), "--call", "1", "--plain", "--width", "100", "--media"]
    )
    assert plain.exit_code == with_media.exit_code == 0
    assert "RTP PCMA 548 pkts 0.0% lost" not in plain.output
    assert "RTP PCMA 548 pkts 0.0% lost" in with_media.output
    assert "===>" in with_media.output
    out = tmp_path / "c1.mmd"
    assert (
        runner.invoke(main, ["export", str(CAPTURE), "--call", "1", "--media", "-o", str(out)]).exit_code == 0
    )
    assert "RTP PCMA 548 pkts" in out.read_text()
