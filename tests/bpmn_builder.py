"""Build small BPMN 2.0 files for tests from a list of nodes and flows."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
LIUHEN_NS = "urn:liuhen:bpmn:1.0"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


def node(kind: str, node_id: str, name: str | None = None, body: str = "", **attrs: str) -> str:
    attributes = f' id="{node_id}"' + (f" name={quoteattr(name)}" if name else "")
    attributes += "".join(f" {key}={quoteattr(value)}" for key, value in attrs.items())
    return f"<bpmn:{kind}{attributes}>{body}</bpmn:{kind}>"


def user_task(node_id: str, name: str | None = None, fields: list[tuple[str, str]] = (), extra: str = "") -> str:
    form = "".join(f'<liuhen:formField name="{n}" type="{t}" label="{n}"/>' for n, t in fields)
    body = f"<bpmn:extensionElements>{form}{extra}</bpmn:extensionElements>" if form or extra else ""
    return node("userTask", node_id, name or node_id, body)


def flow(flow_id: str, source: str, target: str, condition: str | None = None) -> str:
    body = ""
    if condition is not None:
        body = (f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}'
                "</bpmn:conditionExpression>")
    return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">{body}</bpmn:sequenceFlow>'


def lanes(assignment: dict[str, list[str]]) -> str:
    body = "".join(
        f'<bpmn:lane id="Lane_{index}" name={quoteattr(name)}>'
        + "".join(f"<bpmn:flowNodeRef>{ref}</bpmn:flowNodeRef>" for ref in refs)
        + "</bpmn:lane>"
        for index, (name, refs) in enumerate(assignment.items())
    )
    return f'<bpmn:laneSet id="LaneSet_1">{body}</bpmn:laneSet>'


def process(process_id: str, *elements: str, name: str | None = None, extensions: str = "",
            executable: bool = True) -> str:
    ext = f"<bpmn:extensionElements>{extensions}</bpmn:extensionElements>" if extensions else ""
    return (f'<bpmn:process id="{process_id}" name={quoteattr(name or process_id)} '
            f'isExecutable="{"true" if executable else "false"}">{ext}{"".join(elements)}</bpmn:process>')


def definitions(*processes: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:liuhen="{LIUHEN_NS}" xmlns:xsi="{XSI_NS}" '
        'id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">'
        + "".join(processes)
        + "</bpmn:definitions>"
    ).encode("utf-8")


def sequence(process_id: str, task_ids: list[str], fields: list[tuple[str, str]] = ()) -> bytes:
    """A straight line: start, the user tasks in order, end."""
    elements = [node("startEvent", "StartEvent_1")]
    elements += [user_task(task_id, fields=fields) for task_id in task_ids]
    elements.append(node("endEvent", "EndEvent_1"))
    chain = ["StartEvent_1", *task_ids, "EndEvent_1"]
    elements += [flow(f"Flow_{i}", a, b) for i, (a, b) in enumerate(zip(chain, chain[1:], strict=False))]
    return definitions(process(process_id, *elements))
