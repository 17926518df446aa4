"""Errors raised while drawing a diagram; the API and the CLI report them like every other LiuhenError."""

from __future__ import annotations

from engine.errors import LiuhenError
from engine.i18n import Message


class DiagramError(LiuhenError):
    """Base class of the errors of the diagrams package."""

    code = "diagram_error"
    status = 422


class DiagramInputError(DiagramError):
    """The file to draw is not well-formed XML or not BPMN 2.0; ``context`` names the file and line."""

    code = "diagram_invalid_input"
    status = 422

    def __init__(self, message: Message, *, filename: str, line: int | None = None) -> None:
        super().__init__(message, filename=filename, line=line)
        self.filename = filename
        self.line = line


class RendererError(DiagramError):
    """Graphviz is missing, failed or timed out; the file itself may be fine."""

    code = "diagram_renderer_failed"
    status = 503
