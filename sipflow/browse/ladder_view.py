"""A scrolling ladder for Textual: the terminal ladder's lines, one message selected.

The lines are those of ``sipflow.render.terminal.ladder_lines`` (the same drawing as
``sipflow ladder``), made again when the width changes; only the lines in view are drawn.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from sipflow.render.ladder import Arrow, Ladder
from sipflow.render.terminal import ladder_lines

_SELECTED: Style = Style(reverse=True)


def without_retransmissions(ladder: Ladder) -> Ladder:
    """The ladder without the arrows of retransmissions; the media bars and DTMF notes keep
    their places among the arrows that remain."""
    kept = [i for i, a in enumerate(ladder.arrows) if not a.retransmission]
    if len(kept) == len(ladder.arrows):
        return ladder
    before = [0] * (len(ladder.arrows) + 1)  # arrows kept before each row
    for i, arrow in enumerate(ladder.arrows):
        before[i + 1] = before[i] + (0 if arrow.retransmission else 1)
    return replace(
        ladder,
        arrows=tuple(ladder.arrows[i] for i in kept),
        bars=tuple(replace(b, row=before[min(b.row, len(ladder.arrows))]) for b in ladder.bars),
        notes=tuple(replace(n, row=before[min(n.row, len(ladder.arrows))]) for n in ladder.notes),
    )


class LadderView(ScrollView, can_focus=True):
    """The ladder of one call with a selected message (``selected``: its index in the
    ladder's arrows), which the arrow keys move and the view follows."""

    DEFAULT_CSS = """
    LadderView { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "cursor_down", "Next", show=False),
        Binding("up,k", "cursor_up", "Previous", show=False),
        Binding("pagedown", "page_down", show=False),
        Binding("pageup", "page_up", show=False),
        Binding("home", "first", show=False),
        Binding("end", "last", show=False),
    ]

    class Selected(Message):
        """The selected message changed."""

        def __init__(self, arrow: Arrow | None) -> None:
            super().__init__()
            self.arrow = arrow

    def __init__(self, ladder: Ladder, *, since: float | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ladder = ladder
        self.since = since
        self.selected = 0 if ladder.arrows else -1
        self._lines: list[Text] = []
        self._spans: list[tuple[int, int]] = []
        """The lines (first, count) of each arrow."""
        self._width = 0

    # --- what is shown ---------------------------------------------------------------------

    def show(self, ladder: Ladder, *, since: float | None, keep: Arrow | None = None) -> None:
        """Draw another ladder of the call (retransmissions or time shown otherwise), with
        the message of ``keep`` still selected where it is in it."""
        self.ladder, self.since = ladder, since
        index = next(
            (i for i, a in enumerate(ladder.arrows) if keep is not None and a.message is keep.message), None
        )
        if index is None and keep is not None:
            # Its arrow is hidden: the nearest message before it that is shown.
            earlier = [i for i, a in enumerate(ladder.arrows) if a.message.index <= keep.message.index]
            index = earlier[-1] if earlier else 0
        self.selected = index if index is not None and ladder.arrows else (0 if ladder.arrows else -1)
        self._layout(force=True)
        self._follow()
        self.post_message(self.Selected(self.arrow))

    @property
    def arrow(self) -> Arrow | None:
        return self.ladder.arrows[self.selected] if 0 <= self.selected < len(self.ladder.arrows) else None

    def _layout(self, *, force: bool = False) -> None:
        width = max(self.size.width, 40)
        if not force and width == self._width and self._lines:
            return
        self._width = width
        ladder = self.ladder
        head = ladder_lines(ladder, width=width, rows=[], since=self.since)
        self._lines = ladder_lines(ladder, width=width, since=self.since)
        entries = ladder.entries
        geometry = ladder.geometry()
        spans = []
        for k, entry in enumerate(entries):
            if isinstance(entry, Arrow):
                spans.append((len(head) + geometry.tops[k], entry.height()))
        self._spans = spans
        self.virtual_size = Size(
            max((line.cell_len for line in self._lines), default=width), len(self._lines)
        )
        self.refresh()

    def on_resize(self) -> None:
        self._layout()
        self._follow()

    def on_mount(self) -> None:
        self._layout(force=True)
        self.post_message(self.Selected(self.arrow))

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = y + scroll_y
        if index >= len(self._lines):
            return Strip.blank(self.size.width)
        line = self._lines[index]
        segments = list(line.render(self.app.console))
        first, count = self._spans[self.selected] if 0 <= self.selected < len(self._spans) else (-1, 0)
        if first <= index < first + count:
            segments = [Segment(s.text, (s.style or Style()) + _SELECTED, s.control) for s in segments]
        strip = Strip(segments)
        return strip.crop_extend(scroll_x, scroll_x + self.size.width, self.rich_style)

    # --- moving ----------------------------------------------------------------------------

    def _follow(self) -> None:
        if 0 <= self.selected < len(self._spans):
            first, count = self._spans[self.selected]
            # The lines above the first arrow (heading, column heads) come into view at the top.
            top = 0 if self.selected == 0 else first
            self.scroll_to_region(Region(0, top, 1, first + count - top), animate=False)

    def select(self, index: int) -> None:
        if not self.ladder.arrows:
            return
        index = max(0, min(index, len(self.ladder.arrows) - 1))
        if index != self.selected:
            self.selected = index
            self.refresh()
        self._follow()
        self.post_message(self.Selected(self.arrow))

    def action_cursor_down(self) -> None:
        self.select(self.selected + 1)

    def action_cursor_up(self) -> None:
        self.select(self.selected - 1)

    def action_page_down(self) -> None:
        self.select(self.selected + max(1, self.size.height // 3))

    def action_page_up(self) -> None:
        self.select(self.selected - max(1, self.size.height // 3))

    def action_first(self) -> None:
        self.select(0)

    def action_last(self) -> None:
        self.select(len(self.ladder.arrows) - 1)
