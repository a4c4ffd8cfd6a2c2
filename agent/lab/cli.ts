/**
 * `weft lab ...`: the command-line face of lab.ts. Output for people on stdout (or JSON with
 * --json), progress on stderr with --verbose, errors through the CLI's one error handler.
 */
import { formatRefusals } from './refusals.js';
import { issueLabCertificate } from './ca.js';
import { Command, InvalidArgumentError } from 'commander';
import { WeftError } from '../errors.js';
import { createLogger, silentLogger, type Logger } from '../log.js';
import { labApply, labDelete, labDown, labExec, labStatus, labUp, type ChangeSummary } from './lab.js';
import { DEFAULT_LAB_DIR, DEFAULT_LAB_NAME, STATE_ROOT } from './paths.js';
import { formatStatus } from './status.js';
import { registerKubeApiServerCommand } from './kube/cli.js';
import { labRestartAgent, labStartCa, labStopCa } from './agent-control.js';
import { LAB_PROMETHEUS_URL, queryLabPrometheus } from './prometheus.js';
import { registerKubeLabCommands } from './kube-commands.js';
import { registerPortForwardCommand } from './port-forward-command.js';

const NAME_HELP = 'lab name: 1-20 lower-case letters or digits';

function logger(verbose: boolean | undefined): Logger {
  return verbose === true ? createLogger({ component: 'lab' }, 2) : silentLogger;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

function printChanges(summary: ChangeSummary): void {
  const lines = [
    ...summary.created.map((n) => `${n} created`),
    ...summary.configured.map((n) => `${n} configured`),
    ...summary.deleted.map((n) => `${n} deleted`),
    ...summary.unchanged.map((n) => `${n} unchanged`),
  ];
  if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
  const refused = formatRefusals(summary.refused ?? []);
  if (refused.length > 0) {
    // As kubectl reports an object the API server refused: on stderr, and the command fails.
    process.stderr.write(refused.join('\n') + '\n');
    process.exitCode = 1;
  }
}

/** Registers `weft lab ...`. */
export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description(
      'build and run a local cluster out of network namespaces (Linux, root): one namespace per node and per pod, ' +
        'routed like Calico, ClusterIPs DNATed like kube-proxy, service names in each pod\'s /etc/hosts, one weft agent per node. ' +
        `State, manifests (as the agents read them) and logs live in ${STATE_ROOT}/<name>/.`,
    )
    .enablePositionalOptions();
  registerKubeLabCommands(lab);
  registerKubeApiServerCommand(lab);

  lab
    .command('up')
    .description(
      'build the lab from a directory of Kubernetes-style YAML (Namespace, ServiceAccount, Pod with spec.nodeName and a ' +
        'container command, Service; other kinds are passed to the agents as they are) and start the agents and pods. ' +
        'A healthy lab of the same name is changed to match the directory instead; leftovers of a crashed one are removed first. ' +
        'Returns when every pod runs and listens on its declared ports.',
    )
    .argument('[dir]', 'directory of *.yaml manifests', DEFAULT_LAB_DIR)
    .option('--name <name>', NAME_HELP, DEFAULT_LAB_NAME)
    .option('--ready-timeout <ms>', 'how long each pod may take to start and listen', positiveInt, 20_000)
    .option('--no-agents', 'do not start the weft agents (the cluster without the mesh)')
    .option('--no-prometheus', 'do not run Prometheus (it scrapes the agents every second; benchmarks leave it out)')
    .option('--kubernetes', "Kubernetes mode: the lab serves a Kubernetes API (kubeconfig in its state dir, for kubectl), runs pods from Pod objects with its own kubelet, and the agents and CA with --kubeconfig as the DaemonSet does")
    .option('--json', 'print the status as JSON')
    .option('-v, --verbose', 'log progress to stderr')
    .action(async (dir: string, opts: { name: string; readyTimeout: number; agents: boolean; prometheus: boolean; kubernetes?: boolean; json?: boolean; verbose?: boolean }) => {
      const result = await labUp({
        kubernetes: opts.kubernetes === true,
        dir,
        name: opts.name,
        readyTimeoutMs: opts.readyTimeout,
        startAgents: opts.agents,
        prometheus: opts.prometheus,
        logger: logger(opts.verbose),
      });
      if (opts.json === true) {
        process.stdout.write(JSON.stringify(result, null, 2) + '\n');
        return;
      }
      const how = result.mode === 'fresh' ? 'built' : 'already up; changed to match the manifests';
      const cleaned = result.cleanedLeftovers ? ' (what was left of an earlier lab of this name was removed first)' : '';
      process.stdout.write(`lab ${result.name} ${how}${cleaned}\n\n${formatStatus(result)}`);
    });

  lab
    .command('down')
    .description('stop every agent and pod process of the lab, delete its network namespaces, /etc/netns entries and state; safe on a half-built or crashed lab and when nothing is there')
    .option('--name <name>', NAME_HELP, DEFAULT_LAB_NAME)
    .option('--all', 'remove every lab on this machine (weft-<lab>-fabric|node-*|pod-* namespaces), including leftovers of crashed runs')
    .option('-v, --verbose', 'log progress to stderr')
    .action(async (opts: { name: string; all?: boolean; verbose?: boolean }) => {
      const { removed } = await labDown({ name: opts.name, all: opts.all === true, logger: logger(opts.verbose) });
      process.stdout.write(removed.length === 0 ? 'nothing to remove\n' : removed.map((n) => `lab ${n} removed\n`).join(''));
    });

  lab
    .command('status')
    .description('nodes (netns, fabric IP, pod CIDR, agent), pods (node, IP, in mesh, pid, running) and services (ClusterIP, ports, ready endpoints)')
    .option('--name <name>', NAME_HELP, DEFAULT_LAB_NAME)
    .option('--json', 'print JSON instead of tables')
    .action(async (opts: { name: string; json?: boolean }) => {
      const status = await labStatus(opts.name);
      process.stdout.write(opts.json === true ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status));
    });

  lab
    .command('cert')
    .description(
      "write a certificate, key and trust bundle from the lab's CA for any SPIFFE identity, to debug the mesh by hand " +
        '(openssl s_client, curl --http2, your own HTTP/2 client speaking CONNECT to <pod ip>:15008). ' +
        'Files: cert.pem (leaf + chain), key.pem, bundle.pem',
    )
    .requiredOption('--identity <spiffe-id>', 'e.g. spiffe://cluster.local/ns/default/sa/bookinfo-productpage')
    .requiredOption('--out <dir>', 'directory to write the files into (created if missing)')
    .option('--name <name>', NAME_HELP, DEFAULT_LAB_NAME)
    .action(async (opts: { identity: string; out: string; name: string }) => {
      const { files, notAfter } = await issueLabCertificate(opts.name, opts.identity, opts.out);
      process.stdout.write(`${files.join('\n')}\nvalid until ${notAfter.toISOString()}\n`);
    });

  // The lab's Prometheus listens inside the fabric namespace only: this asks it from there.
  lab
    .command('query')
    .description(
      `run a PromQL instant query against the lab's Prometheus (${LAB_PROMETHEUS_URL} in the fabric namespace, scraping every agent's :15020/metrics each second) ` +
        "and print one line per series. Example: weft lab query 'sum by (source_workload, destination_workload) (istio_tcp_connections_opened_total{reporter=\"destination\"})'",
    )
    .argument('<promql>', 'PromQL expression')
    .option('--name <name>', NAME_HELP, DEFAULT_LAB_NAME)
    .option('--json', 'print the samples as JSON')
    .action(async (promql: string, opts: { name: string; json?: boolean }) => {
      const samples = await queryLabPrometheus(opts.name, promql);
      if (opts.json === true) {
        process.stdout.write(JSON.stringify(samples, null, 2) + '\n');
        return;
      }
      const lines = samples.map((s) => {
        const labels = Object.entries(s.metric).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
        return `{${labels}}  ${s.value}`;
      });
      process.stdout.write(lines.length === 0 ? '(no series)\n' : lines.join('\n') + '\n');
    });

  registerPortForwardCommand(lab);

  lab
    .command('exec')
    .description(
      "run a command inside a pod's network namespace with the pod's environment and hosts file, in the lab's manifest " +
        'directory (so `node app/load.mjs` works); exits with the command\'s exit code. ' +
        'With --internet, on the client host outside the cluster instead (the lab\'s internet namespace, which reaches the ' +
        'external addresses of LoadBalancer Services and ingress Gateways, and nothing else of the lab). ' +
        'Examples: weft lab exec client -n outside -- node app/load.mjs http://productpage.default:9080/ --count 20; ' +
        'weft lab exec --internet -- curl -s http://198.19.65.1/productpage',
    )
    .argument('[pod]', 'pod name, or deploy/NAME for a running pod of that Deployment (none with --internet)')
    .argument('[command...]', 'command and arguments (put them after --)')
    .option('-n, --namespace <namespace>', 'namespace of the pod', 'default')
    .option('--internet', "run on the lab's internet client host (outside the cluster) instead of in a pod")
    .option('--name <name>', NAME_HELP, DEFAULT_LAB_NAME)
    // No passThroughOptions: `--` ends the options (as kubectl exec), so -n and --name after the
    // pod are exec's own, now that the root command takes positional options (weft waypoint).
    .action(async (pod: string | undefined, command: string[], opts: { namespace: string; name: string; internet?: boolean }) => {
      // With --internet there is no pod: what came first is the command.
      const argv = opts.internet === true ? [...(pod === undefined ? [] : [pod]), ...command] : command;
      if (opts.internet !== true && pod === undefined) throw new WeftError('WEFT_ERR_CONFIG', 'weft lab exec: give a pod (or --internet) and the command after --');
      const { code } = await labExec({ pod: pod ?? '', internet: opts.internet === true, namespace: opts.namespace, name: opts.name, command: argv, stdio: 'inherit' });
      process.exitCode = code;
    });

  lab
    .command('apply')
    .description(
      'create or change objects in the running lab as kubectl apply would: new pods start, changed pods restart, ' +
        'label changes reach the agents, services change their DNAT rules and hosts entries. ' +
        'Invalid manifests are refused with file and reason, and nothing changes.',
    )
    .requiredOption('-f, --filename <file>', 'manifest file, directory of manifests, or - for stdin')
    .option('--name <name>', NAME_HELP, DEFAULT_LAB_NAME)
    .option('-v, --verbose', 'log progress to stderr')
    .action(async (opts: { filename: string; name: string; verbose?: boolean }) => {
      printChanges(await labApply({ file: opts.filename, name: opts.name, logger: logger(opts.verbose) }));
    });

  lab
    .command('delete')
    .description('delete the objects of a manifest from the running lab as kubectl delete would (a Namespace takes its objects with it)')
    .requiredOption('-f, --filename <file>', 'manifest file, directory of manifests, or - for stdin')
    .option('--name <name>', NAME_HELP, DEFAULT_LAB_NAME)
    .option('-v, --verbose', 'log progress to stderr')
    .action(async (opts: { filename: string; name: string; verbose?: boolean }) => {
      const result = await labDelete({ file: opts.filename, name: opts.name, logger: logger(opts.verbose) });
      process.stdout.write(result.deleted.map((n) => `${n} deleted\n`).join(''));
      if (result.notFound.length > 0) {
        process.stderr.write(result.notFound.map((n) => `${n} not found\n`).join(''));
        process.exitCode = 1;
      }
    });

  lab
    .command('restart-agent')
    .description(
      "hand a node's agent over to a new one without a gap, as a DaemonSet rollout with maxSurge 1 / maxUnavailable 0: " +
        'the new agent starts beside the old one, and once it listens in every meshed pod of the node the old one gets ' +
        'SIGTERM (it stops accepting, sends GOAWAY, relays its open connections until its drain deadline, then exits; the rules stay). ' +
        'When no agent runs on the node (killed), the new one just starts.',
    )
    .argument('<node>', 'node name')
    .option('--name <name>', NAME_HELP, DEFAULT_LAB_NAME)
    .action(async (node: string, opts: { name: string }) => {
      const r = await labRestartAgent({ name: opts.name, node });
      process.stdout.write(`agent of node ${r.node}: pid ${r.newPid} ready in ${r.readyMs} ms${r.oldPid === undefined ? ' (no agent ran before)' : `; pid ${r.oldPid} drains and exits`}\n`);
    });

  lab
    .command('stop-ca')
    .description('stop the lab CA (agents keep their cached certificates; new pods wait for theirs and are refused, never plaintext). `apply` does not restart it; `start-ca` or `up` does.')
    .option('--name <name>', NAME_HELP, DEFAULT_LAB_NAME)
    .action(async (opts: { name: string }) => {
      const r = await labStopCa({ name: opts.name });
      process.stdout.write(r.stopped ? 'CA stopped\n' : 'CA was not running\n');
    });

  lab
    .command('start-ca')
    .description('start the lab CA again after stop-ca')
    .option('--name <name>', NAME_HELP, DEFAULT_LAB_NAME)
    .action(async (opts: { name: string }) => {
      const r = await labStartCa({ name: opts.name });
      process.stdout.write(r.started ? `CA started (pid ${r.pid})\n` : `CA already running (pid ${r.pid})\n`);
    });
}
