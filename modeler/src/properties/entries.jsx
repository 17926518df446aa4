// Entry components that edit one attribute or text child of a liuhen moddle element.

import { SelectEntry, TextAreaEntry, TextFieldEntry } from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';

import { updateProperties } from '../model';

const WHITE_SPACE = /\s/;

/**
 * Edit a one-line text property. With `keepInvalid` false, a value that fails `validate` is shown with its
 * error but not written to the model, which suits ids that other elements point at. `onWrite`, when
 * given, writes the value in place of a plain property update.
 */
export function TextProperty(props) {
  const { element, id, moddleElement, property, label, description, validate, keepInvalid = true, onWrite } = props;
  const commandStack = useService('commandStack');
  const debounce = useService('debounceInput');

  const setValue = (value, error) => {
    if (error && !keepInvalid) {
      return;
    }
    if (onWrite) {
      onWrite(value || undefined);
      return;
    }
    updateProperties(element, moddleElement, { [property]: value || undefined }, commandStack);
  };

  return <TextFieldEntry
    element={ element }
    id={ id }
    label={ label }
    description={ description }
    getValue={ () => moddleElement.get(property) || '' }
    setValue={ setValue }
    validate={ validate }
    debounce={ debounce } />;
}

/** Edit a multi-line text property. */
export function TextAreaProperty(props) {
  const { element, id, moddleElement, property, label, description, validate } = props;
  const commandStack = useService('commandStack');
  const debounce = useService('debounceInput');

  return <TextAreaEntry
    element={ element }
    id={ id }
    label={ label }
    description={ description }
    getValue={ () => moddleElement.get(property) || '' }
    setValue={ (value) => updateProperties(element, moddleElement, { [property]: value || undefined }, commandStack) }
    validate={ validate }
    debounce={ debounce }
    autoResize />;
}

/**
 * Edit a repeated text child (such as liuhen:controlMeasure or liuhen:legalBasis) as one line per
 * element. Empty lines are dropped.
 */
export function LinesProperty(props) {
  const { element, id, moddleElement, property, label, description, validate } = props;
  const commandStack = useService('commandStack');
  const debounce = useService('debounceInput');

  const setValue = (value) => {
    const lines = (value || '').split('\n').map((line) => line.trim()).filter(Boolean);
    updateProperties(element, moddleElement, { [property]: lines }, commandStack);
  };

  return <TextAreaEntry
    element={ element }
    id={ id }
    label={ label }
    description={ description }
    getValue={ () => moddleElement.get(property).join('\n') }
    setValue={ setValue }
    validate={ validate }
    debounce={ debounce }
    autoResize />;
}

/** Edit a property whose value is chosen from a fixed list of `options` ({value, label}). */
export function SelectProperty(props) {
  const { element, id, moddleElement, property, label, description, options, validate, disabled, onChange } = props;
  const commandStack = useService('commandStack');

  const setValue = (value) => {
    if (onChange) {
      onChange(value);
      return;
    }
    updateProperties(element, moddleElement, { [property]: value || undefined }, commandStack);
  };

  return <SelectEntry
    element={ element }
    id={ id }
    label={ label }
    description={ description }
    getValue={ () => moddleElement.get(property) || '' }
    setValue={ setValue }
    getOptions={ () => withCurrentValue(options, moddleElement.get(property)) }
    validate={ validate }
    disabled={ disabled } />;
}

/** Keep a value the list does not offer selectable, so that opening a file never changes it silently. */
function withCurrentValue(options, current) {
  if (!current || options.some((option) => option.value === current)) {
    return options;
  }
  return [ ...options, { value: current, label: current } ];
}

export function requiredText(translate) {
  return (value) => (value && value.trim() ? null : translate('Required; enter a value.'));
}

/** Validate an id: required, without white space, and not used by any other element of the file. */
export function idValidator(translate, counts, current) {
  return (value) => {
    if (!value) {
      return translate('Required; enter an id unique in the file.');
    }
    if (WHITE_SPACE.test(value)) {
      return translate('An id must not contain white space.');
    }
    const others = (counts.get(value) || 0) - (value === current ? 1 : 0);
    if (others > 0) {
      return translate('The id {id} is already used in this file; choose another one.', { id: value });
    }
    return null;
  };
}

/** Return an id with `prefix` and a random suffix that no element of the file uses yet. */
export function freshId(prefix, counts, moddle) {
  for (;;) {
    const candidate = prefix + Math.random().toString(36).slice(2, 9);
    if (!counts.has(candidate) && !(moddle.ids && moddle.ids.assigned(candidate))) {
      return candidate;
    }
  }
}

/** Show a button as a panel entry, for actions such as adding or removing a whole element. */
export function ButtonEntry(props) {
  const { id, label, description, onClick, danger } = props;

  return <div class="bio-properties-panel-entry liuhen-button-entry" data-entry-id={ id }>
    <button type="button" class={ danger ? 'liuhen-button liuhen-button-danger' : 'liuhen-button' }
      onClick={ onClick }>{ label }</button>
    { description ? <div class="bio-properties-panel-description">{ description }</div> : null }
  </div>;
}
