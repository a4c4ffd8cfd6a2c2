/**
 * The lab's certificate authority: `weft ca` in the fabric namespace on the bridge's address
 * (as a control-plane host would be), its root made by the lab on first `up`, and one random
 * bearer token per node that only that node's agent gets. Same checks as in a cluster: a node
 * gets certificates only for service accounts of pods scheduled on it.
 */
import { CA_PORT } from '../config.js';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CertificateAuthority, CA_FILES } from '../identity/ca.js';
import { PlacementAuthorizer } from '../identity/ca-auth.js';
import { InProcessCaClient } from '../identity/ca-client.js';
import { requestCertificate } from '../identity/manager.js';
import { WeftError } from '../errors.js';
import { labPaths, WEFT_MAIN, REPO_DIR } from './paths.js';
import { startInNetns, type ProcRef } from './procs.js';
import type { LabState, NodeState } from './state.js';

/** The CA's address on the fabric bridge (the nodes' uplinks share its /24). */
export const LAB_CA_IP = '198.19.0.254';
export const LAB_CA_PORT = CA_PORT;
export const LAB_CA_URL = `https://${LAB_CA_IP}:${LAB_CA_PORT}`;

export function labCaPaths(lab: string) {
  const dir = join(labPaths(lab).stateDir, 'ca');
  return {
    dir,
    root: join(dir, CA_FILES.roots),
    tokens: join(dir, 'tokens.json'),
    tokenFile: (node: string) => join(dir, `token-${node}`),
    log: join(labPaths(lab).logsDir, 'ca.log'),
  };
}

/** Creates the lab's root (once) and a token for every node that has none; idempotent. */
export async function prepareLabCa(state: LabState): Promise<void> {
  const paths = labCaPaths(state.name);
  if (!existsSync(paths.root)) {
    // Refuses everything: this instance only writes the files; `weft ca` does the signing.
    await CertificateAuthority.loadOrCreate(paths.dir, { authorizer: new PlacementAuthorizer(() => false) });
  }
  let tokens: Record<string, string> = {};
  try {
    tokens = JSON.parse(await readFile(paths.tokens, 'utf8')) as Record<string, string>;
  } catch {
    // first run: no tokens yet
  }
  const byNode = new Map(Object.entries(tokens).map(([token, node]) => [node, token]));
  let changed = false;
  for (const node of state.nodes) {
    let token = byNode.get(node.name);
    if (!token) {
      token = randomBytes(24).toString('base64url');
      tokens[token] = node.name;
      changed = true;
    }
    if (!existsSync(paths.tokenFile(node.name))) await writeFile(paths.tokenFile(node.name), token, { mode: 0o600 });
  }
  if (changed) {
    await writeFile(`${paths.tokens}.tmp`, JSON.stringify(tokens, null, 1), { mode: 0o600 });
    await rename(`${paths.tokens}.tmp`, paths.tokens);
  }
}

export async function startLabCa(state: LabState): Promise<ProcRef> {
  const paths = labCaPaths(state.name);
  await mkdir(labPaths(state.name).logsDir, { recursive: true });
  return startInNetns(
    {
      what: 'the lab CA',
      netns: state.fabricNetns,
      argv: [process.execPath, WEFT_MAIN, 'ca', '--listen', `${LAB_CA_IP}:${LAB_CA_PORT}`, '--dir', paths.dir, '--tokens', paths.tokens, '--manifests', labPaths(state.name).manifestsDir],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: process.env.HOME ?? '/root' },
      cwd: REPO_DIR,
      log: paths.log,
    },
    { readyTimeoutMs: 15_000, waitExec: true, tcpPorts: [LAB_CA_PORT] },
  );
}

/** The agent's CA flags for a node. */
export function agentCaArgs(lab: string, node: NodeState): string[] {
  const paths = labCaPaths(lab);
  return ['--ca', LAB_CA_URL, '--ca-token-file', paths.tokenFile(node.name), '--ca-root', paths.root];
}

/**
 * Issues a certificate for any identity from the lab's CA, for debugging with openssl, curl or
 * another HTTP/2 client: writes cert.pem (leaf + chain), key.pem and bundle.pem into `outDir`.
 * Root on this machine already owns the CA's key, so no node authorization applies here.
 */
export async function issueLabCertificate(lab: string, identity: string, outDir: string, lifetimeMs?: number): Promise<{ files: string[]; notAfter: Date }> {
  const paths = labCaPaths(lab);
  if (!existsSync(paths.root)) throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `lab ${lab} has no CA (is it up? ${paths.root} is missing)`);
  const ca = await CertificateAuthority.loadOrCreate(paths.dir, { authorizer: new PlacementAuthorizer(() => true), ...(lifetimeMs ? { lifetimeMs } : {}) });
  const cert = await requestCertificate(new InProcessCaClient(ca, 'weft-lab-cert'), identity);
  await mkdir(outDir, { recursive: true });
  const files = { cert: join(outDir, 'cert.pem'), key: join(outDir, 'key.pem'), bundle: join(outDir, 'bundle.pem') };
  await writeFile(files.cert, [cert.certPem, ...cert.chainPem].map((p) => p.trim() + '\n').join(''));
  await writeFile(files.key, cert.keyPem, { mode: 0o600 });
  await writeFile(files.bundle, cert.trustBundle.map((p) => p.trim() + '\n').join(''));
  return { files: Object.values(files), notAfter: cert.notAfter };
}
