"""A call's ladder as plain ASCII lines, without colour: ``sipflow ladder --plain`` (golden
files, CI logs) and the ladders in ``sipflow check``'s text report."""

from __future__ import annotations

from sipflow.render.ladder import Ladder
from sipflow.render.terminal import ladder_lines

DEFAULT_WIDTH = 80


def plain_ladder(
    layout: Ladder, *, width: int = DEFAULT_WIDTH, full: bool = False, explain: bool = False
) -> list[str]:
    """The lines of the ladder of ``layout``, ``width`` columns wide; ``full``: each message's
    text under its arrow; ``explain``: the evidence that joins the call's legs in its header."""
    return [t.plain for t in ladder_lines(layout, width=width, plain=True, full=full, explain=explain)]
