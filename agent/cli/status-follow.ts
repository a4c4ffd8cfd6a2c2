/**
 * `weft status connections --follow`: every agent's connection opens, policy decisions and
 * closes as they happen (admin API /connections/stream), one line each, or the raw events with
 * `--json`. Runs until Ctrl-C, or until an agent ends its stream (it drops a reader that falls
 * too far behind rather than buffer for it).
 */
import { streamAdmin, type AdminTarget } from '../admin/client.js';

type Event = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** `ns/name (spiffe://...)`, or the address alone for a peer outside the model. */
function peer(workload: unknown, principal: unknown, address: unknown): string {
  const w = str(workload) ?? str(address) ?? '?';
  const p = str(principal);
  return p ? `${w} (${p})` : w;
}

export function formatEvent(agent: string, e: Event): string | undefined {
  const kind = str(e['event']);
  if (kind !== 'open' && kind !== 'decision' && kind !== 'close') return undefined;
  const time = (str(e['time']) ?? '').slice(11, 23);
  const head = `${time}  ${agent}  ${kind.toUpperCase().padEnd(8)} #${String(e['id'])} ${String(e['direction'])}`;
  const path = `${peer(e['srcWorkload'], e['srcPrincipal'], e['src'])} -> ${peer(e['dstWorkload'], e['dstPrincipal'], e['upstream'])}${str(e['dstService']) ? ` [${String(e['dstService'])}]` : ''} ${e['mtls'] === true ? 'mtls' : 'plaintext'}`;
  const decision = str(e['decision']) ? `${String(e['decision'])}${str(e['policy']) ? ` by ${String(e['policy'])}` : ''}${str(e['reason']) ? ` (${String(e['reason'])})` : ''}` : undefined;
  if (kind === 'open') return `${head}  ${path}`;
  if (kind === 'decision') return `${head}  ${path}  ${decision ?? ''}`;
  const parts = [
    decision,
    `${String(e['bytesFromClient'] ?? 0)} B from client, ${String(e['bytesToClient'] ?? 0)} B to client`,
    `${String(e['durationMs'] ?? '?')} ms`,
    `flags ${String(e['responseFlags'] ?? '-')}`,
    str(e['error']) ? `error ${String(e['error'])}${str(e['errorCode']) ? ` [${String(e['errorCode'])}]` : ''}` : undefined,
  ].filter((p) => p !== undefined);
  return `${head}  ${path}  ${parts.join(', ')}`;
}

export async function followConnections(targets: AdminTarget[], o: { json: boolean; out: NodeJS.WritableStream; signal?: AbortSignal }): Promise<void> {
  const streams = targets.map((t) =>
    streamAdmin(t, '/connections/stream', (e) => {
      if (o.json) o.out.write(JSON.stringify({ agent: t.label, ...e }) + '\n');
      else {
        const line = formatEvent(t.label, e);
        if (line) o.out.write(line + '\n');
      }
    }),
  );
  o.signal?.addEventListener('abort', () => streams.forEach((s) => s.stop()), { once: true });
  await Promise.all(streams.map((s) => s.done));
}
