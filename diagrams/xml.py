"""Parse BPMN bytes for drawing, accepting any encoding the XML declaration names."""

from __future__ import annotations

from lxml import etree

from diagrams.errors import DiagramInputError
from engine.extension import BPMN_NAMESPACE
from engine.i18n import msg


def bpmn_tag(name: str) -> str:
    """Return the Clark notation of the BPMN model element ``name``, such as ``{...MODEL}task``."""
    return f"{{{BPMN_NAMESPACE}}}{name}"


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


def is_bpmn(element: etree._Element) -> bool:
    return isinstance(element.tag, str) and etree.QName(element).namespace == BPMN_NAMESPACE


def parse_bpmn(content: bytes, filename: str) -> etree._Element:
    """Parse ``content`` and return its ``bpmn:definitions`` element, or raise DiagramInputError.

    Unlike deployment, drawing accepts files in ISO-8859-1, windows-1252 or any other encoding that
    libxml2 supports, because many modelling tools export in them. Entities are never expanded and
    nothing is fetched from the network.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise DiagramInputError(
            msg("File {filename} is not well-formed XML: {reason} (line {line}). Fix the XML and draw it again.",
                filename=filename, reason=exc.msg, line=exc.lineno),
            filename=filename, line=exc.lineno) from exc
    if root is None or root.tag != bpmn_tag("definitions"):
        tag = etree.QName(root).localname if root is not None else ""
        raise DiagramInputError(
            msg("File {filename} is XML but not BPMN 2.0: its root element is {tag}, expected "
                "bpmn:definitions in namespace {namespace}.",
                filename=filename, tag=tag, namespace=BPMN_NAMESPACE),
            filename=filename, line=root.sourceline if root is not None else None)
    return root
