"""Exceptions of the workflow core.

Every error carries a stable ``code`` for API clients, a translatable message and the ids it is
about. The HTTP layer and the CLI render the message in the reader's locale in one place each.
"""

from __future__ import annotations

from typing import Any

from engine.i18n import Message


class LiuhenError(Exception):
    """Base class of every error liuhen reports to a user."""

    code = "error"
    status = 400

    def __init__(self, message: Message, **context: Any) -> None:
        super().__init__(str(message))
        self.message = message
        self.context = {key: value for key, value in context.items() if value is not None}

    def render(self, locale: str | None) -> str:
        return self.message.render(locale)


class DefinitionError(LiuhenError):
    """A BPMN file could not be deployed; ``context`` names the file, element and line."""

    code = "definition_invalid"
    status = 422

    def __init__(
        self,
        message: Message,
        *,
        code: str | None = None,
        filename: str | None = None,
        element_id: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message, filename=filename, element_id=element_id, line=line)
        if code:
            self.code = code
        self.filename = filename
        self.element_id = element_id
        self.line = line


class ExpressionError(LiuhenError):
    """An expression was rejected by the safe evaluator or failed on case data."""

    code = "expression_invalid"
    status = 422

    def __init__(self, message: Message, *, expression: str, element_id: str | None = None) -> None:
        super().__init__(message, expression=expression, element_id=element_id)
        self.expression = expression
        self.element_id = element_id


class NotFound(LiuhenError):
    code = "not_found"
    status = 404


class Conflict(LiuhenError):
    """The request lost a race or does not fit the current state (task already completed)."""

    code = "conflict"
    status = 409


class Forbidden(LiuhenError):
    code = "forbidden"
    status = 403


class Unauthorized(LiuhenError):
    code = "unauthorized"
    status = 401


class InvalidInput(LiuhenError):
    """Submitted data does not match what the step or endpoint expects."""

    code = "invalid_input"
    status = 422


class CaseError(LiuhenError):
    """Executing a case failed; the case keeps its last committed state."""

    code = "case_error"
    status = 422


class DatabaseNotReady(LiuhenError):
    """The database schema is missing or older than this release."""

    code = "database_not_migrated"
    status = 503


class ControlFailed(LiuhenError):
    """A hard control blocked a claim or a completion; nothing of the step was stored.

    ``failures`` lists every blocking control as a dict with control_id, control_type, checkpoint_id and
    message. ``events`` are the control_evaluated trace events of the attempt, which the caller records
    in a transaction of their own.
    """

    code = "control_failed"
    status = 422

    def __init__(self, message: Message, *, case_id: int, task_id: str, failures: list[dict[str, Any]],
                 events: list[Any] | None = None) -> None:
        super().__init__(message, case_id=case_id, task_id=task_id, controls=failures)
        self.case_id = case_id
        self.task_id = task_id
        self.failures = failures
        self.events = list(events or [])
