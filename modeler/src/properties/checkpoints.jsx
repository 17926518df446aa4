// The risk checkpoints (liuhen:riskCheckpoint) of a flow node, as one list group of the panel.

import { ListGroup } from '@bpmn-io/properties-panel';
import { getBusinessObject } from 'bpmn-js/lib/util/ModelUtil';
import { useService } from 'bpmn-js-properties-panel';

import { CHECKPOINT, addExtensionElement, extensionValues, idCounts, removeExtensionElement } from '../model';
import { ControlList } from './controls';
import { LinesProperty, SelectProperty, TextAreaProperty, TextProperty, freshId, idValidator,
  requiredText } from './entries';

export const RISK_LEVELS = [ [ 'high', 'High' ], [ 'medium', 'Medium' ], [ 'low', 'Low' ] ];
export const RISK_CATEGORIES = [
  [ 'power_operation', 'Power-operation risk' ],
  [ 'institutional', 'Institutional risk' ],
  [ 'external_environment', 'External-environment risk' ]
];

export function checkpointGroup(element, injector) {
  const translate = injector.get('translate');
  const commandStack = injector.get('commandStack');
  const bpmnFactory = injector.get('bpmnFactory');
  const moddle = injector.get('moddle');
  const businessObject = getBusinessObject(element);
  const checkpoints = extensionValues(businessObject, CHECKPOINT);

  const items = checkpoints.map((checkpoint, index) => {
    const id = `liuhen-checkpoint-${index}`;
    const level = RISK_LEVELS.find(([ value ]) => value === checkpoint.get('level'));
    return {
      id,
      label: [ checkpoint.get('id'), level ? translate(level[1]) : null ].filter(Boolean).join(' · '),
      entries: checkpointEntries(id, checkpoint, translate),
      autoFocusEntry: `${id}-description`,
      remove: () => removeExtensionElement(element, businessObject, checkpoint, commandStack)
    };
  });

  const add = (event) => {
    event.stopPropagation();
    const checkpoint = bpmnFactory.create(CHECKPOINT, {
      id: freshId('RC_', idCounts(businessObject), moddle),
      level: 'medium',
      category: 'power_operation'
    });
    addExtensionElement(element, businessObject, checkpoint, bpmnFactory, commandStack);
  };

  return {
    id: 'liuhen-checkpoints',
    label: translate('Risk checkpoints'),
    component: ListGroup,
    items,
    add,
    shouldOpen: true,
    translate
  };
}

function checkpointEntries(idPrefix, checkpoint, translate) {
  const required = requiredText(translate);
  const choices = (pairs) => pairs.map(([ value, label ]) => ({ value, label: translate(label) }));

  return [
    { id: `${idPrefix}-id`, component: CheckpointId, checkpoint },
    { id: `${idPrefix}-level`, component: SelectProperty, moddleElement: checkpoint, property: 'level',
      label: translate('Risk level'), options: choices(RISK_LEVELS), validate: required },
    { id: `${idPrefix}-category`, component: SelectProperty, moddleElement: checkpoint, property: 'category',
      label: translate('Risk category'), options: choices(RISK_CATEGORIES), validate: required },
    { id: `${idPrefix}-description`, component: TextAreaProperty, moddleElement: checkpoint,
      property: 'description', label: translate('Description of the risk'), validate: required },
    { id: `${idPrefix}-manifestation`, component: TextAreaProperty, moddleElement: checkpoint,
      property: 'manifestation', label: translate('How the risk shows') },
    { id: `${idPrefix}-controlMeasure`, component: LinesProperty, moddleElement: checkpoint,
      property: 'controlMeasure', label: translate('Control measures'),
      description: translate('One measure per line.'),
      validate: (value) => (value && value.trim() ? null : translate('Add at least one control measure.')) },
    { id: `${idPrefix}-responsiblePost`, component: TextProperty, moddleElement: checkpoint,
      property: 'responsiblePost', label: translate('Responsible post') },
    { id: `${idPrefix}-supervisingLeader`, component: TextProperty, moddleElement: checkpoint,
      property: 'supervisingLeader', label: translate('Supervising leader') },
    { id: `${idPrefix}-controls`, component: ControlList, checkpoint }
  ];
}

function CheckpointId(props) {
  const { element, id, checkpoint } = props;
  const translate = useService('translate');

  return <TextProperty
    element={ element }
    id={ id }
    moddleElement={ checkpoint }
    property="id"
    label={ translate('Checkpoint ID') }
    validate={ idValidator(translate, idCounts(checkpoint), checkpoint.get('id')) }
    keepInvalid={ false } />;
}
