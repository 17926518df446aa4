// The case clocks of one step: liuhen:clockPause stops the statutory and promised time limits while the
// step is open, and liuhen:clockStart restarts them when the step (acceptance, 受理) is completed.

import { CheckboxEntry, Group, SelectEntry, isCheckboxEntryEdited, isSelectEntryEdited } from '@bpmn-io/properties-panel';
import { getBusinessObject, is } from 'bpmn-js/lib/util/ModelUtil';
import { useService } from 'bpmn-js-properties-panel';

import { CLOCK_PAUSE, CLOCK_START, addExtensionElement, extensionValues, removeExtensionElement,
  updateProperties } from '../model';

// The engine's pause reasons (engine/extension.py CLOCK_PAUSE_REASONS), periods that 行政许可法 §45 excludes
// from the limits.
export const CLOCK_PAUSE_REASONS = [
  [ 'expert_review', 'Expert review' ],
  [ 'hearing', 'Hearing' ],
  [ 'testing', 'Testing, inspection or quarantine' ],
  [ 'appraisal', 'Appraisal' ],
  [ 'tendering', 'Tendering or auction' ],
  [ 'other', 'Another period the law excludes' ]
];

// The engine rejects clockPause and clockStart on any other kind of element (engine/extension.py
// CLOCK_TASK_KINDS).
const CLOCK_TASKS = [ 'bpmn:UserTask', 'bpmn:ManualTask' ];

function takesClocks(element) {
  return CLOCK_TASKS.some((type) => is(element, type));
}

/**
 * Return whether the clock group belongs on `element`: user and manual tasks, and any other node that
 * already carries a clock element, so that the designer can see and remove it.
 */
export function showsClocks(element) {
  const businessObject = getBusinessObject(element);
  return takesClocks(element) || extensionValues(businessObject, CLOCK_PAUSE).length > 0 ||
    extensionValues(businessObject, CLOCK_START).length > 0;
}

export function clockGroup(element, injector) {
  const translate = injector.get('translate');

  const entries = [
    { id: 'liuhen-clock-pause', component: ClockPause, isEdited: isSelectEntryEdited },
    { id: 'liuhen-clock-start', component: ClockStart, isEdited: isCheckboxEntryEdited }
  ];
  if (!takesClocks(element)) {
    entries.push({ id: 'liuhen-clock-misplaced', component: Misplaced });
  }

  return {
    id: 'liuhen-clocks',
    label: translate('Time-limit clocks'),
    component: Group,
    entries
  };
}

function ClockPause(props) {
  const { element, id } = props;
  const bpmnFactory = useService('bpmnFactory');
  const commandStack = useService('commandStack');
  const translate = useService('translate');
  const businessObject = getBusinessObject(element);
  const pause = extensionValues(businessObject, CLOCK_PAUSE)[0];

  // The empty choice removes the element. A reason creates the element or changes the existing one.
  const setValue = (value) => {
    if (!value) {
      if (pause) {
        removeExtensionElement(element, businessObject, pause, commandStack);
      }
      return;
    }
    if (pause) {
      updateProperties(element, pause, { reason: value }, commandStack);
    } else {
      addExtensionElement(element, businessObject, bpmnFactory.create(CLOCK_PAUSE, { reason: value }), bpmnFactory,
        commandStack);
    }
  };

  const getOptions = () => {
    const options = [ { value: '', label: translate('(no pause)') } ].concat(
      CLOCK_PAUSE_REASONS.map(([ value, label ]) => ({ value, label: translate(label) })));
    const current = pause && pause.get('reason');
    if (current && !CLOCK_PAUSE_REASONS.some(([ value ]) => value === current)) {
      options.push({ value: current, label: current });
    }
    return options;
  };

  const validate = (value) => {
    if (pause && !CLOCK_PAUSE_REASONS.some(([ reason ]) => reason === value)) {
      return translate('Choose a reason from the list.');
    }
    return null;
  };

  return <SelectEntry
    element={ element }
    id={ id }
    label={ translate('Pause the clocks while this step is open') }
    description={ translate('The period counts towards neither the statutory nor the promised time limit.') }
    getValue={ () => (pause ? pause.get('reason') || '' : '') }
    setValue={ setValue }
    getOptions={ getOptions }
    validate={ validate } />;
}

function ClockStart(props) {
  const { element, id } = props;
  const bpmnFactory = useService('bpmnFactory');
  const commandStack = useService('commandStack');
  const translate = useService('translate');
  const businessObject = getBusinessObject(element);
  const start = extensionValues(businessObject, CLOCK_START)[0];

  const setValue = (checked) => {
    if (checked && !start) {
      addExtensionElement(element, businessObject, bpmnFactory.create(CLOCK_START, {}), bpmnFactory, commandStack);
    } else if (!checked && start) {
      removeExtensionElement(element, businessObject, start, commandStack);
    }
  };

  return <CheckboxEntry
    element={ element }
    id={ id }
    label={ translate('Restart the clocks when this step is completed') }
    description={ translate(
      'For the acceptance step: the statutory and promised time limits count again from its completion.') }
    getValue={ () => Boolean(start) }
    setValue={ setValue } />;
}

function Misplaced(props) {
  const { id } = props;
  const translate = useService('translate');

  return <div class="bio-properties-panel-entry" data-entry-id={ id }>
    <div class="bio-properties-panel-error">
      { translate(
        'Only a user task or manual task may pause or restart the clocks, so deploying rejects this element.') }
    </div>
  </div>;
}
