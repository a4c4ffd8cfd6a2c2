/**
 * `weft status routes --lab NAME` (issue 11 leftovers, point 4): route statuses live in the
 * waypoints, so --lab asks each waypoint pod's admin API (inside its network namespace), not the
 * node agents (which have no routes: the old code asked only them and printed "no routes here").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labWaypointTargets } from '../../agent/cli/status-command.js';
import type { LabStatus } from '../../agent/lab/status.js';

const pod = (namespace: string, name: string, netns: string): LabStatus['pods'][number] => ({ namespace, name, netns, node: 'n1', ip: '198.18.140.5', labels: {}, inMesh: false, pid: 1, running: true, containers: [], log: '' });

test("--lab routes asks every waypoint pod's admin API inside the pod's netns; ingress gateways and apps are left out", () => {
  const status: Pick<LabStatus, 'deployments' | 'pods'> = {
    deployments: [
      { name: 'reviews-v1', namespace: 'default', replicas: 1, ready: 1, templateHash: 'h', pods: ['reviews-v1-abc'] },
      { name: 'waypoint', namespace: 'shop', replicas: 2, ready: 2, templateHash: 'h', pods: ['waypoint-b', 'waypoint-a'], gateway: 'shop/waypoint' },
      { name: 'ingress', namespace: 'shop', replicas: 1, ready: 1, templateHash: 'h', pods: ['ingress-a'], gateway: 'shop/ingress', ingress: true },
      { name: 'gone', namespace: 'default', replicas: 1, ready: 0, templateHash: 'h', pods: ['gone-a'], gateway: 'default/gone' },
    ],
    pods: [pod('default', 'reviews-v1-abc', 'weft-kstat1-reviews'), pod('shop', 'waypoint-a', 'weft-kstat1-wa'), pod('shop', 'waypoint-b', '/run/netns/weft-kstat1-wb'), pod('shop', 'ingress-a', 'weft-kstat1-in')],
  };
  assert.deepEqual(labWaypointTargets(status), [
    { label: 'waypoint shop/waypoint pod waypoint-a', admin: '127.0.0.1:15000', netns: '/run/netns/weft-kstat1-wa' },
    { label: 'waypoint shop/waypoint pod waypoint-b', admin: '127.0.0.1:15000', netns: '/run/netns/weft-kstat1-wb' },
  ]);
});
