/**
 * pods/log: the lab keeps each container's output in a file and says which (a resolver); this
 * serves it as the kubelet would behind the API server: text/plain, `tailLines`, `limitBytes`,
 * and `follow=true` streaming appended output until the client goes away.
 */
import { createReadStream, statSync, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StatusError } from './status.js';
import { isJsonObject, type KubeObject } from './types.js';

/** The log file of a container of a pod (undefined when there is none). */
export type PodLogResolver = (pod: KubeObject, container: string) => string | undefined;

const FOLLOW_POLL_MS = 250;

function defaultContainer(pod: KubeObject, asked: string | null): string {
  const containers = isJsonObject(pod['spec']) ? pod['spec']['containers'] : undefined;
  const names = Array.isArray(containers) ? containers.filter(isJsonObject).map((c) => String(c['name'])) : [];
  if (asked !== null && asked !== '') {
    if (!names.includes(asked)) throw new StatusError(400, 'BadRequest', `container ${asked} is not valid for pod ${pod.metadata.name ?? ''}`);
    return asked;
  }
  if (names.length !== 1) {
    throw new StatusError(400, 'BadRequest', `a container name must be specified for pod ${pod.metadata.name ?? ''}, choose one of: [${names.join(' ')}]`);
  }
  return names[0]!;
}

export async function servePodLog(resolver: PodLogResolver | undefined, pod: KubeObject, query: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const container = defaultContainer(pod, query.get('container'));
  const file = resolver?.(pod, container);
  if (file === undefined) throw new StatusError(400, 'BadRequest', `container "${container}" in pod "${pod.metadata.name ?? ''}" is waiting to start: no log in the lab`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    text = '';
  }
  const tail = Number(query.get('tailLines') ?? -1);
  if (Number.isInteger(tail) && tail >= 0) {
    const lines = text.split('\n');
    const last = lines[lines.length - 1] === '' ? lines.slice(0, -1) : lines;
    text = last.slice(Math.max(0, last.length - tail)).join('\n') + (last.length > 0 && tail > 0 ? '\n' : '');
  }
  const limit = Number(query.get('limitBytes') ?? 0);
  if (Number.isInteger(limit) && limit > 0) text = Buffer.from(text).subarray(0, limit).toString('utf8');
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
  if (query.get('follow') !== 'true') {
    res.end(text);
    return;
  }
  res.write(text);
  let offset = (() => {
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  })();
  const onChange = (cur: { size: number }): void => {
    if (cur.size <= offset) return;
    const from = offset;
    offset = cur.size;
    createReadStream(file, { start: from, end: cur.size - 1 }).on('data', (c) => res.write(c));
  };
  watchFile(file, { interval: FOLLOW_POLL_MS, persistent: false }, onChange);
  req.on('close', () => unwatchFile(file, onChange));
}
