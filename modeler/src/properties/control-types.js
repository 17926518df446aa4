// The executable control types of liuhen:control and the attributes each one takes. Deploying a file
// checks them again on the server; the panel marks mistakes while the designer types.

/**
 * Parameter attributes. `kind` selects the check: `field` is the name of a case data field, `integer` a
 * whole number of at least `min`, `number` a non-negative number, `words` values separated by spaces.
 */
export const PARAMETERS = {
  decisionField: { kind: 'field', label: 'Decision field',
    description: 'Case data field that contains the decision.' },
  reasonField: { kind: 'field', label: 'Reason field',
    description: 'Case data field that contains the written reason.' },
  decisions: { kind: 'words', label: 'Decisions that need a reason',
    description: 'Decision values separated by spaces, for example: refuse return' },
  minLength: { kind: 'integer', min: 1, label: 'Minimum reason length',
    description: 'Minimum number of characters in the reason.' },
  approvers: { kind: 'integer', min: 1, label: 'Distinct approvers',
    description: 'How many different people must decide on this step.' },
  onDisagreement: { kind: 'text', label: 'On disagreement',
    description: 'majority, or the decision value that applies when the approvers disagree.' },
  tieBreak: { kind: 'text', label: 'On a tie',
    description: 'Decision value that a tie leads to; needed when disagreements are settled by majority.',
    requiredWhen: (control) => control.get('onDisagreement') === 'majority' },
  field: { kind: 'field', label: 'Case data field',
    description: 'Case data field that the rule reads.' },
  threshold: { kind: 'number', label: 'Threshold',
    description: 'Amount above which the rule applies.' },
  partyField: { kind: 'field', label: 'Party field',
    description: 'Case data field that names the party, such as the supplier.' },
  windowDays: { kind: 'integer', min: 1, label: 'Window in days',
    description: 'Cases of the same party within this many days are added up.' },
  workingDays: { kind: 'integer', min: 1, label: 'Publicity period in working days',
    description: 'Working days that must pass before the step can be completed.' },
  correctionValue: { kind: 'text', label: 'Correction decision value',
    description: 'Decision value that issues one correction notice listing every missing material.' }
};

// requiredMaterials takes decisionField and correctionValue together or neither.
const MATERIAL_PAIR = {
  decisionField: (control) => Boolean(control.get('correctionValue')),
  correctionValue: (control) => Boolean(control.get('decisionField'))
};

/**
 * Per type: its label, its parameters (`required` ones must be filled in, `requiredWhen` ones depending on
 * the others), whether it names steps (`some`: at least one, `one`: at most one) or materials, and
 * whether it is always soft.
 */
export const CONTROL_TYPES = {
  separationOfDuties: {
    label: 'Separation of duties',
    description: 'The actor must differ from whoever completed the named earlier steps of the case.',
    parameters: [], required: [], steps: 'some'
  },
  reasonedDecision: {
    label: 'Reasoned decision',
    description: 'A decision listed here needs a written reason of a minimum length.',
    parameters: [ 'decisionField', 'reasonField', 'decisions', 'minLength' ],
    required: [ 'decisionField', 'reasonField', 'decisions' ]
  },
  quorum: {
    label: 'Quorum',
    description: 'The step needs several distinct approvers.',
    parameters: [ 'approvers', 'decisionField', 'onDisagreement', 'tieBreak', 'reasonField' ],
    required: [ 'approvers', 'decisionField', 'onDisagreement' ]
  },
  amountThreshold: {
    label: 'Amount threshold',
    description: 'Above the threshold, the named collective-decision step must have been completed.',
    parameters: [ 'field', 'threshold' ], required: [ 'field', 'threshold' ], steps: 'some'
  },
  splitDetection: {
    label: 'Split detection',
    description: 'Cases of the same party that stay below the threshold one by one but exceed it together '
      + 'raise a risk event.',
    parameters: [ 'field', 'partyField', 'threshold', 'windowDays' ],
    required: [ 'field', 'partyField', 'threshold', 'windowDays' ], alwaysSoft: true
  },
  recusal: {
    label: 'Recusal',
    description: 'The actor declares any relation to the applicant; "none" passes.',
    parameters: [ 'field' ], required: [ 'field' ]
  },
  publicityPeriod: {
    label: 'Publicity period',
    description: 'The step cannot be completed before the period has passed since the named step, '
      + 'or since this task became ready.',
    parameters: [ 'workingDays' ], required: [ 'workingDays' ], steps: 'one'
  },
  requiredMaterials: {
    label: 'Required materials',
    description: 'Each material must be marked present, unless the decision is the correction value.',
    parameters: [ 'field', 'decisionField', 'correctionValue' ], required: [ 'field' ], materials: true,
    requiredWhen: MATERIAL_PAIR
  }
};

const INTEGER = /^\d+$/;
const NUMBER = /^\d+(\.\d+)?$/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Tell whether `name` must be filled in on `control`, whose type definition is `type`. */
export function isRequired(type, name, control) {
  const condition = (type.requiredWhen && type.requiredWhen[name]) || PARAMETERS[name].requiredWhen;
  return type.required.includes(name) || Boolean(condition && condition(control));
}

/** Return the error message for one parameter value, or null when it is acceptable. */
export function parameterError(name, value, required, translate) {
  const parameter = PARAMETERS[name];
  const text = (value || '').trim();

  if (!text) {
    return required ? translate('Required for this control type; enter a value.') : null;
  }
  if (parameter.kind === 'integer' && (!INTEGER.test(text) || Number(text) < parameter.min)) {
    return translate('Enter a whole number of at least {min}.', { min: parameter.min });
  }
  if (parameter.kind === 'number' && !NUMBER.test(text)) {
    return translate('Enter a number, such as 10000 or 2500.50.');
  }
  if (parameter.kind === 'field' && !IDENTIFIER.test(text)) {
    return translate('Enter a field name: letters, digits and underscores, starting with a letter.');
  }
  return null;
}
