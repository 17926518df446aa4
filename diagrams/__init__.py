"""Draw BPMN flowcharts with Graphviz as SVG, PNG or PDF, with risk checkpoints and time limits marked.

``render(content, filename, fmt, locale)`` is the entry point: ``reader`` builds a ``model.Diagram``
from the XML, ``graph`` turns it into DOT source and ``output`` runs Graphviz's ``dot``.
"""

from diagrams.errors import DiagramError, DiagramInputError, RendererError
from diagrams.output import FORMATS, MEDIA_TYPES, DiagramFormat, render

__all__ = ["FORMATS", "MEDIA_TYPES", "DiagramError", "DiagramFormat", "DiagramInputError", "RendererError", "render"]
