// Automatic layout for files without diagram interchange (no bpmndi:BPMNDiagram).

import { layoutProcess } from 'bpmn-auto-layout';

const BPMN = 'http://www.omg.org/spec/BPMN/20100524/MODEL';
const BPMNDI = 'http://www.omg.org/spec/BPMN/20100524/DI';

export function hasDiagram(xml) {
  const document = new DOMParser().parseFromString(xml, 'application/xml');
  return document.getElementsByTagNameNS(BPMNDI, 'BPMNDiagram').length > 0;
}

/**
 * Return `xml` with a diagram laid out by bpmn-auto-layout. Only the diagram is taken from the layout:
 * it is added to the original document, whose process elements stay exactly as they were read, because
 * bpmn-auto-layout writes the file back through bpmn-moddle without liuhen's descriptor.
 * bpmn-auto-layout 1.3 draws the first process only, without pools and lanes.
 */
export async function addAutomaticLayout(xml) {
  const laidOut = new DOMParser().parseFromString(await layoutProcess(withFlowReferences(xml)), 'application/xml');
  const original = new DOMParser().parseFromString(xml, 'application/xml');

  for (const diagram of Array.from(laidOut.getElementsByTagNameNS(BPMNDI, 'BPMNDiagram'))) {
    original.documentElement.appendChild(original.importNode(diagram, true));
  }
  return new XMLSerializer().serializeToString(original);
}

/**
 * Return `xml` with <incoming> and <outgoing> on every flow node that a sequence flow starts or ends at.
 * bpmn-auto-layout follows only these, and many tools (IBM Blueworks Live, Flowable) write sequence flows
 * without them. The result is used for the layout only, never saved.
 */
function withFlowReferences(xml) {
  const document = new DOMParser().parseFromString(xml, 'application/xml');
  const byId = new Map();
  for (const element of Array.from(document.getElementsByTagNameNS(BPMN, '*'))) {
    if (element.getAttribute('id')) {
      byId.set(element.getAttribute('id'), element);
    }
  }

  for (const sequenceFlow of Array.from(document.getElementsByTagNameNS(BPMN, 'sequenceFlow'))) {
    const flowId = sequenceFlow.getAttribute('id');
    addReference(byId.get(sequenceFlow.getAttribute('sourceRef')), 'outgoing', flowId);
    addReference(byId.get(sequenceFlow.getAttribute('targetRef')), 'incoming', flowId);
  }
  return new XMLSerializer().serializeToString(document);
}

function addReference(node, name, flowId) {
  if (!node || !flowId) {
    return;
  }
  const existing = Array.from(node.getElementsByTagNameNS(BPMN, name)).filter((child) => child.parentNode === node);
  if (existing.some((child) => child.textContent.trim() === flowId)) {
    return;
  }
  const reference = node.ownerDocument.createElementNS(BPMN, node.prefix ? `${node.prefix}:${name}` : name);
  reference.textContent = flowId;
  node.appendChild(reference);
}
