/**
 * Reads what `up`, `apply` and `delete` are given (a directory of manifests, one file, or `-` for
 * stdin) with discovery's parser, keeping which file each object came from. Any invalid document
 * refuses the whole input, naming file, document, line and reason: nothing is half-applied.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { WeftError } from '../errors.js';
import {
  formatManifestError,
  listManifestFiles,
  objectKey,
  parseManifestText,
  reconcileFiles,
  type FileParseResult,
} from '../discovery/manifest.js';
import type { ManifestError, ManifestObject } from '../discovery/types.js';

export interface LoadedManifests {
  objects: ManifestObject[];
  /** objectKey -> file it came from (as shown in messages). */
  fileOf: Map<string, string>;
}

export async function loadManifests(path: string): Promise<LoadedManifests> {
  const candidates: FileParseResult[] = [];
  if (path === '-') {
    candidates.push(parseManifestText(await readStdin(), '<stdin>'));
  } else {
    let isDir: boolean;
    try {
      isDir = (await stat(path)).isDirectory();
    } catch (err) {
      throw new WeftError('WEFT_ERR_CONFIG', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
    const files = isDir ? (await listManifestFiles(path)).map((n) => join(path, n)) : [path];
    if (files.length === 0) throw new WeftError('WEFT_ERR_CONFIG', `${path} holds no *.yaml or *.yml files`);
    for (const file of files) {
      const text = await readFile(file, 'utf8').catch((err: unknown) => {
        throw new WeftError('WEFT_ERR_CONFIG', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
      });
      candidates.push(parseManifestText(text, isDir ? basename(file) : file));
    }
  }
  const { accepted, rejected } = reconcileFiles(new Map(), candidates);
  const errors: ManifestError[] = [];
  for (const c of candidates) errors.push(...(rejected.get(c.file) ?? []));
  if (errors.length > 0) throw refused(errors);
  const objects: ManifestObject[] = [];
  const fileOf = new Map<string, string>();
  for (const c of candidates) {
    for (const o of accepted.get(c.file) ?? []) {
      objects.push(o);
      fileOf.set(objectKey(o), c.file);
    }
  }
  return { objects, fileOf };
}

export function refused(errors: readonly ManifestError[]): WeftError {
  const lines = errors.map((e) => `  ${formatManifestError(e)}`).join('\n');
  return new WeftError('WEFT_ERR_MANIFEST_INVALID', `manifests refused, nothing was changed:\n${lines}`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
