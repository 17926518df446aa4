// Entry point of the modeler bundle (api/static/modeler/modeler.js and modeler.css).

import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn.css';
import '@bpmn-io/properties-panel/dist/assets/properties-panel.css';
import './modeler.css';

import { startModelerPage } from './page';

startModelerPage(document);
