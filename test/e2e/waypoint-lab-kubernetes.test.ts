// Issue 11's "done when" in the Kubernetes-mode lab (its API server, kubelets, EndpointSlices;
// agents and the waypoint with --kubeconfig); see waypoint-suite.ts. Needs root and kubectl.
import { waypointSuite } from './waypoint-suite.js';

waypointSuite({ lab: 'audit2', kubernetes: true });
