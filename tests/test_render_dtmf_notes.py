"""DTMF digits as notes in the ladder and every export (issue 14): on samples/media-dtmf.pcap
alice sends 1, 5, # as RFC 4733 events in her audio stream and 7 as SIP INFO."""

from __future__ import annotations

import dataclasses
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

import sipflow
from sipflow.media.dtmf import DtmfDigit
from sipflow.model.media import streams_by_call
from sipflow.render import graphviz
from sipflow.render.html import ladder_html
from sipflow.render.ladder import DtmfNote, Ladder, MediaBar, build_ladder, note_label
from sipflow.render.mermaid import ladder_mermaid
from sipflow.render.plantuml import ladder_plantuml
from sipflow.render.terminal import ladder_lines

from .conftest import SAMPLES

LABELS = [
    "DTMF 1 (RFC 4733, 280 ms)",
    "DTMF 5 (RFC 4733, 280 ms)",
    "DTMF # (RFC 4733, 280 ms)",
    "DTMF 7 (SIP INFO, 160 ms)",
]


@pytest.fixture(scope="module")
def ladder() -> Ladder:
    path = SAMPLES / "media-dtmf.pcap"
    if not path.is_file():
        pytest.skip(f"{path} missing (samples/make-media-samples.sh makes it)")
    analysis = sipflow.analyze(path, media=True)
    (call,) = analysis.calls
    return build_ladder(call, media=streams_by_call(analysis.calls, analysis.media)[call.index])


def test_notes_on_the_senders_column_in_time_order(ladder: Ladder) -> None:
    assert [n.label for n in ladder.notes] == LABELS
    assert {n.col for n in ladder.notes} == {0}  # alice: the caller's column
    assert [n.first_time for n in ladder.notes] == sorted(n.first_time for n in ladder.notes)
    entries = ladder.entries
    kinds = [type(e).__name__ for e in entries]
    # After the two bars come the three events, then the INFO with its own note after it.
    first_note = kinds.index("DtmfNote")
    assert kinds[first_note - 2 : first_note] == ["MediaBar", "MediaBar"]
    arrows = [i for i, e in enumerate(entries) if not isinstance(e, (MediaBar, DtmfNote))]
    info = next(i for i in arrows if "INFO" in entries[i].label)
    assert kinds[first_note : first_note + 3] == ["DtmfNote"] * 3 and info == first_note + 3
    after = entries[info + 1]
    assert isinstance(after, DtmfNote) and after.first_frame == entries[info].message.frame  # type: ignore[union-attr]
    # Each note's delta: from the row drawn before it.
    assert entries[first_note + 1].delta == pytest.approx(0.5, abs=0.01)
    assert entries[info + 1].delta == 0.0


def test_terminal_lines(ladder: Ladder) -> None:
    text = [t.plain for t in ladder_lines(ladder, width=100, plain=True)]
    marked = [line for line in text if "DTMF" in line and "dtmf-relay" not in line]
    assert [re.sub(r".*\* ", "", line).split("  ")[0] for line in marked] == [
        f"{label} #{n.first_frame}" for label, n in zip(LABELS, ladder.notes, strict=True)
    ]
    # The geometry counts one line per note: a window of rows draws exactly its lines.
    geometry = ladder.geometry()
    head = len(text) - geometry.total
    for first in range(0, geometry.total, 2):
        rows = geometry.rows(first, 5)
        drawn = [t.plain for t in ladder_lines(ladder, width=100, plain=True, rows=rows)]
        start = geometry.tops[rows.start]
        assert drawn[head:] == text[head + start : head + start + len(drawn) - head]


def test_svg_mermaid_plantuml_html(ladder: Ladder) -> None:
    dot = graphviz.ladder_dot(ladder)
    assert dot.count('class="dtmf"') == 2 * len(LABELS)  # the mark and the label of each
    assert all(f'id="dtmf-{k}"' in dot for k in range(len(LABELS)))
    if shutil.which("neato") is not None:
        root = ET.fromstring(graphviz.ladder_svg(ladder, backend="system"))
        texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
        assert all(label in texts for label in LABELS)
    mermaid = ladder_mermaid(ladder)
    notes = [line for line in mermaid.splitlines() if "DTMF" in line and "Note right of P0" in line]
    assert len(notes) == 4 and "DTMF #35; (RFC 4733" in notes[2]
    plantuml = ladder_plantuml(ladder)
    assert len([line for line in plantuml.splitlines() if line.startswith("hnote over P0 ")]) == 4
    page = ladder_html(ladder, "<svg></svg>")
    section = page[page.index("<h2>DTMF</h2>") :]
    assert section.count("<li>") >= 4 and "DTMF # (RFC 4733, 280 ms)" in section


def test_without_media_no_notes(ladder: Ladder) -> None:
    bare = build_ladder(ladder.call)
    assert bare.notes == () and bare.entries == bare.arrows


def test_a_hostile_info_digit_is_not_markup(ladder: Ladder) -> None:
    # Digits come from a fixed set (dtmf_from_info, RFC 4733's table), but the label is
    # escaped for each format all the same: a digit with markup must come out inert.
    note = ladder.notes[0]
    digit = dataclasses.replace(note.digit, digit='<b>&"]\x1b[31m')
    hostile = dataclasses.replace(ladder, notes=(dataclasses.replace(note, label=note_label(digit)),))
    assert "\x1b" not in hostile.notes[0].label
    dot = graphviz.ladder_dot(hostile)
    assert "\x1b" not in dot and "DTMF <b>&amp;" in dot  # a quoted DOT string: shown as written
    if shutil.which("neato") is not None:
        svg = graphviz.ladder_svg(hostile, backend="system")
        assert "<b>" not in svg and "\x1b" not in svg
    page = ladder_html(hostile, "<svg></svg>")
    assert "<b>" not in page and "DTMF &lt;b&gt;&amp;" in page
    for text in (ladder_mermaid(hostile), ladder_plantuml(hostile)):
        assert "<b>" not in text and "\x1b" not in text


def test_note_label() -> None:
    assert note_label(DtmfDigit(digit="5", frame=1, time=0.0, duration_ms=None, source="rfc4733")) == (
        "DTMF 5 (RFC 4733)"
    )
    assert note_label(DtmfDigit(digit="*", frame=1, time=0.0, duration_ms=99.6, source="info")) == (
        "DTMF * (SIP INFO, 100 ms)"
    )
