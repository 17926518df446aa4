"""SpiffWorkflow parser that carries liuhen's extension data on every task spec."""

from __future__ import annotations

import contextlib
import sys
import threading
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


# The recursion limit is one value for the whole process, and API threads parse and step at the same time.
# The limit goes back down only when the last thread inside deep_recursion leaves, so no thread lowers it
# under another that is still deep in a long flow.
_recursion_lock = threading.Lock()
_recursion_users = 0
_recursion_previous = 0


@contextlib.contextmanager
def deep_recursion() -> Iterator[None]:
    """Raise the interpreter's recursion limit while SpiffWorkflow parses or walks long flows."""
    global _recursion_users, _recursion_previous
    with _recursion_lock:
        if _recursion_users == 0:
            _recursion_previous = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_recursion_previous, PARSE_RECURSION_LIMIT))
        _recursion_users += 1
    try:
        yield
    finally:
        with _recursion_lock:
            _recursion_users -= 1
            if _recursion_users == 0:
                sys.setrecursionlimit(_recursion_previous)


def node_extensions(task_spec: Any) -> dict[str, Any]:
    """Return liuhen's extension data of a task spec (empty for specs without any)."""
    extensions = getattr(task_spec, "extensions", None) or {}
    return extensions.get(EXTENSION_KEY, {})
