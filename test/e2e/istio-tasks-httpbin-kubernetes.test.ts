// Istio's httpbin tasks on the Kubernetes-mode lab (istio-tasks-httpbin-suite.ts): Istio's CRDs
// installed with kubectl (examples/istio-crds), then every task's manifests applied and deleted
// with the real kubectl against the lab's API server. Needs root and kubectl.
import { httpbinTasksSuite } from './istio-tasks-httpbin-suite.js';

httpbinTasksSuite({ name: 'ktasks2', kubernetes: true });
