"""CSV export of the calls table; cells are protected against formula injection."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from sipflow.model.call import Call
from sipflow.render.text import csv_cell, iso

COLUMNS = (
    "index", "start", "kind", "from", "to", "state", "final_status",
    "pdd_ms", "setup_ms", "duration_s", "messages", "retransmissions", "call_ids",
)  # fmt: skip


def _num(value: float | int | None) -> str:
    return "" if value is None else str(value)


def dumps(calls: Iterable[Call]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for call in calls:
        writer.writerow(
            [
                call.index,
                iso(call.start),
                call.kind.value,
                csv_cell(call.from_.uri.raw if call.from_ else ""),
                csv_cell(call.to.uri.raw if call.to else ""),
                call.state.value,
                _num(call.final_status),
                _num(call.pdd_ms),
                _num(call.setup_ms),
                _num(call.duration_s),
                len(call.messages),
                call.retransmissions,
                csv_cell(" ".join(call.call_ids)),
            ]
        )
    return out.getvalue()
