"""Reports of ``sipflow check``: text, JSON, JUnit XML and GitHub Actions annotations.

Pure functions of the findings and expectation results; every packet-derived text was
cleaned by the checks and is escaped here for its format (XML, workflow commands, JSON).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any
from xml.etree import ElementTree as ET

from sipflow.checks.expect import ExpectationResult
from sipflow.checks.finding import Finding, Severity
from sipflow.checks.rules import Rule
from sipflow.render.listing import plural
from sipflow.render.text import clean


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckReport:
    """Everything a report shows."""

    files: tuple[str, ...]
    rules: tuple[Rule, ...]
    """The rules that ran (disabled ones left out)."""
    findings: tuple[Finding, ...]
    """Rule findings (expectation failures are in ``results``)."""
    results: tuple[ExpectationResult, ...]
    strict: bool = False
    """Warnings fail too."""

    def failing(self, finding: Finding) -> bool:
        return finding.severity is Severity.ERROR or (self.strict and finding.severity is Severity.WARNING)

    @property
    def passed(self) -> bool:
        return not any(self.failing(f) for f in self.findings) and all(r.passed for r in self.results)


def _where(finding: Finding) -> str:
    frames = ", ".join(f"{file}#{frame}" for file, frame in finding.frames[:8])
    more = f" (+{len(finding.frames) - 8})" if len(finding.frames) > 8 else ""
    return frames + more


def text_lines(report: CheckReport, ladders: dict[int, list[str]] | None = None) -> list[tuple[str, str]]:
    """(style, line) pairs: a line per finding, a block per failed expectation (with the
    ``--plain`` ladder of its call when ``ladders`` has it), then the verdict."""
    ladders = ladders or {}
    out: list[tuple[str, str]] = []
    for finding in report.findings:
        style = "bold red" if report.failing(finding) else "yellow"
        out.append(
            (style, f"{finding.severity.value.upper()} [{finding.rule}] {clean(finding.message, 300)}")
        )
        if finding.frames:
            out.append(("dim", f"    frames: {_where(finding)}"))
        if finding.cause:
            out.append(("dim", f"    cause: {clean(finding.cause, 200)}"))
        out.append(("dim", f"    {finding.explanation}"))
    for result in report.results:
        if result.passed:
            out.append(("green", f"PASS expectation {clean(result.name, 120)!r}"))
            continue
        out.append(("bold red", f"FAIL expectation {clean(result.name, 120)!r}"))
        out.append(("", f"    expected: {clean(result.expected, 300)}"))
        out.append(("", f"    actual:   {clean(result.actual, 300)}"))
        if result.call_index is not None and result.call_index in ladders:
            out.extend(("dim", "    " + line) for line in ladders[result.call_index])
    errors = sum(1 for f in report.findings if f.severity is Severity.ERROR)
    warnings = sum(1 for f in report.findings if f.severity is Severity.WARNING)
    failed = sum(1 for r in report.results if not r.passed)
    verdict = "PASSED" if report.passed else "FAILED"
    summary = (
        f"{verdict}: {plural(errors, 'error')}, {plural(warnings, 'warning')}, "
        f"{failed} of {plural(len(report.results), 'expectation')} failed "
        f"({plural(len(report.rules), 'rule')} over {plural(len(report.files), 'file')})"
    )
    out.append(("bold green" if report.passed else "bold red", summary))
    return out


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity.value,
        "message": finding.message,
        "explanation": finding.explanation,
        "call_index": finding.call_index,
        "call_id": finding.call_id,
        "frames": [[file, frame] for file, frame in finding.frames],
        "cause": finding.cause,
    }


def json_dict(report: CheckReport) -> dict[str, Any]:
    return {
        "schema": 1,
        "passed": report.passed,
        "files": list(report.files),
        "rules": [r.id for r in report.rules],
        "findings": [_finding_dict(f) for f in report.findings],
        "expectations": [
            {
                "name": r.name,
                "passed": r.passed,
                "expected": r.expected,
                "actual": r.actual,
                "call_index": r.call_index,
                "findings": [_finding_dict(f) for f in r.findings],
            }
            for r in report.results
        ],
    }


def _file_of(finding: Finding, files: Sequence[str]) -> str:
    return finding.frames[0][0] if finding.frames else files[0]


def _classname(file: str) -> str:
    """``sipflow.rules.faulty_bye_481``: Jenkins and GitLab split a classname at its dots into
    package and class, so the file (the testsuite's name, in full) goes in as one identifier:
    its name without folder and extension, other characters than letters, digits and ``_``
    made ``_``."""
    stem = re.sub(r"\W", "_", PurePath(file).name.split(".")[0], flags=re.ASCII)
    return f"sipflow.rules.{stem or 'capture'}"


def junit_xml(report: CheckReport) -> str:
    """JUnit XML (testsuites/testsuite/testcase/failure, as Jenkins and GitLab read it): one
    testsuite per file, one testcase per rule and per expectation."""
    by_file: dict[str, list[Finding]] = defaultdict(list)
    for finding in report.findings:
        by_file[_file_of(finding, report.files)].append(finding)
    expectations_file = report.files[0] if report.files else ""
    root = ET.Element("testsuites", name="sipflow check")
    total_tests = total_failures = 0
    for file in report.files:
        suite = ET.SubElement(root, "testsuite", name=file)
        tests = failures = 0
        for rule in report.rules:
            tests += 1
            case = ET.SubElement(suite, "testcase", classname=_classname(file), name=rule.id)
            hits = [f for f in by_file.get(file, []) if f.rule == rule.id and report.failing(f)]
            if hits:
                failures += 1
                failure = ET.SubElement(
                    case, "failure", message=clean(hits[0].message, 500), type=hits[0].severity.value
                )
                failure.text = (
                    "\n".join(f"{clean(h.message, 500)} [{_where(h)}]" for h in hits)
                    + "\n"
                    + rule.explanation
                )
            others = [f for f in by_file.get(file, []) if f.rule == rule.id and not report.failing(f)]
            if others:
                ET.SubElement(case, "system-out").text = "\n".join(clean(o.message, 500) for o in others)
        if file == expectations_file:
            for result in report.results:
                tests += 1
                case = ET.SubElement(
                    suite, "testcase", classname="sipflow.expectations", name=clean(result.name, 200)
                )
                if not result.passed:
                    failures += 1
                    expected = f"expected {clean(result.expected, 300)}"
                    failure = ET.SubElement(case, "failure", message=expected, type="expectation")
                    failure.text = (
                        f"expected: {clean(result.expected, 1000)}\nactual: {clean(result.actual, 1000)}"
                    )
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        total_tests += tests
        total_failures += failures
    root.set("tests", str(total_tests))
    root.set("failures", str(total_failures))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _gh_data(text: str) -> str:
    """Escape a workflow command's message (GitHub Actions toolkit ``escapeData``)."""
    return clean(text, 1000).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def github_lines(report: CheckReport) -> list[str]:
    """GitHub Actions annotations: ``::error file=…,title=…::message``."""
    lines = []
    for finding in report.findings:
        level = "error" if report.failing(finding) else "warning"
        title = f"sipflow {finding.rule}"
        where = f" ({_where(finding)})" if finding.frames else ""
        lines.append(
            f"::{level} file={_gh_property(_file_of(finding, report.files))},title={_gh_property(title)}"
            f"::{_gh_data(finding.message + where + ' - ' + finding.explanation)}"
        )
    for result in report.results:
        if not result.passed:
            lines.append(
                f"::error title={_gh_property('sipflow expectation ' + result.name)}"
                f"::{_gh_data(f'expected {result.expected}; actual {result.actual}')}"
            )
    return lines


def all_findings(report: CheckReport) -> Iterable[Finding]:
    yield from report.findings
    for result in report.results:
        yield from result.findings
