/**
 * Bookinfo through the ingress gateway, as Istio's bookinfo-gateway task does it: the Gateway
 * (class weft) and HTTPRoute of examples/ingress/bookinfo-gateway.yaml are applied, the lab gives
 * the Gateway its external address, productpage is asked for from the internet client until it
 * answers, and a kept port-forward (forwards.ts) puts the gateway's port 80 on this machine's
 * loopback for a browser. `npm run demo -- --keep` prints the URL; test/e2e/ingress.test.ts
 * checks the same path.
 */
import { join } from 'node:path';
import { WeftError } from '../errors.js';
import { labStartForward } from './forwards.js';
import { labApply, labExec, labStatus } from './lab.js';
import { REPO_DIR } from './paths.js';

export const BOOKINFO_GATEWAY_FILE = join(REPO_DIR, 'examples', 'ingress', 'bookinfo-gateway.yaml');
export const BOOKINFO_GATEWAY = { namespace: 'default', name: 'bookinfo-gateway' } as const;

export interface BookinfoIngress {
  /** The Gateway's external address (status.addresses). */
  address: string;
  /** productpage from the internet client. */
  externalUrl: string;
  /** productpage through the kept port-forward, on this machine. */
  localUrl: string;
}

/** Applies the bookinfo Gateway and route and waits (bounded) until productpage answers 200 through them. */
export async function exposeBookinfo(name: string, timeoutMs = 30_000): Promise<BookinfoIngress> {
  await labApply({ name, file: BOOKINFO_GATEWAY_FILE, readyTimeoutMs: timeoutMs });
  const deadline = Date.now() + timeoutMs;
  let address: string | undefined;
  let last = '';
  for (;;) {
    const status = await labStatus(name);
    address = status.gateways.find((g) => g.namespace === BOOKINFO_GATEWAY.namespace && g.name === BOOKINFO_GATEWAY.name)?.addresses[0];
    if (address !== undefined) {
      const r = await labExec({ name, internet: true, pod: '', command: ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '5', `http://${address}/productpage`], timeoutMs: 10_000 });
      last = `curl exit ${r.code}, HTTP ${r.stdout || '-'}`;
      if (r.stdout === '200') break;
    } else {
      last = 'the Gateway has no address yet';
    }
    if (Date.now() > deadline) throw new WeftError('WEFT_ERR_LAB', `productpage did not answer through ${BOOKINFO_GATEWAY.namespace}/${BOOKINFO_GATEWAY.name} within ${timeoutMs} ms (${last})`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const forward = await labStartForward({ name, namespace: BOOKINFO_GATEWAY.namespace, target: `svc/${BOOKINFO_GATEWAY.name}`, remote: 80 });
  return { address, externalUrl: `http://${address}/productpage`, localUrl: `${forward.url}productpage` };
}
