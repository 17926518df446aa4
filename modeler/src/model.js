// Read and change liuhen's extension elements on bpmn-js business objects through the command stack,
// so that every change can be undone.

import { getBusinessObject, is } from 'bpmn-js/lib/util/ModelUtil';

export const CHECKPOINT = 'liuhen:RiskCheckpoint';
export const CONTROL = 'liuhen:Control';
export const POWER_ITEM = 'liuhen:PowerItem';
export const TIME_LIMIT = 'liuhen:TimeLimit';
export const FORM_FIELD = 'liuhen:FormField';
export const OPTION = 'liuhen:Option';
export const CLOCK_PAUSE = 'liuhen:ClockPause';
export const CLOCK_START = 'liuhen:ClockStart';

const MULTI_COMMAND = 'properties-panel.multi-command-executor';

export function extensionValues(businessObject, type) {
  const extensionElements = businessObject && businessObject.get('extensionElements');
  const values = (extensionElements && extensionElements.get('values')) || [];
  return type ? values.filter((value) => is(value, type)) : values;
}

/**
 * Return the commands that add `created` to the extension elements of `businessObject`, creating the
 * bpmn:ExtensionElements container when the element has none yet. `index` is the position among the
 * container's values; without it the element is appended.
 */
function addExtensionCommands(element, businessObject, created, bpmnFactory, index) {
  const commands = [];
  let extensionElements = businessObject.get('extensionElements');

  if (!extensionElements) {
    extensionElements = bpmnFactory.create('bpmn:ExtensionElements', { values: [] });
    extensionElements.$parent = businessObject;
    commands.push({
      cmd: 'element.updateModdleProperties',
      context: { element, moddleElement: businessObject, properties: { extensionElements } }
    });
  }

  created.$parent = extensionElements;
  const values = [ ...extensionElements.get('values') ];
  values.splice(index === undefined ? values.length : index, 0, created);
  commands.push({
    cmd: 'element.updateModdleProperties',
    context: { element, moddleElement: extensionElements, properties: { values } }
  });
  return commands;
}

export function addExtensionElement(element, businessObject, created, bpmnFactory, commandStack, index) {
  commandStack.execute(MULTI_COMMAND, addExtensionCommands(element, businessObject, created, bpmnFactory, index));
}

/** Swap two extension elements of `businessObject`, such as two form fields when one moves up. */
export function swapExtensionElements(element, businessObject, first, second, commandStack) {
  const extensionElements = businessObject.get('extensionElements');
  const values = [ ...extensionElements.get('values') ];
  const firstIndex = values.indexOf(first);
  const secondIndex = values.indexOf(second);
  values[firstIndex] = second;
  values[secondIndex] = first;
  updateProperties(element, extensionElements, { values }, commandStack);
}

export function removeExtensionElement(element, businessObject, removed, commandStack) {
  const extensionElements = businessObject.get('extensionElements');
  if (!extensionElements) {
    return;
  }
  commandStack.execute('element.updateModdleProperties', {
    element,
    moddleElement: extensionElements,
    properties: { values: extensionElements.get('values').filter((value) => value !== removed) }
  });
}

export function updateProperties(element, moddleElement, properties, commandStack) {
  commandStack.execute('element.updateModdleProperties', { element, moddleElement, properties });
}

export function addListItem(element, owner, property, created, commandStack) {
  created.$parent = owner;
  updateProperties(element, owner, { [property]: [ ...owner.get(property), created ] }, commandStack);
}

export function removeListItem(element, owner, property, removed, commandStack) {
  updateProperties(element, owner, { [property]: owner.get(property).filter((item) => item !== removed) },
    commandStack);
}

/**
 * Return the process whose power item a selected element edits: the process itself, or the process of a
 * selected pool (participant). Other elements have none.
 */
export function powerItemOwner(element) {
  const businessObject = getBusinessObject(element);
  if (is(businessObject, 'bpmn:Process')) {
    return businessObject;
  }
  if (is(businessObject, 'bpmn:Participant')) {
    return businessObject.get('processRef') || null;
  }
  return null;
}

export function carriesCheckpoints(element) {
  return is(element, 'bpmn:FlowNode') && !element.labelTarget;
}

export function definitionsOf(businessObject) {
  let current = businessObject;
  while (current && current.$parent) {
    current = current.$parent;
  }
  return current;
}

/**
 * Walk every moddle element contained in `root` (not the ones it only refers to) and call `visit` on each.
 */
export function walkContained(root, visit) {
  const stack = [ root ];
  const seen = new Set();

  while (stack.length) {
    const current = stack.pop();
    if (!current || typeof current !== 'object' || seen.has(current) || !current.$descriptor) {
      continue;
    }
    seen.add(current);
    visit(current);

    for (const property of current.$descriptor.properties || []) {
      if (property.isReference || property.isAttr || property.isVirtual) {
        continue;
      }
      const value = current.get(property.name);
      if (Array.isArray(value)) {
        stack.push(...value);
      } else if (value && typeof value === 'object') {
        stack.push(value);
      }
    }

    // Elements of namespaces that no descriptor describes are kept as generic elements with $children.
    if (Array.isArray(current.$children)) {
      stack.push(...current.$children);
    }
  }
}

/**
 * Count how often each id occurs among the BPMN, DI and liuhen elements of the file. Elements of other
 * tools' namespaces are left out because some tools repeat a BPMN id in them to point at it.
 */
export function idCounts(businessObject) {
  const counts = new Map();
  walkContained(definitionsOf(businessObject), (node) => {
    const id = node.id;
    if (!node.$descriptor.isGeneric && typeof id === 'string' && id) {
      counts.set(id, (counts.get(id) || 0) + 1);
    }
  });
  return counts;
}

function rootContainer(businessObject) {
  let current = businessObject;
  while (current && !is(current, 'bpmn:Process') && current.$parent && !is(current.$parent, 'bpmn:Definitions')) {
    current = current.$parent;
  }
  return current;
}

/** Return the flow nodes of the process that contains `businessObject`, sub-processes included. */
export function processFlowNodes(businessObject) {
  const process = rootContainer(businessObject);
  const nodes = [];
  walkContained(process, (node) => {
    if (is(node, 'bpmn:FlowNode')) {
      nodes.push(node);
    }
  });
  return nodes;
}

/** Return the names of the form fields declared on any flow node of the process, sorted. */
export function processFieldNames(businessObject) {
  const names = new Set();
  for (const node of processFlowNodes(businessObject)) {
    for (const field of extensionValues(node, FORM_FIELD)) {
      if (field.get('name')) {
        names.add(field.get('name'));
      }
    }
  }
  return [ ...names ].sort();
}
