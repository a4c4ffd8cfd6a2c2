import type { Command } from 'commander';
import { WeftError } from '../errors.js';
import { CA_PORT, DEFAULT_CLUSTER_DOMAIN } from '../config.js';
import { checkApi, checkCa, checkCrds, checkIptables, checkRbac, type CheckResult } from './preflight.js';

interface CheckOptions {
  kubeconfig?: string;
  inCluster?: boolean;
  namespace: string;
  ca?: string;
  caServerName?: string;
  clusterDomain: string;
  iptables: boolean;
  json?: boolean;
}

const MARK: Record<CheckResult['status'], string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

/** Prints results as aligned lines, a fix under each that has one. */
export function formatResults(results: CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.name.length));
  return results.map((r) => `${MARK[r.status]}  ${r.name.padEnd(width)}  ${r.detail}${r.fix ? `\n      ${' '.repeat(width)}  fix: ${r.fix}` : ''}`).join('\n') + '\n';
}

/** Runs every check (the API first: without it the others are skipped). */
export async function runChecks(opts: CheckOptions): Promise<CheckResult[]> {
  const { loadKubeConfig } = await import('../discovery/kubernetes.js');
  const kc = loadKubeConfig(opts.kubeconfig);
  const results: CheckResult[] = [await checkApi(kc)];
  if (results[0]!.status === 'fail') {
    for (const name of ['rbac', 'crds', 'ca']) results.push({ name, status: 'skip', detail: 'the API server did not answer' });
  } else {
    results.push(...(await checkRbac(kc, opts.namespace)));
    results.push(await checkCrds(kc));
    results.push(...(await checkCa(kc, {
      namespace: opts.namespace,
      clusterDomain: opts.clusterDomain,
      url: opts.ca ?? `https://weft-ca.${opts.namespace}.svc:${CA_PORT}`,
      ...(opts.caServerName ? { serverName: opts.caServerName } : {}),
    })));
  }
  results.push(opts.iptables ? await checkIptables() : { name: 'iptables', status: 'skip', detail: '--no-iptables' });
  return results;
}

/** Registers `weft check`. */
export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description(
      'pre-flight checks of a cluster for Weft, each with what to fix: the API server answers; the agent\'s and the CA\'s ' +
        'service accounts have the RBAC they need (SubjectAccessReview, or SelfSubjectAccessReview when run with that account); ' +
        'the CRDs are installed; the CA published its trust bundle, is reachable and its certificate names the Service; and ' +
        'the iptables backend of this machine works (run it on a node, or in the agent pod, for that one). Exits 1 when a check fails.',
    )
    .option('--kubeconfig <file>', 'the cluster (default: $KUBECONFIG or ~/.kube/config)')
    .option('--in-cluster', 'use the pod\'s service account (in the agent or CA pod)')
    .option('--namespace <ns>', 'Weft\'s namespace', 'weft-system')
    .option('--ca <url>', `where to reach the CA (default https://weft-ca.<ns>.svc:${CA_PORT}; from outside: a port-forward's https://127.0.0.1:${CA_PORT})`)
    .option('--ca-server-name <name>', 'TLS name to verify the CA as (default: the URL\'s host, or weft-ca.<ns>.svc for an address)')
    .option('--cluster-domain <domain>', 'the cluster\'s DNS domain', DEFAULT_CLUSTER_DOMAIN)
    .option('--no-iptables', 'skip the iptables check (not on a node)')
    .option('--json', 'print the results as JSON')
    .action(async (opts: CheckOptions) => {
      if (opts.kubeconfig !== undefined && opts.inCluster) throw new WeftError('WEFT_ERR_CONFIG', 'give --kubeconfig or --in-cluster, not both');
      const kubeconfig = opts.kubeconfig ?? (opts.inCluster ? undefined : (process.env['KUBECONFIG'] ?? `${process.env['HOME'] ?? ''}/.kube/config`));
      const results = await runChecks({ ...opts, ...(kubeconfig !== undefined ? { kubeconfig } : {}) });
      process.stdout.write(opts.json ? JSON.stringify(results, null, 2) + '\n' : formatResults(results));
      const failed = results.filter((r) => r.status === 'fail');
      if (failed.length > 0) throw new WeftError('WEFT_ERR_CHECK_FAILED', `${failed.length} check(s) failed: ${failed.map((r) => r.name).join(', ')}`);
    });
}
