"""What ``sipflow check`` writes: its report (``sipflow.render.report``) in the format asked
for, the text one with the ``--plain`` ladder of each call that failed an expectation."""

from __future__ import annotations

import json

from sipflow.errors import UsageError
from sipflow.model.analysis import Analysis
from sipflow.render.ladder import build_ladder
from sipflow.render.plain import plain_ladder
from sipflow.render.report import CheckReport, github_lines, json_dict, junit_xml, text_lines

LADDER_WIDTH = 100
"""Width of the ladders in the text report."""


def document(report: CheckReport, fmt: str, analysis: Analysis, *, explain: bool = False) -> str:
    """The report as a document in format ``fmt``: text (the lines of ``styled_lines``), json,
    junit (JUnit XML) or github (GitHub Actions annotations)."""
    if fmt == "text":
        return "".join(line + "\n" for _, line in styled_lines(report, analysis, explain=explain))
    if fmt == "json":
        return json.dumps(json_dict(report), indent=2, ensure_ascii=True) + "\n"
    if fmt == "junit":
        return junit_xml(report)
    if fmt == "github":
        return "".join(line + "\n" for line in github_lines(report))
    raise UsageError(f"not a report document format: {fmt!r}")


def failed_ladders(report: CheckReport, analysis: Analysis, *, explain: bool = False) -> dict[int, list[str]]:
    """By call index, the ``--plain`` ladder of each call that failed an expectation; with
    ``explain``, its header shows the evidence that joins the call's legs."""
    ladders = {}
    for result in report.results:
        if not result.passed and result.call_index is not None:
            (call,) = analysis.select(index=result.call_index)
            ladders[result.call_index] = plain_ladder(build_ladder(call), width=LADDER_WIDTH, explain=explain)
    return ladders


def styled_lines(report: CheckReport, analysis: Analysis, *, explain: bool = False) -> list[tuple[str, str]]:
    """The text report as (style, line) pairs, with the ladders of the failed calls."""
    return text_lines(report, failed_ladders(report, analysis, explain=explain))
