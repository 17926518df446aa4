"""Design-time validation of a BPMN file: every finding at once, each with a severity and a fix hint.

``validate_definition`` runs the deploy checks of ``engine.definitions``, which stop at the first
error, and then every rule of ``engine.validation_rules`` over the whole file, so that a designer
sees all problems of a diagram in one pass. An error blocks deployment. A warning names something
that runs but is probably not what the designer meant, and deployment goes ahead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from engine import validation_rules
from engine.definitions import (
    Limits,
    ParsedDefinition,
    content_hash,
    expression_errors,
    load_definition,
    located_message,
    read_root,
    runnable_processes,
    unsupported_element_errors,
)
from engine.errors import DefinitionError
from engine.validation_context import ERROR, SEVERITIES, WARNING, Finding, ValidationContext

__all__ = ["ERROR", "SEVERITIES", "WARNING", "Finding", "ValidationReport", "validate_definition"]

logger = logging.getLogger(__name__)


@dataclass
class ValidationReport:
    """Every finding of one file, errors first, and the parsed definition when the deploy checks passed."""

    filename: str
    content_hash: str
    findings: list[Finding] = field(default_factory=list)
    parsed: ParsedDefinition | None = None
    primary: DefinitionError | None = None

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == WARNING]

    @property
    def valid(self) -> bool:
        return not self.errors

    def deployable(self) -> ParsedDefinition:
        """Return the parsed definition, or raise the first error with every finding in its details.

        The first error is the one ``load_definition`` raised, when it raised one, so a file those
        checks reject is refused with the same message, code, element and line as by them alone.
        """
        if self.primary is not None:
            self.primary.context["findings"] = [finding.to_context() for finding in self.findings]
            raise self.primary
        if self.errors:
            first = self.errors[0]
            error = DefinitionError(located_message(first.message, self.filename, first.line, first.element_id),
                                    code=first.code, filename=self.filename, element_id=first.element_id,
                                    line=first.line)
            error.context["findings"] = [finding.to_context() for finding in self.findings]
            raise error
        if self.parsed is None:
            raise RuntimeError("a report without errors always has the parsed definition")
        return self.parsed


def validate_definition(content: bytes, filename: str, limits: Limits | None = None) -> ValidationReport:
    """Check ``content`` with the deploy checks and every validation rule, and list all findings."""
    limits = limits or Limits()
    report = ValidationReport(filename=filename, content_hash=content_hash(content))
    try:
        root = read_root(content, filename, limits)
    except DefinitionError as exc:
        # Without an XML tree no rule can run: the file is empty, too large, not XML or not BPMN.
        report.primary = exc
        report.findings.append(Finding.from_error(exc))
        return report
    try:
        report.parsed = load_definition(content, filename, limits)
    except DefinitionError as exc:
        report.primary = exc

    context = ValidationContext(root, filename, runnable_processes(root))
    if report.primary is not None:
        context.add_error(report.primary)
    validation_rules.check_extensions(context)
    for error in unsupported_element_errors(root, filename):
        context.add_error(error)
    for error in expression_errors(root, filename, set(context.fields)):
        context.add_error(error)
    validation_rules.check_timers(context)
    validation_rules.check_posts(context)
    validation_rules.check_checkpoints(context)
    validation_rules.check_limits(context)
    validation_rules.check_gateways(context)
    validation_rules.check_reachability(context)

    report.findings = context.sorted_findings()
    logger.debug("validated %s", filename, extra={"errors": len(report.errors), "warnings": len(report.warnings)})
    return report
