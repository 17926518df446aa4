// Time limits (amount and unit): the statutory and promised limits of a power item and the time limit
// (liuhen:timeLimit) of one step.

import { Group, TextFieldEntry } from '@bpmn-io/properties-panel';
import { getBusinessObject } from 'bpmn-js/lib/util/ModelUtil';
import { useService } from 'bpmn-js-properties-panel';

import { TIME_LIMIT, addExtensionElement, extensionValues, removeExtensionElement, updateProperties } from '../model';
import { SelectProperty } from './entries';

export const TIME_UNITS = [
  [ 'working_day', 'Working days' ],
  [ 'day', 'Calendar days' ],
  [ 'month', 'Months' ]
];

/**
 * Return the two entries (amount, unit) of one time limit. `limit` is the accessor object
 * {get, create, remove}: clearing the amount removes the element, entering one creates it.
 */
export function timeLimitEntries(idPrefix, label, limit) {
  return [
    { id: `${idPrefix}-amount`, component: TimeLimitAmount, label, limit },
    { id: `${idPrefix}-unit`, component: TimeLimitUnit, limit }
  ];
}

function TimeLimitAmount(props) {
  const { element, id, label, limit } = props;
  const commandStack = useService('commandStack');
  const debounce = useService('debounceInput');
  const translate = useService('translate');

  // An invalid amount is shown with its error but not written, so the file keeps the last valid one.
  const setValue = (value, error) => {
    const current = limit.get();
    if (!value) {
      if (current) {
        limit.remove();
      }
      return;
    }
    if (error) {
      return;
    }
    if (current) {
      updateProperties(element, current, { amount: value }, commandStack);
    } else {
      limit.create(value);
    }
  };

  return <TextFieldEntry
    element={ element }
    id={ id }
    label={ label }
    description={ translate('Leave empty for no time limit.') }
    getValue={ () => (limit.get() ? limit.get().get('amount') || '' : '') }
    setValue={ setValue }
    validate={ (value) => (value ? amountError(value, translate) : null) }
    debounce={ debounce } />;
}

function amountError(value, translate) {
  return /^\d+$/.test(value) && Number(value) > 0 ? null : translate('Enter a whole number above zero.');
}

function TimeLimitUnit(props) {
  const { element, id, limit } = props;
  const translate = useService('translate');
  const current = limit.get();

  return <SelectProperty
    element={ element }
    id={ id }
    moddleElement={ current || { get: () => '' } }
    property="unit"
    label={ translate('Unit') }
    options={ TIME_UNITS.map(([ value, text ]) => ({ value, label: translate(text) })) }
    disabled={ !current } />;
}

/** Return the panel group that edits the time limit of one step. */
export function stepTimeLimitGroup(element, injector) {
  const translate = injector.get('translate');
  const bpmnFactory = injector.get('bpmnFactory');
  const commandStack = injector.get('commandStack');
  const businessObject = getBusinessObject(element);

  const limit = {
    get: () => extensionValues(businessObject, TIME_LIMIT)[0] || null,
    create: (amount) => addExtensionElement(element, businessObject,
      bpmnFactory.create(TIME_LIMIT, { amount, unit: 'working_day' }), bpmnFactory, commandStack),
    remove: () => removeExtensionElement(element, businessObject, limit.get(), commandStack)
  };

  return {
    id: 'liuhen-time-limit',
    label: translate('Step time limit'),
    component: Group,
    entries: timeLimitEntries('liuhen-time-limit', translate('Time limit of this step'), limit)
  };
}

/** Accessors for a time limit held in a property of `owner`, such as statutoryTimeLimit of a power item. */
export function propertyTimeLimit(element, owner, property, type, bpmnFactory, commandStack) {
  return {
    get: () => owner.get(property) || null,
    create: (amount) => {
      const created = bpmnFactory.create(type, { amount, unit: 'working_day' });
      created.$parent = owner;
      updateProperties(element, owner, { [property]: created }, commandStack);
    },
    remove: () => updateProperties(element, owner, { [property]: undefined }, commandStack)
  };
}
