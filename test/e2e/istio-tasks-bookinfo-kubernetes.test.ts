// Istio's Bookinfo tasks on the Kubernetes-mode lab (istio-tasks-bookinfo-suite.ts): Istio's CRDs
// installed with kubectl (examples/istio-crds), then every task's manifests applied and deleted
// with the real kubectl against the lab's API server. Needs root and kubectl.
import { bookinfoTasksSuite } from './istio-tasks-bookinfo-suite.js';

bookinfoTasksSuite({ name: 'ktasks1', kubernetes: true });
