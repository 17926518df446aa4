// The power item (liuhen:powerItem) of a process: the catalogue entry and the header fields a published
// flowchart shows. Selecting the process, or its pool, shows this group.

import { Group } from '@bpmn-io/properties-panel';

import { POWER_ITEM, addExtensionElement, extensionValues, removeExtensionElement, updateProperties } from '../model';
import { MaterialList } from './controls';
import { ButtonEntry, LinesProperty, SelectProperty, TextProperty, requiredText } from './entries';
import { propertyTimeLimit, timeLimitEntries } from './time-limits';

const KINDS = [
  [ 'external', 'External: a service or licence the public applies for' ],
  [ 'internal', 'Internal: a matter run inside the body' ]
];
const CHANNEL_FIELDS = [ [ 'phone', 'Supervision phone' ], [ 'mailbox', 'Supervision mailbox' ],
  [ 'address', 'Supervision address' ] ];

export function powerItemGroup(element, process, injector) {
  const translate = injector.get('translate');
  const bpmnFactory = injector.get('bpmnFactory');
  const commandStack = injector.get('commandStack');
  const powerItem = extensionValues(process, POWER_ITEM)[0];

  const group = { id: 'liuhen-power-item', label: translate('Power item'), component: Group, shouldOpen: true };

  if (!powerItem) {
    const create = () => addExtensionElement(element, process,
      bpmnFactory.create(POWER_ITEM, { kind: 'internal', legalBasis: [] }), bpmnFactory, commandStack);
    return { ...group, entries: [ {
      id: 'liuhen-power-item-create', component: ButtonEntry, label: translate('Add power item'),
      description: translate('Every deployed process needs the power item it implements.'), onClick: create
    } ] };
  }

  const required = requiredText(translate);
  const text = (property, label, options = {}) => ({
    id: `liuhen-power-item-${property}`, component: TextProperty, moddleElement: powerItem, property,
    label: translate(label), ...options
  });

  const entries = [
    text('code', 'Catalogue code', {
      validate: (value) => required(value) || (/\s/.test(value) ? translate('A code must not contain white space.')
        : null)
    }),
    { id: 'liuhen-power-item-kind', component: SelectProperty, moddleElement: powerItem, property: 'kind',
      label: translate('Kind of flowchart'), validate: required,
      options: KINDS.map(([ value, label ]) => ({ value, label: translate(label) })) },
    text('category', 'Category', { description: translate('For example 行政许可 or 内部管理（财务）.') }),
    text('name', 'Name of the power item', { validate: required }),
    text('handlingBody', 'Handling body', { validate: required }),
    text('responsibleSubject', 'Responsible subject'),
    { id: 'liuhen-power-item-legalBasis', component: LinesProperty, moddleElement: powerItem,
      property: 'legalBasis', label: translate('Legal basis'), description: translate('One legal basis per line.'),
      validate: (value) => (value && value.trim() ? null : translate('Add at least one legal basis.')) },
    ...timeLimitEntries('liuhen-power-item-statutory', translate('Statutory time limit'),
      propertyTimeLimit(element, powerItem, 'statutoryTimeLimit', 'liuhen:StatutoryTimeLimit', bpmnFactory,
        commandStack)),
    ...timeLimitEntries('liuhen-power-item-promised', translate('Promised time limit'),
      propertyTimeLimit(element, powerItem, 'promisedTimeLimit', 'liuhen:PromisedTimeLimit', bpmnFactory,
        commandStack)),
    ...CHANNEL_FIELDS.map(([ attribute, label ]) => ({
      id: `liuhen-power-item-channel-${attribute}`, component: ChannelProperty, powerItem, attribute,
      label: translate(label), bpmnFactory, commandStack
    })),
    { id: 'liuhen-power-item-materials', component: MaterialList, owner: powerItem, property: 'requiredMaterial',
      type: 'liuhen:RequiredMaterial', label: 'Required materials' },
    text('fee', 'Fee', { description: translate('For example 不收费.') }),
    { id: 'liuhen-power-item-remove', component: ButtonEntry, label: translate('Remove power item'), danger: true,
      onClick: () => removeExtensionElement(element, process, powerItem, commandStack) }
  ];

  return { ...group, entries };
}

/**
 * Edit one attribute of liuhen:supervisionChannel. The element is created with the first value and removed
 * when its last attribute is cleared.
 */
function ChannelProperty(props) {
  const { element, id, powerItem, attribute, label, bpmnFactory, commandStack } = props;
  const channel = powerItem.get('supervisionChannel');

  const holder = {
    get: (name) => (channel ? channel.get(name) : undefined)
  };
  const write = {
    set: (value) => {
      if (!channel) {
        if (!value) {
          return;
        }
        const created = bpmnFactory.create('liuhen:SupervisionChannel', { [attribute]: value });
        created.$parent = powerItem;
        updateProperties(element, powerItem, { supervisionChannel: created }, commandStack);
        return;
      }
      const others = CHANNEL_FIELDS.some(([ name ]) => name !== attribute && channel.get(name));
      if (!value && !others) {
        updateProperties(element, powerItem, { supervisionChannel: undefined }, commandStack);
        return;
      }
      updateProperties(element, channel, { [attribute]: value || undefined }, commandStack);
    }
  };

  return <TextProperty
    element={ element }
    id={ id }
    moddleElement={ holder }
    property={ attribute }
    label={ label }
    onWrite={ write.set } />;
}
