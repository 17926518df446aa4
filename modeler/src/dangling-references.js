// Keep references to ids that the file does not define.
//
// bpmn-moddle drops a reference it cannot resolve, so saving would silently remove it. Some tools write
// such references on purpose: SpiffWorkflow reads <loopDataInputRef>input_data</loopDataInputRef> as the
// name of a case data variable, and Flowable writes itemSubjectRef="xsd:string". Others leave stale
// ones behind (a lane's flowNodeRef to a renamed node). This module puts a placeholder element with the
// unresolved id in place of each one, so the reference is written back exactly as it was read.

const HIGH_PRIORITY = 2000;

export default function DanglingReferences(eventBus, moddle) {
  eventBus.on('import.parse.complete', HIGH_PRIORITY, (event) => {
    if (!event.error && event.warnings) {
      restoreReferences(event, moddle);
    }
  });
}

DanglingReferences.$inject = [ 'eventBus', 'moddle' ];

function restoreReferences(event, moddle) {
  const { warnings, references, elementsById } = event;
  const collections = new Map();

  for (const warning of warnings) {
    if (!isUnresolved(warning)) {
      continue;
    }
    const { element, property } = warning;
    const descriptor = element.$descriptor.propertiesByName[property];

    // bpmn-js replaces a plane's missing process by the one it displays; a placeholder would stop that.
    if (!descriptor || element.$instanceOf('bpmndi:BPMNPlane')) {
      continue;
    }
    if (!descriptor.isMany) {
      element.set(descriptor.name, placeholder(moddle, descriptor.type, warning.value));
      continue;
    }
    const key = collections.get(element) || new Set();
    key.add(property);
    collections.set(element, key);
  }

  // Rebuild each affected list from the references in document order, so the order is kept too.
  for (const [ element, properties ] of collections) {
    for (const property of properties) {
      const descriptor = element.$descriptor.propertiesByName[property];
      const rebuilt = references
        .filter((reference) => reference.element === element && reference.property === property)
        .map((reference) => elementsById[reference.id] || placeholder(moddle, descriptor.type, reference.id));
      const collection = element.get(descriptor.name);
      collection.splice(0, collection.length, ...rebuilt);
    }
  }
}

function isUnresolved(warning) {
  return warning.element && warning.property && typeof warning.value === 'string'
    && /^unresolved reference </.test(warning.message || '');
}

/** Create a detached element that carries only the id. It is never part of the document tree. */
function placeholder(moddle, type, id) {
  const element = moddle.create(type, { id });
  element.$danglingReference = true;
  return element;
}

export const DanglingReferencesModule = {
  __init__: [ 'danglingReferences' ],
  danglingReferences: [ 'type', DanglingReferences ]
};
