/**
 * Hidden `weft lab` commands of the Kubernetes-mode lab's control-plane roles, started by
 * `weft lab up --kubernetes` (kube-mode.ts), never by hand: `kubelet` (one per node, in the
 * node's namespace) and `kube-controllers` (the EndpointSlice, Deployment and waypoint
 * controllers, in the fabric namespace). Both are ordinary API clients with the kubeconfig they are given; both stop on
 * SIGTERM and leave the pods running, as a restarted kubelet does.
 */
import { Command } from 'commander';
import { createLogger } from '../log.js';
import { WeftError } from '../errors.js';
import { loadKubeConfig } from '../discovery/kubernetes.js';
import { EndpointSliceController } from './endpointslice-controller.js';
import { DeploymentController } from './deployment-controller.js';
import { kubeLabGatewayOptions, kubeLabWaypointOptions, WaypointController } from './waypoint-controller.js';
import { ExternalAddressController } from './external-controller.js';
import { Kubelet } from './kubelet.js';
import { kubePaths } from './kube-paths.js';
import { checkLabName } from './paths.js';
import { readState } from './state.js';

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

export function registerKubeLabCommands(lab: Command): void {
  lab
    .command('kubelet', { hidden: true })
    .description("the Kubernetes-mode lab's kubelet for one node (started by weft lab up --kubernetes)")
    .requiredOption('--name <lab>', 'lab name')
    .requiredOption('--node <node>', 'node name')
    .requiredOption('--kubeconfig <file>', 'kubeconfig of the lab API server')
    .option('--cni-conf-dir <dir>', 'CNI conflist directory (none: no chained plugin)')
    .option('--cni-bin-dir <dir>', 'CNI plugin directory')
    .action(async (opts: { name: string; node: string; kubeconfig: string; cniConfDir?: string; cniBinDir?: string }) => {
      const name = checkLabName(opts.name);
      const state = await readState(name);
      const node = state?.nodes.find((n) => n.name === opts.node);
      if (state === undefined || node === undefined) throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `lab ${name} has no node ${opts.node}`);
      const logger = createLogger({ component: 'lab-kubelet', node: node.name });
      const paths = kubePaths(name);
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (k.startsWith('WEFT_') && v !== undefined) env[k] = v;
      const kubelet = new Kubelet({
        lab: name,
        node,
        kubeConfig: loadKubeConfig(opts.kubeconfig),
        logger,
        workDir: state.dir,
        podsDir: paths.podsDir,
        checkpointFile: paths.kubeletCheckpoint(node.name),
        cni: opts.cniConfDir !== undefined ? { confDir: opts.cniConfDir, binDir: opts.cniBinDir ?? opts.cniConfDir } : undefined,
        env,
      });
      await kubelet.start();
      logger.info('kubelet running');
      await untilSignal();
      await kubelet.stop();
      logger.flush();
      process.exit(0);
    });

  lab
    .command('kube-controllers', { hidden: true })
    .description("the Kubernetes-mode lab's controllers: EndpointSlices, Deployments, waypoints (started by weft lab up --kubernetes)")
    .requiredOption('--kubeconfig <file>', 'kubeconfig of the lab API server')
    .option('--name <lab>', 'lab name (for the paths of waypoint pods; without it Gateways deploy nothing)')
    .action(async (opts: { kubeconfig: string; name?: string }) => {
      const logger = createLogger({ component: 'lab-controllers' });
      const kc = loadKubeConfig(opts.kubeconfig);
      const controller = new EndpointSliceController(kc, logger);
      const deployments = new DeploymentController(kc, logger);
      const lab = opts.name === undefined ? undefined : checkLabName(opts.name);
      const waypoints = lab === undefined ? undefined : new WaypointController(kc, logger, kubeLabWaypointOptions(lab), lab, kubeLabGatewayOptions(lab));
      const external = lab === undefined ? undefined : new ExternalAddressController(kc, logger, lab);
      await Promise.all([controller.start(), deployments.start(), external?.start()]);
      waypoints?.start();
      logger.info('endpointslice, deployment and waypoint controllers running');
      await untilSignal();
      await Promise.all([controller.stop(), deployments.stop(), waypoints?.stop(), external?.stop()]);
      logger.flush();
      process.exit(0);
    });
}
