"""``sipflow browse``: an interactive call list and call flow in the terminal (Textual).

``BrowseApp`` reads the captures in a background thread, showing the calls as they are
found; Enter opens a call's ladder, with each message's full text beside it. The filtering
and sorting of the list (``sipflow.browse.listing``) and the texts shown (``sipflow.browse.text``)
are plain functions of the model, usable and tested without a terminal.
"""

from __future__ import annotations

__all__ = ["BrowseApp"]


def __getattr__(name: str) -> object:
    # Textual is imported only by the app itself: the listing helpers do not need it.
    if name == "BrowseApp":
        from sipflow.browse.app import BrowseApp  # noqa: PLC0415

        return BrowseApp
    raise AttributeError(name)
