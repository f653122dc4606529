"""What ``sipflow export`` writes, by format name: one call's ladder as a diagram (Graphviz
SVG, PNG, PDF or DOT, Mermaid, PlantUML, HTML), JSON, or the calls' frames as a pcap. Each
diagram renderer is imported on use: graphviz is heavy, and only ``export`` needs any of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from sipflow.errors import UsageError
from sipflow.model.call import Call
from sipflow.render.ladder import Ladder

DIAGRAM_FORMATS = ("svg", "png", "pdf", "dot", "mmd", "puml", "html")
"""The formats ``diagram`` writes (one call per file)."""
EXPORT_FORMATS = (*DIAGRAM_FORMATS, "json", "pcap", "pcapng")
"""Every format of ``sipflow export``: the diagrams, JSON (any number of calls), pcap or pcapng
(the frames of any number of calls, ``frames``)."""


def frames(calls: Iterable[Call]) -> dict[str, set[int]]:
    """By file, the frame numbers of the calls' messages (every capture of each)."""
    out: dict[str, set[int]] = {}
    for call in calls:
        for message in call.messages:
            out.setdefault(message.file, set()).update(message.frames)
    return out


def diagram(fmt: str, layout: Ladder) -> bytes:
    """``layout`` in format ``fmt`` (one of ``DIAGRAM_FORMATS``), as the bytes of its file."""
    if fmt == "mmd":
        from sipflow.render.mermaid import ladder_mermaid  # noqa: PLC0415

        return ladder_mermaid(layout).encode()
    if fmt == "puml":
        from sipflow.render.plantuml import ladder_plantuml  # noqa: PLC0415

        return ladder_plantuml(layout).encode()
    if fmt not in DIAGRAM_FORMATS:
        raise UsageError(f"not a diagram format: {fmt!r}")
    from sipflow.render import graphviz  # noqa: PLC0415

    if fmt == "dot":
        return graphviz.ladder_dot(layout).encode()
    if fmt == "html":
        from sipflow.render.html import ladder_html  # noqa: PLC0415

        # The page's header says who called whom: the diagram does not say it again.
        return ladder_html(layout, graphviz.ladder_svg(layout, headline=False)).encode()
    return graphviz.render(graphviz.ladder_dot(layout), fmt)
