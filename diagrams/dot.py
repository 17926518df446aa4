"""Write Graphviz DOT source: quoted ids and attributes, HTML-like labels, nested subgraphs."""

from __future__ import annotations

from collections.abc import Mapping


class HtmlLabel(str):
    """An HTML-like label body, written between ``<`` and ``>`` instead of quotes."""

    __slots__ = ()


AttributeValue = str | int | float | bool
Attributes = Mapping[str, AttributeValue]


def quote(value: AttributeValue) -> str:
    """Write ``value`` as a DOT id: an HTML-like label in angle brackets, anything else in quotes.

    A backslash is doubled because Graphviz reads escape sequences such as ``\\N`` in labels and
    tooltips, where a BPMN name or condition must show as written.
    """
    if isinstance(value, HtmlLabel):
        return f"<{value}>"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def attribute_list(attributes: Attributes) -> str:
    if not attributes:
        return ""
    return " [" + ", ".join(f"{key}={quote(value)}" for key, value in attributes.items()) + "]"


class DotWriter:
    """Collect the statements of one directed graph and return them as DOT source."""

    def __init__(self) -> None:
        self._lines: list[str] = ["digraph {"]
        self._depth = 1

    def defaults(self, kind: str, attributes: Attributes) -> None:
        """Set graph, node or edge attributes for what follows in the current (sub)graph."""
        self._write(f"{kind}{attribute_list(attributes)}")

    def node(self, name: str, attributes: Attributes) -> None:
        self._write(f"{quote(name)}{attribute_list(attributes)}")

    def edge(self, tail: str, head: str, attributes: Attributes) -> None:
        self._write(f"{quote(tail)} -> {quote(head)}{attribute_list(attributes)}")

    def begin_subgraph(self, name: str | None = None) -> None:
        self._write(f"subgraph {quote(name)} {{" if name is not None else "{")
        self._depth += 1

    def end_subgraph(self) -> None:
        self._depth -= 1
        self._write("}")

    def source(self) -> str:
        if self._depth != 1:
            raise RuntimeError(f"{self._depth - 1} subgraphs were begun but not ended")
        return "\n".join([*self._lines, "}", ""])

    def _write(self, statement: str) -> None:
        self._lines.append("  " * self._depth + statement)
