// The controls (liuhen:control) of one risk checkpoint: a nested list inside the checkpoint's panel item.

import { CollapsibleEntry, ListEntry, SelectEntry } from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';

import { CONTROL, addListItem, idCounts, processFieldNames, processFlowNodes, removeListItem,
  updateProperties } from '../model';
import { CONTROL_TYPES, PARAMETERS, isRequired, parameterError } from './control-types';
import { SelectProperty, TextProperty, freshId, idValidator, requiredText } from './entries';

const ENFORCEMENTS = [ 'hard', 'soft' ];

// Controls run where a person claims and completes a task, and their steps name such tasks.
const HUMAN_TASKS = [ 'bpmn:UserTask', 'bpmn:ManualTask', 'bpmn:Task' ];

function isHumanTask(node) {
  return HUMAN_TASKS.includes(node.$type);
}

export function ControlList(props) {
  const { element, id, checkpoint } = props;
  const bpmnFactory = useService('bpmnFactory');
  const commandStack = useService('commandStack');
  const moddle = useService('moddle');
  const translate = useService('translate');
  const controls = checkpoint.get('control');

  const addControl = () => {
    const control = bpmnFactory.create(CONTROL, {
      id: freshId('C_', idCounts(checkpoint), moddle),
      type: 'separationOfDuties',
      enforcement: 'hard'
    });
    addListItem(element, checkpoint, 'control', control, commandStack);
  };

  const misplaced = !isHumanTask(element.businessObject);

  return <div class="liuhen-list">
    <ListEntry
      id={ id }
      element={ element }
      label={ translate('Controls') }
      items={ controls }
      component={ ControlItem }
      onAdd={ addControl }
      onRemove={ (control) => removeListItem(element, checkpoint, 'control', control, commandStack) }
      autoFocusEntry={ `[data-entry-id="${id}-${controls.length - 1}-type"] select` }
      translate={ translate } />
    { misplaced
      ? <div class={ controls.length ? 'bio-properties-panel-error' : 'bio-properties-panel-description' }>
        { translate(
          'Controls run only on user tasks, manual tasks and plain tasks, where a person completes the step.') }
      </div>
      : null }
  </div>;
}

function ControlItem(props) {
  const { element, id, index, item: control, open } = props;
  const translate = useService('translate');
  const itemId = `${id}-${index}`;
  const type = CONTROL_TYPES[control.get('type')];
  const label = [ control.get('id'), type ? translate(type.label) : control.get('type') ].filter(Boolean).join(' · ');

  return <CollapsibleEntry
    id={ itemId }
    element={ element }
    entries={ controlEntries(itemId, control, element) }
    label={ label }
    open={ open }
    translate={ translate } />;
}

function controlEntries(idPrefix, control, element) {
  const type = CONTROL_TYPES[control.get('type')];
  const entries = [
    { id: `${idPrefix}-id`, component: ControlId, control },
    { id: `${idPrefix}-type`, component: ControlType, control },
    { id: `${idPrefix}-enforcement`, component: ControlEnforcement, control }
  ];
  if (!type) {
    return entries;
  }
  for (const name of type.parameters) {
    entries.push({ id: `${idPrefix}-${name}`, component: ControlParameter, control, name });
  }
  if (type.steps) {
    entries.push({ id: `${idPrefix}-steps`, component: StepList, control, count: type.steps });
  }
  if (type.materials) {
    entries.push({ id: `${idPrefix}-materials`, component: MaterialList, owner: control, property: 'material',
      type: 'liuhen:Material', label: 'Materials',
      description: 'Leave empty to require every material of the power item.' });
  }
  return entries;
}

function ControlId(props) {
  const { element, id, control } = props;
  const translate = useService('translate');

  return <TextProperty
    element={ element }
    id={ id }
    moddleElement={ control }
    property="id"
    label={ translate('Control ID') }
    validate={ idValidator(translate, idCounts(control), control.get('id')) }
    keepInvalid={ false } />;
}

function ControlType(props) {
  const { element, id, control } = props;
  const commandStack = useService('commandStack');
  const translate = useService('translate');
  const type = CONTROL_TYPES[control.get('type')];

  // Changing the type drops the attributes, steps and materials that the new type does not take, so the
  // file keeps no stale rule parameters.
  const changeType = (value) => {
    const next = CONTROL_TYPES[value];
    const properties = { type: value };
    for (const name of Object.keys(PARAMETERS)) {
      if (next && !next.parameters.includes(name) && control.get(name) !== undefined) {
        properties[name] = undefined;
      }
    }
    if (next && !next.steps && control.get('step').length) {
      properties.step = [];
    }
    if (next && !next.materials && control.get('material').length) {
      properties.material = [];
    }
    if (next && next.alwaysSoft) {
      properties.enforcement = 'soft';
    }
    updateProperties(element, control, properties, commandStack);
  };

  const options = Object.entries(CONTROL_TYPES).map(([ value, definition ]) => ({
    value, label: translate(definition.label)
  }));

  return <SelectProperty
    element={ element }
    id={ id }
    moddleElement={ control }
    property="type"
    label={ translate('Type') }
    description={ type ? translate(type.description) : translate('Unknown control type; choose one from the list.') }
    options={ options }
    onChange={ changeType } />;
}

function ControlEnforcement(props) {
  const { element, id, control } = props;
  const translate = useService('translate');
  const type = CONTROL_TYPES[control.get('type')];
  const alwaysSoft = type && type.alwaysSoft;

  const options = ENFORCEMENTS.map((value) => ({
    value,
    label: translate(value === 'hard' ? 'Hard: block the step' : 'Soft: record a risk event')
  }));

  return <SelectProperty
    element={ element }
    id={ id }
    moddleElement={ control }
    property="enforcement"
    label={ translate('Enforcement') }
    description={ alwaysSoft ? translate('This control type always records a risk event and never blocks.') : null }
    options={ options }
    disabled={ alwaysSoft } />;
}

function ControlParameter(props) {
  const { element, id, control, name } = props;
  const translate = useService('translate');
  const parameter = PARAMETERS[name];
  const required = isRequired(CONTROL_TYPES[control.get('type')], name, control);
  let description = translate(parameter.description);

  if (parameter.kind === 'field') {
    const fields = processFieldNames(control);
    if (fields.length) {
      description += ' ' + translate('Form fields of this process: {fields}', { fields: fields.join(', ') });
    }
  }

  return <TextProperty
    element={ element }
    id={ id }
    moddleElement={ control }
    property={ name }
    label={ translate(parameter.label) }
    description={ description }
    validate={ (value) => parameterError(name, value, required, translate) } />;
}

function StepList(props) {
  const { element, id, control, count } = props;
  const bpmnFactory = useService('bpmnFactory');
  const commandStack = useService('commandStack');
  const translate = useService('translate');
  const steps = control.get('step');

  const addStep = () => {
    addListItem(element, control, 'step', bpmnFactory.create('liuhen:Step', {}), commandStack);
  };

  let error = null;
  if (count === 'some' && !steps.length) {
    error = translate('This control type needs at least one step.');
  } else if (count === 'one' && steps.length > 1) {
    error = translate('This control type takes at most one step: the one whose completion starts the period.');
  }

  return <div class="liuhen-list">
    <ListEntry
      id={ id }
      element={ element }
      label={ translate('Steps') }
      items={ steps }
      component={ StepItem }
      onAdd={ addStep }
      onRemove={ (step) => removeListItem(element, control, 'step', step, commandStack) }
      autoFocusEntry={ `[data-entry-id="${id}-${steps.length - 1}"] select` }
      translate={ translate } />
    { error ? <div class="bio-properties-panel-error">{ error }</div> : null }
  </div>;
}

function StepItem(props) {
  const { element, id, index, item: step } = props;
  const commandStack = useService('commandStack');
  const translate = useService('translate');
  const nodes = processFlowNodes(step).filter(isHumanTask);
  const known = new Set(nodes.map((node) => node.id));

  const options = [ { value: '', label: translate('(choose a step)') } ].concat(
    nodes
      .map((node) => ({ value: node.id, label: node.name ? `${node.name} (${node.id})` : node.id }))
      .sort((left, right) => left.label.localeCompare(right.label)));
  const current = step.get('ref');
  if (current && !known.has(current)) {
    options.push({ value: current, label: current });
  }

  const validate = (value) => {
    if (!value) {
      return translate('Choose the step this control refers to.');
    }
    return known.has(value) ? null : translate('No task of this process has the id {id}.', { id: value });
  };

  return <SelectEntry
    element={ element }
    id={ `${id}-${index}` }
    label={ translate('Step') }
    getValue={ () => step.get('ref') || '' }
    setValue={ (value) => updateProperties(element, step, { ref: value || undefined }, commandStack) }
    getOptions={ () => options }
    validate={ validate } />;
}

/** Edit a list of materials ({id, name}): the materials of a control or the required materials of a power item. */
export function MaterialList(props) {
  const { element, id, owner, property, type, label, description } = props;
  const bpmnFactory = useService('bpmnFactory');
  const commandStack = useService('commandStack');
  const translate = useService('translate');
  const materials = owner.get(property);

  return <div class="liuhen-list">
    <ListEntry
      id={ id }
      element={ element }
      label={ translate(label) }
      items={ materials }
      component={ MaterialItem }
      onAdd={ () => addListItem(element, owner, property, bpmnFactory.create(type, {}), commandStack) }
      onRemove={ (material) => removeListItem(element, owner, property, material, commandStack) }
      autoFocusEntry={ `[data-entry-id="${id}-${materials.length - 1}-id"] input` }
      siblings={ materials }
      translate={ translate } />
    { description ? <div class="bio-properties-panel-description">{ translate(description) }</div> : null }
  </div>;
}

function MaterialItem(props) {
  const { element, id, index, item: material, open, siblings } = props;
  const translate = useService('translate');
  const itemId = `${id}-${index}`;

  const validateId = (value) => {
    const text = (value || '').trim();
    if (!text) {
      return translate('Required; enter an id unique in this list.');
    }
    if (/\s/.test(text)) {
      return translate('An id must not contain white space.');
    }
    const same = siblings.filter((other) => other !== material && other.get('id') === text);
    return same.length ? translate('The id {id} is already used in this list; choose another one.', { id: text })
      : null;
  };

  const entries = [
    { id: `${itemId}-id`, component: TextProperty, moddleElement: material, property: 'id',
      label: translate('Material ID'), validate: validateId },
    { id: `${itemId}-name`, component: TextProperty, moddleElement: material, property: 'name',
      label: translate('Material name'), validate: requiredText(translate) }
  ];

  return <CollapsibleEntry
    id={ itemId }
    element={ element }
    entries={ entries }
    label={ material.get('name') || material.get('id') || '' }
    open={ open }
    translate={ translate } />;
}
