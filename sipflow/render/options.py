"""What to show and how, as frozen data: which items of an analysis (``Selection``, the
arguments of ``Analysis.select``), how their ladders are laid out (``LayoutOptions``, those of
``build_ladder``) and how the output looks (``OutputOptions``). The command line builds them
from its options; any other front end (a browser, a report) can build them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from sipflow.model.analysis import Analysis
from sipflow.model.call import Call
from sipflow.render.ladder import Ladder, build_ladder
from sipflow.render.listing import no_call_line

if TYPE_CHECKING:
    from sipflow.media.collector import RtpStream


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """Which items to show: the keyword arguments of ``Analysis.select``."""

    all_kinds: bool = False
    """Registrations, subscriptions, OPTIONS, MESSAGE and other Call-IDs too (``--all``)."""
    call_id: str | None = None
    """The item with this Call-ID (on any of its legs), whatever its kind."""
    from_: str | None = None
    """From URI, user or display name contains this (case-insensitive)."""
    to: str | None = None
    """To URI, user or display name contains this (case-insensitive)."""
    state: tuple[str, ...] = ()
    """Items in one of these states (``CallState`` values); none: any state."""
    index: int | None = None
    """The item numbered so (``--call N``)."""
    since: float | None = None
    """Items that started at this time (epoch seconds) or later (``--since``)."""
    until: float | None = None
    """Items that started before this time (``--until``)."""
    status: str | None = None
    """Final status code, or class (``4xx``): ``--status``."""
    headers: tuple[tuple[str, str], ...] = ()
    """(header name, text): a message of the item has the header, its value containing the
    text, case-insensitive (``--header NAME=TEXT``, all must hold)."""

    @property
    def names_one(self) -> bool:
        """By number or by Call-ID: one item, whatever its kind."""
        return self.index is not None or self.call_id is not None

    def apply(self, analysis: Analysis) -> list[Call]:
        return analysis.select(**{f.name: getattr(self, f.name) for f in fields(self)})

    def no_match_line(self, analysis: Analysis) -> str:
        """What to say when ``apply`` selects nothing: which other items ``--all`` would show."""
        others = []
        if not self.all_kinds and not self.names_one:
            others = analysis.select(
                all_kinds=True, from_=self.from_, to=self.to, state=self.state, since=self.since,
                until=self.until, status=self.status, headers=self.headers,
            )  # fmt: skip
        filtered = (
            self.from_ is not None or self.to is not None or bool(self.state) or self.since is not None
            or self.until is not None or self.status is not None or bool(self.headers)
        )  # fmt: skip
        return no_call_line(analysis, others, filtered=filtered)


@dataclass(frozen=True, slots=True, kw_only=True)
class LayoutOptions:
    """How a call's ladder is laid out: the keyword arguments of ``build_ladder``."""

    aliases: tuple[tuple[str, str], ...] = ()
    """(IP or IP:port, the name of its column)."""
    by_host: bool = False
    """One column per IP address instead of one per IP:port."""

    def ladder(self, call: Call, media: Sequence[RtpStream] = ()) -> Ladder:
        """The call's ladder; with ``media`` (its streams), a bar for each."""
        return build_ladder(call, aliases=dict(self.aliases), by_host=self.by_host, media=media)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputOptions:
    """How the output looks."""

    color: str = "auto"
    """Styles on a terminal only (auto), always or never."""
    explain: bool = False
    """Per correlated call, its legs and the evidence for each link."""
