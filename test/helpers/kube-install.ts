/**
 * `kubectl apply -k daemonset/` against the lab's Kubernetes API server (a test double, in this
 * process, on loopback), with a kubeconfig per component's service account, as the kubelet
 * would give each pod its token. Everything it makes is removed by `close()`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startKubeApiServer, type KubeApiServer } from '../../agent/lab/kube/index.js';
import { waitFor } from './wait.js';

const execFileAsync = promisify(execFile);
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const WEFT_MAIN = join(REPO, 'dist/agent/cli/main.js');
export const KUBECTL = process.env['KUBECTL'] ?? 'kubectl';

export interface KubeInstall {
  api: KubeApiServer;
  dir: string;
  admin: string;
  /** kubectl with the admin kubeconfig (async: the API server runs in this process). */
  kubectl(args: string[], input?: string): Promise<string>;
  /** A kubeconfig file for a service account of weft-system (token audience: the API). */
  kubeconfigFor(serviceAccount: string): Promise<string>;
  /** Starts `weft <args>`; killed by close(). */
  spawnWeft(args: string[], env?: Record<string, string>): { child: ChildProcess; output: () => string };
  close(): Promise<void>;
}

export async function installWeft(): Promise<KubeInstall> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-deploy-kube-'));
  const api = await startKubeApiServer({ listen: [{ host: '127.0.0.1', port: 0 }] });
  const admin = join(dir, 'admin.kubeconfig');
  await api.writeKubeconfig(admin);
  const children: ChildProcess[] = [];
  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const p = execFileAsync(KUBECTL, ['--kubeconfig', admin, ...args], { encoding: 'utf8' });
    if (input !== undefined) p.child.stdin?.end(input);
    return (await p).stdout;
  };
  const install: KubeInstall = {
    api,
    dir,
    admin,
    kubectl,
    async kubeconfigFor(serviceAccount) {
      const path = join(dir, `${serviceAccount}.kubeconfig`);
      await writeFile(path, api.kubeconfig({ token: api.issueToken('weft-system', serviceAccount), user: serviceAccount }), { mode: 0o600 });
      return path;
    },
    spawnWeft(args, env = {}) {
      const child = spawn(process.execPath, [WEFT_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      children.push(child);
      return { child, output: () => out };
    },
    async close() {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await api.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await kubectl(['apply', '-k', join(REPO, 'daemonset')]);
  } catch (err) {
    await install.close();
    throw err;
  }
  return install;
}

/** Starts `weft ca` as the CA Deployment runs it (its service account, POD_NAMESPACE), resolving with its port. */
export async function startCa(k: KubeInstall, kubeconfig: string): Promise<{ port: number; child: ChildProcess; output: () => string }> {
  const { child, output } = k.spawnWeft(['ca', '--kubeconfig', kubeconfig, '--listen', '127.0.0.1:0', '--lifetime', '24h'], { POD_NAMESPACE: 'weft-system' });
  await waitFor(() => /"msg":"CA listening"/.test(output()) || child.exitCode !== null, 'the CA to listen', 20_000);
  const m = /"port":(\d+),"msg":"CA listening"/.exec(output());
  if (!m) throw new Error(`the CA did not start:\n${output()}`);
  return { port: Number(m[1]), child, output };
}
