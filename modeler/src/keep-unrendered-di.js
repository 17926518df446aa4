// Keep the diagram elements (BPMNShape, BPMNEdge) that bpmn-js does not draw.
//
// Before saving, bpmn-js rewrites each plane's list of diagram elements from the shapes it drew, in
// drawing order. A diagram element it did not draw (one that points at an id the file lacks, or at an
// element bpmn-js cannot show) would be dropped. This module puts such elements back after the reorder.
// Elements the designer deleted are gone from the plane before saving starts, so they stay deleted.

// bpmn-js orders the diagram elements at priority 2000.
const BEFORE_ORDERING = 2001;
const AFTER_ORDERING = 1999;

export default function KeepUnrenderedDi(eventBus) {
  let before = new Map();

  eventBus.on('saveXML.start', BEFORE_ORDERING, ({ definitions }) => {
    before = new Map(planes(definitions).map((plane) => [ plane, [ ...plane.get('planeElement') ] ]));
  });

  eventBus.on('saveXML.start', AFTER_ORDERING, () => {
    for (const [ plane, elements ] of before) {
      const current = plane.get('planeElement');
      const dropped = elements.filter((element) => !current.includes(element));
      current.push(...dropped);
    }
    before = new Map();
  });
}

KeepUnrenderedDi.$inject = [ 'eventBus' ];

function planes(definitions) {
  return (definitions.get('diagrams') || []).map((diagram) => diagram.plane).filter(Boolean);
}

export const KeepUnrenderedDiModule = {
  __init__: [ 'keepUnrenderedDi' ],
  keepUnrenderedDi: [ 'type', KeepUnrenderedDi ]
};
