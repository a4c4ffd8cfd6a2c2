// Istio's Bookinfo tasks on the local-source lab (istio-tasks-bookinfo-suite.ts). Needs root.
import { bookinfoTasksSuite } from './istio-tasks-bookinfo-suite.js';

bookinfoTasksSuite({ name: 'tasks1', kubernetes: false });
