// The form fields (liuhen:formField) of a user task, as one list group of the panel. A field of type enum
// lists its allowed values as liuhen:option children, edited in a nested list.

import { CheckboxEntry, CollapsibleEntry, ListEntry, ListGroup } from '@bpmn-io/properties-panel';
import { getBusinessObject, is } from 'bpmn-js/lib/util/ModelUtil';
import { useService } from 'bpmn-js-properties-panel';

import { FORM_FIELD, OPTION, addExtensionElement, addListItem, extensionValues, removeExtensionElement,
  removeListItem, swapExtensionElements, updateProperties } from '../model';
import { ButtonEntry, SelectProperty, TextProperty, requiredText } from './entries';

// The engine's field types (engine/extension.py FIELD_TYPES) with the texts the panel shows for them.
export const FIELD_TYPES = [
  [ 'string', 'Single-line text' ],
  [ 'text', 'Multi-line text' ],
  [ 'boolean', 'Yes or no' ],
  [ 'integer', 'Whole number' ],
  [ 'decimal', 'Decimal number' ],
  [ 'date', 'Date' ],
  [ 'enum', 'Choice from a list' ]
];

// The field types that take min and max (engine/extension.py), and the numbers the engine reads as bounds.
const NUMBER_TYPES = [ 'integer', 'decimal' ];
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

// A field name becomes a case-data variable that conditions name, so it is an ASCII identifier.
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OPTION_VALUE = /^\S+$/;

/** Return whether the form fields group belongs on `element`: every user task, and any node that has fields. */
export function showsFormFields(element) {
  return is(element, 'bpmn:UserTask') || extensionValues(getBusinessObject(element), FORM_FIELD).length > 0;
}

export function formFieldGroup(element, injector) {
  const translate = injector.get('translate');
  const commandStack = injector.get('commandStack');
  const bpmnFactory = injector.get('bpmnFactory');
  const businessObject = getBusinessObject(element);
  const fields = extensionValues(businessObject, FORM_FIELD);

  const items = fields.map((field, index) => {
    const id = `liuhen-form-field-${index}`;
    const type = FIELD_TYPES.find(([ value ]) => value === field.get('type'));
    return {
      id,
      label: [ field.get('label') || field.get('name'), type ? translate(type[1]) : field.get('type') ]
        .filter(Boolean).join(' · '),
      entries: fieldEntries(id, field, fields, index, businessObject, translate),
      autoFocusEntry: `${id}-name`,
      remove: () => removeExtensionElement(element, businessObject, field, commandStack)
    };
  });

  // A new field goes after the last one, so that the fields stay together in the file and on the form.
  const add = (event) => {
    event.stopPropagation();
    const field = bpmnFactory.create(FORM_FIELD, { name: freshFieldName(fields), type: 'string' });
    const values = extensionValues(businessObject);
    const last = fields.length ? values.indexOf(fields[fields.length - 1]) + 1 : undefined;
    addExtensionElement(element, businessObject, field, bpmnFactory, commandStack, last);
  };

  return {
    id: 'liuhen-form-fields',
    label: translate('Form fields'),
    component: ListGroup,
    items,
    add,
    shouldOpen: true,
    translate
  };
}

function freshFieldName(fields) {
  const usedNames = new Set(fields.map((field) => field.get('name')));
  let number = fields.length + 1;
  while (usedNames.has(`field_${number}`)) {
    number += 1;
  }
  return `field_${number}`;
}

function fieldEntries(idPrefix, field, fields, index, businessObject, translate) {
  const entries = [
    { id: `${idPrefix}-name`, component: TextProperty, moddleElement: field, property: 'name',
      label: translate('Field name'),
      description: translate('Case data stores the value under this name, and conditions of later flows read it.'),
      validate: fieldNameValidator(translate, fields, field), keepInvalid: false },
    { id: `${idPrefix}-label`, component: TextProperty, moddleElement: field, property: 'label',
      label: translate('Label'), description: translate('Shown on the form.'), validate: requiredText(translate) },
    { id: `${idPrefix}-type`, component: FieldType, field },
    { id: `${idPrefix}-required`, component: FieldRequired, field }
  ];
  if (NUMBER_TYPES.includes(field.get('type')) || field.get('min') !== undefined || field.get('max') !== undefined) {
    entries.push(
      { id: `${idPrefix}-min`, component: TextProperty, moddleElement: field, property: 'min',
        label: translate('Smallest value'), description: translate('Inclusive. Leave empty for no lower bound.'),
        validate: boundValidator(translate, field, 'min'), keepInvalid: false },
      { id: `${idPrefix}-max`, component: TextProperty, moddleElement: field, property: 'max',
        label: translate('Largest value'), description: translate('Inclusive. Leave empty for no upper bound.'),
        validate: boundValidator(translate, field, 'max'), keepInvalid: false });
  }
  if (field.get('type') === 'enum' || field.get('option').length) {
    entries.push({ id: `${idPrefix}-options`, component: OptionList, field });
  }
  if (index > 0) {
    entries.push({ id: `${idPrefix}-move-up`, component: MoveButton, label: translate('Move up'),
      businessObject, field, neighbour: fields[index - 1] });
  }
  if (index < fields.length - 1) {
    entries.push({ id: `${idPrefix}-move-down`, component: MoveButton, label: translate('Move down'),
      businessObject, field, neighbour: fields[index + 1] });
  }
  return entries;
}

/** Validate the bound `property` (min or max): empty, or a number on a number field, and min not above max. */
function boundValidator(translate, field, property) {
  return (value) => {
    if (!value) {
      return null;
    }
    if (!NUMBER_TYPES.includes(field.get('type'))) {
      return translate('Only whole and decimal number fields take bounds. Clear this value or change the type.');
    }
    if (!NUMBER.test(value.trim())) {
      return translate('Enter a number, such as 0.01.');
    }
    const bounds = { min: field.get('min'), max: field.get('max'), [property]: value.trim() };
    if (bounds.min !== undefined && bounds.max !== undefined && Number(bounds.min) > Number(bounds.max)) {
      return translate('The smallest value is above the largest value; correct one of them.');
    }
    return null;
  };
}

/** Validate a field name: an identifier, and not the name of another field of the same step. */
function fieldNameValidator(translate, fields, field) {
  return (value) => {
    if (!value) {
      return translate('Required; enter a name of letters, digits and underscores.');
    }
    if (!FIELD_NAME.test(value)) {
      return translate('Use letters, digits and underscores, starting with a letter or underscore.');
    }
    if (fields.some((other) => other !== field && other.get('name') === value)) {
      return translate('The field {name} already exists in this step; choose another name.', { name: value });
    }
    return null;
  };
}

function FieldType(props) {
  const { element, id, field } = props;
  const commandStack = useService('commandStack');
  const translate = useService('translate');

  // Leaving type enum drops the options, because liuhen.xsd allows options only on an enum field. The engine
  // itself ignores options on other types.
  const changeType = (value) => {
    const properties = { type: value || undefined };
    if (value !== 'enum' && field.get('option').length) {
      properties.option = [];
    }
    // The engine rejects bounds on a field that is not a number.
    if (!NUMBER_TYPES.includes(value)) {
      properties.min = undefined;
      properties.max = undefined;
    }
    updateProperties(element, field, properties, commandStack);
  };

  return <SelectProperty
    element={ element }
    id={ id }
    moddleElement={ field }
    property="type"
    label={ translate('Type') }
    options={ FIELD_TYPES.map(([ value, label ]) => ({ value, label: translate(label) })) }
    validate={ requiredText(translate) }
    onChange={ changeType } />;
}

function FieldRequired(props) {
  const { element, id, field } = props;
  const commandStack = useService('commandStack');
  const translate = useService('translate');

  // An optional field leaves the attribute out, since false is its default.
  return <CheckboxEntry
    element={ element }
    id={ id }
    label={ translate('Required') }
    getValue={ () => field.get('required') === 'true' }
    setValue={ (value) => updateProperties(element, field, { required: value ? 'true' : undefined }, commandStack) } />;
}

function MoveButton(props) {
  const { element, id, label, businessObject, field, neighbour } = props;
  const commandStack = useService('commandStack');

  return <ButtonEntry
    id={ id }
    label={ label }
    onClick={ () => swapExtensionElements(element, businessObject, field, neighbour, commandStack) } />;
}

function OptionList(props) {
  const { element, id, field } = props;
  const bpmnFactory = useService('bpmnFactory');
  const commandStack = useService('commandStack');
  const translate = useService('translate');
  const options = field.get('option');

  let message = null;
  if (field.get('type') !== 'enum') {
    message = translate('Only a field of type {type} takes options. Remove them or change the type.',
      { type: translate('Choice from a list') });
  } else if (!options.length) {
    message = translate('Add at least one option.');
  }

  return <div class="liuhen-list">
    <ListEntry
      id={ id }
      element={ element }
      label={ translate('Options') }
      items={ options }
      component={ OptionItem }
      onAdd={ () => addListItem(element, field, 'option', bpmnFactory.create(OPTION, {}), commandStack) }
      onRemove={ (option) => removeListItem(element, field, 'option', option, commandStack) }
      autoFocusEntry={ `[data-entry-id="${id}-${options.length - 1}-value"] input` }
      siblings={ options }
      translate={ translate } />
    { message ? <div class="bio-properties-panel-error">{ message }</div> : null }
  </div>;
}

function OptionItem(props) {
  const { element, id, index, item: option, open, siblings } = props;
  const translate = useService('translate');
  const itemId = `${id}-${index}`;

  const validateValue = (value) => {
    if (!value) {
      return translate('Required; enter a value unique in this list.');
    }
    if (!OPTION_VALUE.test(value)) {
      return translate('A value must not contain white space.');
    }
    const same = siblings.some((other) => other !== option && other.get('value') === value);
    return same ? translate('The value {value} is already used in this list; choose another one.', { value })
      : null;
  };

  const entries = [
    { id: `${itemId}-value`, component: TextProperty, moddleElement: option, property: 'value',
      label: translate('Value'), description: translate('Stored in case data and compared in conditions.'),
      validate: validateValue },
    { id: `${itemId}-label`, component: TextProperty, moddleElement: option, property: 'label',
      label: translate('Label'), description: translate('Shown on the form.'), validate: requiredText(translate) }
  ];

  return <CollapsibleEntry
    id={ itemId }
    element={ element }
    entries={ entries }
    label={ option.get('label') || option.get('value') || '' }
    open={ open }
    translate={ translate } />;
}
