/**
 * Where the Kubernetes-mode lab keeps its files, inside the lab's state dir (so `down` removes
 * them with it), and the addresses of its API server.
 */
import { join } from 'node:path';
import { LAB_CA_IP } from './ca.js';
import { labPaths } from './paths.js';

/** The API server listens on the fabric bridge's address (as a control-plane host would)... */
export const LAB_API_IP = LAB_CA_IP;
export const LAB_API_PORT = 6443;
export const LAB_API_FABRIC_URL = `https://${LAB_API_IP}:${LAB_API_PORT}`;
/** ...and on the machine's loopback, for kubectl (the port is chosen at `up`, kept in state). */
export const LAB_API_LOOPBACK = '127.0.0.1';

export function kubePaths(lab: string) {
  const stateDir = labPaths(lab).stateDir;
  const logsDir = labPaths(lab).logsDir;
  const dir = join(stateDir, 'kube');
  return {
    dir,
    /** The API server's own data (its store, keys, serving certificate). */
    apiserverDir: join(dir, 'apiserver'),
    /** For people and kubectl on this machine: https://127.0.0.1:<port>, cluster admin. */
    adminKubeconfig: join(dir, 'admin.kubeconfig'),
    /** The lab's own control-plane roles (kubelets, controllers) inside the lab: the fabric address. */
    controlPlaneKubeconfig: join(dir, 'control-plane.kubeconfig'),
    /** The agents' and the CA's: their service accounts' tokens, nothing more (RBAC applies). */
    agentKubeconfig: join(dir, 'weft-agent.kubeconfig'),
    caKubeconfig: join(dir, 'weft-ca.kubeconfig'),
    /** The lab's waypoint pods': the weft-waypoint ClusterRole's account (kube-mode.ts). */
    waypointKubeconfig: join(dir, 'weft-waypoint.kubeconfig'),
    /** The lab's ingress gateway pods': the weft-gateway account (kube-mode.ts). */
    gatewayKubeconfig: join(dir, 'weft-gateway.kubeconfig'),
    podsDir: join(dir, 'pods'),
    kubeletCheckpoint: (node: string) => join(dir, `kubelet-${node}.json`),
    /** Per node: the chained plugin's configuration names the node's own run dir. */
    cniConfDir: (node: string) => join(dir, 'cni', node, 'net.d'),
    apiserverLog: join(logsDir, 'kube-apiserver.log'),
    controllersLog: join(logsDir, 'kube-controllers.log'),
    kubeletLog: (node: string) => join(logsDir, `kubelet-${node}.log`),
  };
}
