/**
 * A minimal meshed topology for in-process tests: two pod namespaces (client A, server B) on a
 * veth pair, manifests in a temp dir, an app in B that answers with the client address it saw,
 * and the agent running in the test process. Needs root. `cleanup()` removes everything.
 */
import net from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureLogger, type LogLine } from './logs.js';
import { createTcpSocket, openNetns, closeNetns } from '../../native/index.js';
import { Agent, type AgentOptions } from '../../agent/agent.js';
import { createTestNetns, inNs, run, removeNetns } from './netns.js';
import { CertificateAuthority } from '../../agent/identity/ca.js';
import { PlacementAuthorizer } from '../../agent/identity/ca-auth.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import type { CaClient } from '../../agent/identity/ca-types.js';
import { WeftError } from '../../agent/errors.js';

export interface TwoPods {
  A: string;
  B: string;
  IP_A: string;
  IP_B: string;
  VIP: string;
  dir: string;
  agent: Agent;
  /** Every log line the agent wrote, parsed. */
  logs: LogLine[];
  fdA: number;
  fdB: number;
  writeNamespace(labels: Record<string, string>): void;
  /** Rewrites the pods; `clientLabels` are extra labels of pod A (e.g. the opt-out label). */
  writePods(clientLabels?: Record<string, string>): void;
  /** The in-process CA (when the topology runs with mutual TLS). */
  ca: CertificateAuthority | undefined;
  /** Makes the CA unreachable (every request fails as a dead CA would) or brings it back. */
  setCaDown(down: boolean): void;
  writeFile(name: string, yaml: string): void;
  removeFile(name: string): void;
  /** Connects from inside pod A as an app would (no mark: the rules capture it), sends `payload`, half-closes, returns the reply. */
  request(host: string, port: number, payload: string): Promise<string>;
  /** Opens a connection from A and keeps it open. */
  open(host: string, port: number): net.Socket;
  cleanup(): Promise<void>;
}

/** `mtls: false` runs the agent without a CA (plaintext mesh), for tests of the capture layer alone. */
export async function setupTwoPods(tag: string, subnet: number, agentOptions: Partial<AgentOptions> = {}, mtls = true, caLifetimeMs?: number): Promise<TwoPods> {
  const A = `weft-test-${tag}-a`;
  const B = `weft-test-${tag}-b`;
  const IP_A = `198.18.${subnet}.2`;
  const IP_B = `198.18.${subnet}.3`;
  const VIP = `198.18.${subnet}.100`;
  removeNetns(A);
  removeNetns(B);
  createTestNetns(A);
  createTestNetns(B);
  run('ip', ['link', 'add', 'eth0', 'netns', A, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', B]);
  inNs(A, 'ip', ['addr', 'add', `${IP_A}/24`, 'dev', 'eth0']);
  inNs(B, 'ip', ['addr', 'add', `${IP_B}/24`, 'dev', 'eth0']);
  inNs(A, 'ip', ['link', 'set', 'eth0', 'up']);
  inNs(B, 'ip', ['link', 'set', 'eth0', 'up']);
  inNs(A, 'ip', ['route', 'add', 'default', 'dev', 'eth0']);
  const fdA = openNetns(`/var/run/netns/${A}`);
  const fdB = openNetns(`/var/run/netns/${B}`);
  const appFd = createTcpSocket({ netnsFd: fdB, reuseAddress: true, bind: { address: '0.0.0.0', port: 9080 } });
  // The app's connections, so that cleanup ends them: a relay the agent still held when the
  // namespaces went away never delivers its FIN, and the socket would keep the test process alive.
  const appSockets = new Set<net.Socket>();
  const app = net.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    appSockets.add(s);
    s.on('close', () => appSockets.delete(s));
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end(`${s.remoteAddress}|${Buffer.concat(chunks).toString()}`));
  });
  app.listen({ fd: appFd });
  await once(app, 'listening');
  const dir = mkdtempSync(join(tmpdir(), `weft-${tag}-`));
  const writeFile = (name: string, yaml: string) => writeFileSync(join(dir, name), yaml);
  const writeNamespace = (labels: Record<string, string>) => {
    const l = Object.entries(labels).map(([k, v]) => `\n    ${k}: ${v}`).join('');
    writeFile('ns.yaml', `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop${l ? `\n  labels:${l}` : ''}\n`);
  };
  const pod = (name: string, ip: string, extra: Record<string, string> = {}) =>
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: shop\n  labels:\n    app: ${name}${Object.entries(extra).map(([k, v]) => `\n    ${k}: ${v}`).join('')}\nspec:\n  nodeName: node-1\n  serviceAccountName: ${name}\n  containers:\n  - name: main\n    command: [sleep, infinity]\nstatus:\n  phase: Running\n  podIP: ${ip}\n`;
  writeNamespace({ 'weft.dev/mesh': 'enabled' });
  const writePods = (clientLabels: Record<string, string> = {}) => writeFile('pods.yaml', `${pod('client', IP_A, clientLabels)}---\n${pod('server', IP_B)}`);
  writePods();
  writeFile('svc.yaml', `apiVersion: v1\nkind: Service\nmetadata:\n  name: server\n  namespace: shop\nspec:\n  clusterIP: ${VIP}\n  selector:\n    app: server\n  ports:\n  - port: 80\n    targetPort: 9080\n`);
  const { logger, lines } = captureLogger('info');
  let agentRef: Agent | undefined;
  const ca = mtls
    ? new CertificateAuthority(CertificateAuthority.generateRoot(agentOptions.trustDomain), {
        // The CA signs only identities of the agent's trust domain (the default when none is given).
        ...(agentOptions.trustDomain !== undefined ? { trustDomain: agentOptions.trustDomain } : {}),
        authorizer: new PlacementAuthorizer((node, ns, sa) => agentRef?.model.workloadsOnNode(node).some((w) => w.namespace === ns && w.serviceAccount === sa) ?? false),
        logger,
        ...(caLifetimeMs ? { lifetimeMs: caLifetimeMs } : {}),
      })
    : undefined;
  let caDown = false;
  const inner = ca ? new InProcessCaClient(ca, 'node-1') : undefined;
  const caClient: CaClient | undefined = inner && {
    sign: (csr, identity) => (caDown ? Promise.reject(new WeftError('WEFT_ERR_CA_UNAVAILABLE', 'CA stopped by the test')) : inner.sign(csr, identity)),
    bundle: () => (caDown ? Promise.reject(new WeftError('WEFT_ERR_CA_UNAVAILABLE', 'CA stopped by the test')) : inner.bundle()),
  };
  const agent = new Agent({ nodeName: 'node-1', manifestsDir: dir, logger, adminAddress: '', ...(caClient ? { caClient } : {}), ...agentOptions });
  agentRef = agent;
  await agent.start();

  const open = (host: string, port: number): net.Socket => {
    const socket = new net.Socket({ fd: createTcpSocket({ netnsFd: fdA }), readable: true, writable: true });
    return socket.connect(port, host);
  };
  const request = async (host: string, port: number, payload: string): Promise<string> => {
    const socket = open(host, port);
    socket.end(payload);
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString();
  };
  let cleaned = false;
  return {
    A, B, IP_A, IP_B, VIP, dir, agent, logs: lines, fdA, fdB,
    writeNamespace, writeFile, writePods, ca,
    setCaDown: (down) => {
      caDown = down;
    },
    removeFile: (name) => rmSync(join(dir, name), { force: true }),
    request, open,
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      await agent.stop().catch(() => undefined);
      app.close();
      for (const s of appSockets) s.destroy();
      closeNetns(fdA);
      closeNetns(fdB);
      removeNetns(A);
      removeNetns(B);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
