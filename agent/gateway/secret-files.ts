/**
 * The Secrets of a directory of Kubernetes-style YAML (the lab's manifests, or a directory of
 * Secrets given to `weft gateway --secrets`), read when asked: the gateway asks on a model
 * update, per certificateRef, so a Secret written to the directory is used from the next update.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { SecretLookup, SecretObject } from './config.js';

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out;
}

/** Every Secret in `dir` (recursively), by `<namespace>/<name>`; files that do not parse are skipped. */
export function readSecrets(dir: string): Map<string, SecretObject> {
  const out = new Map<string, SecretObject>();
  for (const file of yamlFiles(dir)) {
    let docs: unknown[];
    try {
      docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => ('toJS' in d ? d.toJS() : undefined) as unknown);
    } catch {
      continue; // discovery reports what does not parse
    }
    for (const d of docs) {
      const o = d as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } & SecretObject;
      if (o === null || typeof o !== 'object' || o.kind !== 'Secret' || typeof o.metadata?.name !== 'string') continue;
      out.set(`${typeof o.metadata.namespace === 'string' ? o.metadata.namespace : 'default'}/${o.metadata.name}`, o);
    }
  }
  return out;
}

/** A SecretLookup over `dir`; the directory is read once per model update (the first lookup after `refresh`). */
export class SecretFiles {
  readonly #dir: string;
  #cache: Map<string, SecretObject> | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  refresh(): void {
    this.#cache = undefined;
  }

  readonly lookup: SecretLookup = (namespace, name) => {
    this.#cache ??= readSecrets(this.#dir);
    return this.#cache.get(`${namespace}/${name}`);
  };
}
