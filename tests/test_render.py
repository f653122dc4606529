"""Renderer layout on literal calls: widths, legends, marks, escaping."""

from __future__ import annotations

import re

from sipflow.capture.types import Endpoint
from sipflow.model.call import Call, build_call
from sipflow.render.ladder import ArrowClass, build_ladder
from sipflow.render.terminal import ladder_lines
from sipflow.render.text import clean, csv_cell
from tests.sipmsg import Feeder, request, response

HOPS = [Endpoint(f"192.0.2.{i}", 5060) for i in range(1, 6)]


def chain_call(n: int) -> Call:
    """An INVITE relayed along ``n`` endpoints and answered back, plus one retransmission."""
    feed = Feeder()
    t = 0.0
    invites = []
    for i in range(n - 1):
        vias = tuple(str(HOPS[j]) for j in range(i, -1, -1))
        inv = request("INVITE", vias=vias, branches=tuple(f"z9hG4bK-{j}" for j in range(i, -1, -1)))
        feed(t, HOPS[i], HOPS[i + 1], inv)
        invites.append(inv)
        t += 0.01
    feed(t, HOPS[0], HOPS[1], invites[0])  # retransmission on the first hop
    for i in range(n - 2, -1, -1):
        t += 0.01
        feed(t, HOPS[i + 1], HOPS[i], response(invites[i], 180, "Ringing", to_tag="t", vias=i + 1))
    (leg,) = feed.tracker.finish().legs
    return build_call(1, (leg,))


def test_three_endpoints_fit_80_columns_without_legend() -> None:
    lines = [t.plain for t in ladder_lines(build_ladder(chain_call(3)), width=80, plain=True)]
    assert all(len(line) <= 80 for line in lines)
    assert not any(line.startswith("  A = ") for line in lines)
    header = next(line for line in lines if line.startswith("time (UTC)"))
    assert "192.0.2.1:5060" in header and "192.0.2.3:5060" in header


def test_five_endpoints_use_a_legend_and_stay_within_80_columns() -> None:
    lines = [t.plain for t in ladder_lines(build_ladder(chain_call(5)), width=80, plain=True)]
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    legend = [line for line in lines if line.startswith("  ") and " = 192.0.2." in line]
    assert [line.split()[0] for line in legend] == ["A", "B", "C", "D", "E"]


def test_arrows_point_the_right_way_and_retransmissions_are_marked() -> None:
    ladder = build_ladder(chain_call(3))
    lines = [t.plain for t in ladder_lines(ladder, width=100, plain=True)]
    arrows = [line for line in lines if re.search(r"\|[-.<]", line)]
    assert arrows[0].rstrip().endswith("|") and "-->|" in arrows[0]
    retrans = [a for a in ladder.arrows if a.message.retransmission]
    assert len(retrans) == 1
    assert any("INVITE (retransmission)" in line for line in lines)
    assert any("....>" in line for line in lines)  # dashed
    assert any("|<---" in line for line in lines)
    assert {a.cls for a in ladder.arrows} == {ArrowClass.REQUEST, ArrowClass.PROVISIONAL}


def test_aliases_and_by_host() -> None:
    call = chain_call(3)
    ladder = build_ladder(call, aliases={"192.0.2.2": "proxy", "192.0.2.3:5060": "bob"})
    assert [c.title for c in ladder.columns] == ["192.0.2.1:5060", "proxy", "bob"]
    assert [c.key for c in build_ladder(call, by_host=True).columns] == [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
    ]


def test_clean_strips_controls_and_bidi_and_cuts() -> None:
    assert clean("a\x1b[31mb\x07c\u202ed\x9b") == "a\ufffd[31mb\ufffdc\ufffdd\ufffd"
    assert clean("tab\there") == "tab here"
    assert clean("x" * 10, 5) == "xxxx…"


def test_csv_cell_neutralises_formulas() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1"):
        assert csv_cell(text).startswith("'")
    assert csv_cell("sip:alice@example.com") == "sip:alice@example.com"
