"""Writing an export to a file: ``sipflow export`` and ``browse``'s write key both call it.

The renderers (``sipflow.render``) make text and bytes from the model; this module puts them in
a file, and copies the calls' frames out of their captures for pcap (``capture.writer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sipflow.media.collector import RtpStream
from sipflow.model.analysis import Analysis
from sipflow.model.call import Call
from sipflow.render.export import diagram, frames
from sipflow.render.options import LayoutOptions


def write_export(
    analysis: Analysis, calls: Sequence[Call], fmt: str, out: Path, layout: LayoutOptions
) -> None:
    """Write ``calls`` of ``analysis`` to the file ``out`` in format ``fmt`` (one of
    ``EXPORT_FORMATS``): a diagram (one call), JSON with every message, or their frames."""
    if fmt == "json":
        from sipflow.render import json as json_render  # noqa: PLC0415

        with out.open("w", encoding="utf-8") as stream:
            stream.writelines(json_render.iter_dumps(analysis, calls, indent=2, with_flow=True))
            stream.write("\n")
    elif fmt in ("pcap", "pcapng"):
        # pcap when every frame has one link type, else pcapng (tshark and sipflow read both by content)
        from sipflow.capture.writer import write_frames  # noqa: PLC0415

        write_frames(frames(calls), out)
    else:
        (call,) = calls
        media: tuple[RtpStream, ...] = ()
        if analysis.media:
            from sipflow.model.media import streams_by_call  # noqa: PLC0415

            media = tuple(streams_by_call(analysis.calls, analysis.media).get(call.index, ()))
        out.write_bytes(diagram(fmt, layout.ladder(call, media)))
