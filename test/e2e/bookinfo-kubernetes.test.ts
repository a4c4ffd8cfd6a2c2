// The bookinfo end-to-end suite against the Kubernetes-mode lab: the lab's API server, kubelets
// and EndpointSlice controller; agents and CA with --kubeconfig and the shipped RBAC; kubectl
// for label changes and pod add/remove; probes from the node. Needs root and kubectl.
import { bookinfoSuite } from './bookinfo-suite.js';
import { testLabName } from '../helpers/bookinfo.js';

bookinfoSuite({ lab: testLabName('klabe2e'), kubernetes: true });
