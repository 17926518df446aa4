// Adds liuhen's groups to bpmn-js-properties-panel: form fields on user tasks, risk checkpoints and a step time
// limit on flow nodes, the time-limit clocks on user and manual tasks, and the power item on a process or its
// pool.

import { checkpointGroup } from './checkpoints';
import { clockGroup, showsClocks } from './clocks';
import { formFieldGroup, showsFormFields } from './form-fields';
import { powerItemGroup } from './power-item';
import { stepTimeLimitGroup } from './time-limits';
import { carriesCheckpoints, powerItemOwner } from '../model';

// Below the standard provider (priority 1000), so liuhen's groups follow the general ones.
const PRIORITY = 500;

export default class LiuhenPropertiesProvider {
  constructor(propertiesPanel, injector) {
    this._injector = injector;
    propertiesPanel.registerProvider(PRIORITY, this);
  }

  getGroups(element) {
    return (groups) => {
      const process = powerItemOwner(element);
      if (process) {
        groups.push(powerItemGroup(element, process, this._injector));
      }
      if (carriesCheckpoints(element)) {
        if (showsFormFields(element)) {
          groups.push(formFieldGroup(element, this._injector));
        }
        groups.push(checkpointGroup(element, this._injector));
        groups.push(stepTimeLimitGroup(element, this._injector));
        if (showsClocks(element)) {
          groups.push(clockGroup(element, this._injector));
        }
      }
      return groups;
    };
  }
}

LiuhenPropertiesProvider.$inject = [ 'propertiesPanel', 'injector' ];
