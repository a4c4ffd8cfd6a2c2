// Istio's httpbin tasks on the local-source lab (istio-tasks-httpbin-suite.ts). Needs root.
import { httpbinTasksSuite } from './istio-tasks-httpbin-suite.js';

httpbinTasksSuite({ name: 'tasks2', kubernetes: false });
