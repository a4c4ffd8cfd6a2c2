// The ingress gateway end to end in the Kubernetes-mode lab (ingress-suite.ts): the waypoint
// controller deploys the gateway for the Gateway of class weft, the lab's load balancer
// controller (external-controller.ts) gives its Service an external address and writes it to the
// Service's and the Gateway's status. Needs root.
import { ingressSuite } from './ingress-suite.js';
import { testLabName } from '../helpers/bookinfo.js';

ingressSuite({ lab: testLabName('inglabk'), kubernetes: true, tls: true, istio: false });
