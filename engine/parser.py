"""SpiffWorkflow parser that carries liuhen's extension data on every task spec."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser

from engine.extension import EXTENSION_KEY, parse_node_extensions

# SpiffWorkflow walks sequence flows recursively while it parses, a few frames per node, so a
# chain of about 490 nodes exceeds Python's default limit of 1,000 frames.
PARSE_RECURSION_LIMIT = 20_000


class _LiuhenExtensionsMixin:
    node: Any
    filename: str | None

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        data = parse_node_extensions(node if node is not None else self.node, self.filename)
        return {EXTENSION_KEY: data} if data else {}


def _with_extensions(parser_class: type) -> type:
    return type(f"Liuhen{parser_class.__name__}", (_LiuhenExtensionsMixin, parser_class), {})


class LiuhenBpmnParser(BpmnParser):
    """BpmnParser whose task specs hold ``extensions['liuhen']`` read from our namespace."""

    OVERRIDE_PARSER_CLASSES = {
        tag: (_with_extensions(parser_class), spec_class)
        for tag, (parser_class, spec_class) in BpmnParser.PARSER_CLASSES.items()
    }


@contextlib.contextmanager
def deep_recursion() -> Iterator[None]:
    """Raise the interpreter's recursion limit while SpiffWorkflow parses or walks long flows."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, PARSE_RECURSION_LIMIT))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def node_extensions(task_spec: Any) -> dict[str, Any]:
    """Return liuhen's extension data of a task spec (empty for specs without any)."""
    extensions = getattr(task_spec, "extensions", None) or {}
    return extensions.get(EXTENSION_KEY, {})
