// The ingress gateway end to end in the local (manifests) lab: see ingress-suite.ts. Needs root.
import { ingressSuite } from './ingress-suite.js';
import { testLabName } from '../helpers/bookinfo.js';

ingressSuite({ lab: testLabName('inglab2'), kubernetes: false, tls: true, istio: true });
