"""Print the findings of a BPMN file's validation as a list for the command line."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from engine.i18n import translate
from engine.validation import ValidationReport


def print_findings(report: ValidationReport, locale: str, stream: TextIO | None = None) -> None:
    """Print one block per finding: severity, line, element and message, then the fix hint indented."""
    stream = stream or sys.stdout
    for finding in report.findings:
        severity = (translate(locale, "error (blocks deployment)") if finding.severity == "error"
                    else translate(locale, "warning"))
        line = translate(locale, "line {line}", line=finding.line) if finding.line else "-"
        element = finding.element_id or "-"
        if finding.element_name and finding.element_name != finding.element_id:
            element = f"{element} ({finding.element_name})"
        print(f"  {severity}  {line}  {element}", file=stream)
        print(f"       {finding.message.render(locale)}", file=stream)
        print("       " + translate(locale, "Fix: {hint}", hint=finding.hint.render(locale)), file=stream)


def report_json(report: ValidationReport, locale: str) -> dict[str, Any]:
    """Return a file's validation as the JSON that ``liuhen validate --json`` prints."""
    processes = [process.process_id for process in report.parsed.processes] if report.parsed else []
    return {"filename": report.filename, "valid": report.valid, "content_hash": report.content_hash,
            "processes": processes, "findings": [finding.to_json(locale) for finding in report.findings]}
