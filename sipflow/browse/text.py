"""The texts ``sipflow browse`` shows besides the ladder, as rich ``Text`` built from plain
strings (packet text is never read as markup): a message in full, a call's correlation
evidence, its ``check`` findings, the key list."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from sipflow.checks.finding import Finding, Severity
from sipflow.model.call import Call
from sipflow.render.ladder import Arrow
from sipflow.render.terminal import explain_lines
from sipflow.render.text import clean, clock

_CLASS_STYLES = {"request": "bold cyan", "1xx": "bold yellow", "2xx": "bold green", "failure": "bold red"}
_SEVERITY_STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "dim"}


def message_text(arrow: Arrow) -> Text:
    """The message of ``arrow`` in full: where and when, its start line, header names set
    apart from their values, the body (SDP) dimmed, and the SDP in one line."""
    m = arrow.message
    out = Text()
    out.append(f"{arrow.where}  {clock(m.timestamp)}  {m.src} -> {m.dst}", style="dim")
    if arrow.marks:
        out.append("  (" + ", ".join(arrow.marks) + ")", style="yellow")
    out.append("\n")
    lines = arrow.raw_lines
    in_body = False
    for i, line in enumerate(lines):
        if i == 0:
            out.append(line, style=_CLASS_STYLES.get(arrow.cls.value, "bold"))
        elif in_body:
            out.append(line, style="green" if len(line) > 1 and line[1] == "=" else "")
        elif not line:
            in_body = True
        else:
            name, colon, value = line.partition(":")
            if colon:
                out.append(name, style="bold blue")
                out.append(colon + value)
            else:
                out.append(line, style="red")
        out.append("\n")
    if arrow.sdp:
        out.append("SDP: ", style="bold")
        out.append(arrow.sdp)
        out.append("\n")
    out.rstrip()
    return out


def evidence_text(call: Call) -> Text:
    """Per leg its Call-ID and path, and per link between legs how it was found."""
    lines = explain_lines(call)
    if not call.correlation:
        lines.append(Text("  one leg: nothing to correlate" if len(call.legs) == 1 else "  no links"))
    return Text("\n").join(lines)


def findings_text(findings: Iterable[Finding]) -> Text:
    """Each finding on a line: severity, rule id, message, and the explanation under it."""
    out = Text()
    for finding in findings:
        out.append(f"{finding.severity.value:<8}", style=_SEVERITY_STYLES.get(finding.severity, ""))
        out.append(f"{clean(finding.rule, 60)}  ", style="bold")
        out.append(clean(finding.message))
        out.append("\n")
        out.append("        " + clean(finding.explanation), style="dim")
        out.append("\n")
    if not out:
        out.append("No findings: every built-in check passes for this call.")
    out.rstrip()
    return out


def keys_text(keys: Iterable[tuple[str, str]]) -> Text:
    """The key list of ``?``: each key and what it does."""
    out = Text()
    for key, what in keys:
        out.append(f"{key:>14}  ", style="bold")
        out.append(what + "\n")
    out.rstrip()
    return out
