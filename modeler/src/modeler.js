// bpmn-js with the properties panel, liuhen's descriptor and panel groups, and the translation table.

import BpmnModeler from 'bpmn-js/lib/Modeler';
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from 'bpmn-js-properties-panel';

import { DanglingReferencesModule } from './dangling-references';
import FlushableDebounceModule from './flushable-debounce';
import { KeepUnrenderedDiModule } from './keep-unrendered-di';
import liuhenDescriptor from './liuhen-moddle.json';
import LiuhenPropertiesProvider from './properties/provider';

const LiuhenPropertiesModule = {
  __init__: [ 'liuhenPropertiesProvider' ],
  liuhenPropertiesProvider: [ 'type', LiuhenPropertiesProvider ]
};

export function createModeler({ canvas, properties, translate }) {
  return new BpmnModeler({
    container: canvas,
    propertiesPanel: { parent: properties },
    additionalModules: [
      BpmnPropertiesPanelModule,
      BpmnPropertiesProviderModule,

      // After the properties panel, so that its debounceInput service is the one replaced.
      FlushableDebounceModule,
      LiuhenPropertiesModule,
      DanglingReferencesModule,
      KeepUnrenderedDiModule,
      { translate: [ 'value', translate ] }
    ],
    moddleExtensions: { liuhen: liuhenDescriptor }
  });
}
