/**
 * LocalSource: the model from a directory of manifests, kept current while files change.
 *
 * - fs.watch on the directory says "something changed"; a periodic re-scan is the safety net
 *   for filesystems and editors whose events get lost. Both only request a scan; requests in a
 *   burst are debounced into one scan, and scans never overlap.
 * - A scan stats every manifest file and reads only those whose (inode, size, mtime) moved.
 * - Per-file last good: a file whose new content does not parse or validate (or redefines an
 *   object another file holds) is reported once per distinct content and its previous good
 *   content stays in force; other files' changes still apply. A deleted file removes its objects.
 * - 'update' is emitted only when the model's content changed; each one carries a new generation.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { WeftError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  formatManifestError,
  listManifestFiles,
  parseManifestText,
  reconcileFiles,
  type FileParseResult,
} from './manifest.js';
import { buildModel, modelFingerprint } from './model.js';
import type { ManifestError, ManifestObject, MeshModel } from './types.js';

export interface LocalSourceOptions {
  dir: string;
  logger: Logger;
  trustDomain?: string;
  /** Quiet time after the last change event before a scan runs. Default 100 ms. */
  debounceMs?: number;
  /** A scan runs at the latest this long after the first event of a burst. Default 1 s. */
  maxWaitMs?: number;
  /** Periodic re-scan interval (the safety net). Default 5 s. */
  rescanMs?: number;
  /** Use fs.watch (default). Off leaves only the periodic re-scan. */
  watch?: boolean;
}

export interface LocalSourceEvents {
  update: [model: MeshModel];
  invalid: [errors: ManifestError[]];
}

interface FileState {
  /** `ino:size:mtimeMs` of the last read; a different one means read again. */
  signature: string;
  /** undefined when the file could not be read. */
  text: string | undefined;
  parsed: FileParseResult;
  /** The errors last reported for this file, joined; '' when it was accepted. */
  reported: string;
  conflicted: boolean;
}

/** Stats in flight at once during a scan: enough to hide latency, few enough for libuv's pool. */
const STAT_CONCURRENCY = 32;

export class LocalSource extends EventEmitter<LocalSourceEvents> {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #trustDomain: string | undefined;
  readonly #debounceMs: number;
  readonly #maxWaitMs: number;
  readonly #rescanMs: number;
  readonly #useWatch: boolean;

  readonly #files = new Map<string, FileState>();
  #accepted = new Map<string, readonly ManifestObject[]>();
  #model: MeshModel;
  #fingerprint: string;
  #generation = 0;

  #watcher: FSWatcher | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;
  #burstStart = 0;
  #rescanTimer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #scanAgain = false;
  #dirMissing = false;
  #started = false;
  #stopped = false;

  constructor(options: LocalSourceOptions) {
    super();
    this.#dir = options.dir;
    this.#log = options.logger.child({ component: 'discovery-local', dir: options.dir });
    this.#trustDomain = options.trustDomain;
    this.#debounceMs = options.debounceMs ?? 100;
    this.#maxWaitMs = options.maxWaitMs ?? 1000;
    this.#rescanMs = options.rescanMs ?? 5000;
    this.#useWatch = options.watch ?? true;
    this.#model = buildModel([], { trustDomain: this.#trustDomain, generation: 0 });
    this.#fingerprint = modelFingerprint(this.#model);
  }

  /**
   * Reads the directory once and starts watching it. Resolves with the first model (generation
   * 1); 'update' is emitted only for later changes. 'invalid' may be emitted before it resolves.
   */
  async start(): Promise<MeshModel> {
    if (this.#started) throw new WeftError('WEFT_ERR_CONFIG', 'LocalSource.start() called twice');
    this.#started = true;
    let isDir: boolean;
    try {
      isDir = (await stat(this.#dir)).isDirectory();
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as Error).message})`;
      throw new WeftError('WEFT_ERR_CONFIG', `manifest directory ${this.#dir} ${reason}`, { cause: err });
    }
    if (!isDir) throw new WeftError('WEFT_ERR_CONFIG', `manifest directory ${this.#dir} is not a directory`);
    // Watch before the first read, so a change made while reading is not missed.
    this.#openWatcher();
    await this.#scan(true);
    this.#rescanTimer = setInterval(() => this.#periodic(), this.#rescanMs);
    this.#rescanTimer.unref();
    this.#log.info(
      { generation: this.#model.generation, files: this.#accepted.size, workloads: this.#model.workloads.size, services: this.#model.services.size },
      'manifests loaded',
    );
    return this.#model;
  }

  /**
   * Scans now (after any scan in progress) and resolves when the directory has been read: for a
   * "reload" command, and for tests that must know a write has been looked at.
   */
  async refresh(): Promise<void> {
    if (!this.#started || this.#stopped) return;
    this.#requestScan();
    await this.#scanning;
  }

  current(): MeshModel {
    return this.#model;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#debounceTimer !== undefined) clearTimeout(this.#debounceTimer);
    if (this.#rescanTimer !== undefined) clearInterval(this.#rescanTimer);
    this.#debounceTimer = undefined;
    this.#rescanTimer = undefined;
    this.#closeWatcher();
    await this.#scanning;
  }

  #openWatcher(): void {
    if (!this.#useWatch || this.#watcher !== undefined || this.#stopped) return;
    try {
      // persistent: false — the watcher alone must not keep the process alive.
      const watcher = watch(this.#dir, { persistent: false }, () => this.#changed());
      watcher.on('error', (err) => {
        this.#log.warn({ err }, 'watching the manifest directory failed; relying on the periodic re-scan');
        this.#closeWatcher();
      });
      this.#watcher = watcher;
    } catch (err) {
      this.#log.warn({ err }, 'cannot watch the manifest directory; relying on the periodic re-scan');
    }
  }

  #closeWatcher(): void {
    const watcher = this.#watcher;
    this.#watcher = undefined;
    watcher?.close();
  }

  /** A change event: (re)arm the debounce, but never push a scan past maxWait from the first event. */
  #changed(): void {
    if (this.#stopped) return;
    const now = performance.now();
    if (this.#debounceTimer === undefined) this.#burstStart = now;
    else clearTimeout(this.#debounceTimer);
    const delay = Math.max(0, Math.min(this.#debounceMs, this.#burstStart + this.#maxWaitMs - now));
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = undefined;
      this.#requestScan();
    }, delay);
    this.#debounceTimer.unref();
  }

  #periodic(): void {
    // A watcher lost to an error (or to the directory being replaced) is opened again here.
    this.#openWatcher();
    this.#requestScan();
  }

  #requestScan(): void {
    if (this.#stopped) return;
    if (this.#scanning !== undefined) {
      this.#scanAgain = true;
      return;
    }
    this.#scanning = this.#scanLoop().finally(() => {
      this.#scanning = undefined;
    });
  }

  async #scanLoop(): Promise<void> {
    do {
      this.#scanAgain = false;
      try {
        await this.#scan(false);
      } catch (err) {
        this.#log.error({ err }, 'scanning the manifest directory failed; keeping the current model');
      }
    } while (this.#scanAgain && !this.#stopped);
  }

  async #scan(initial: boolean): Promise<void> {
    let names: string[];
    try {
      names = await listManifestFiles(this.#dir);
    } catch (err) {
      // A directory that vanishes (unmounted, replaced) does not empty the mesh: keep the model.
      if (!this.#dirMissing) this.#log.warn({ err }, 'manifest directory cannot be read; keeping the current model');
      this.#dirMissing = true;
      this.#closeWatcher();
      return;
    }
    if (this.#dirMissing) {
      this.#dirMissing = false;
      this.#log.info('manifest directory is back');
      this.#openWatcher();
    }

    const signatures = await statAll(this.#dir, names);
    let removedAny = false;
    for (const file of [...this.#files.keys()]) {
      if (signatures.has(file)) continue;
      this.#files.delete(file);
      if (this.#accepted.delete(file)) removedAny = true;
      this.#log.info({ file }, 'manifest file removed');
    }

    const candidates: FileParseResult[] = [];
    for (const [file, signature] of signatures) {
      const known = this.#files.get(file);
      if (known !== undefined && known.signature === signature) continue;
      let text: string | undefined;
      let parsed: FileParseResult;
      try {
        text = await readFile(join(this.#dir, file), 'utf8');
        if (known !== undefined && known.text === text) {
          known.signature = signature;
          continue;
        }
        parsed = parseManifestText(text, file);
      } catch (err) {
        // Gone since the stat: the next scan (there is one: its event is pending) removes it.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        // Unreadable (permissions): refused like an invalid file, so its last good content stays.
        text = undefined;
        parsed = unreadable(file, err);
      }
      this.#files.set(file, { signature, text, parsed, reported: known?.reported ?? '', conflicted: false });
      candidates.push(parsed);
    }
    if (candidates.length === 0 && !removedAny && !initial) return;
    // A file refused for redefining another file's object may fit now that something moved.
    for (const state of this.#files.values()) {
      if (state.conflicted && !candidates.includes(state.parsed)) candidates.push(state.parsed);
    }
    candidates.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));

    const previous = this.#accepted;
    const { accepted, rejected, conflicted } = reconcileFiles(previous, candidates);
    this.#accepted = accepted;
    let acceptedChanged = removedAny;
    for (const c of candidates) if (accepted.get(c.file) !== previous.get(c.file)) acceptedChanged = true;

    const invalid: ManifestError[] = [];
    for (const c of candidates) {
      const state = this.#files.get(c.file);
      if (state === undefined) continue;
      state.conflicted = conflicted.has(c.file);
      const errors = rejected.get(c.file);
      const reported = errors === undefined ? '' : errors.map(formatManifestError).join('\n');
      if (reported === state.reported) continue;
      if (errors === undefined) {
        this.#log.info({ file: c.file }, 'manifest file valid again');
      } else {
        for (const e of errors) {
          this.#log.warn(
            { file: e.file, document: e.document, line: e.line, reason: e.reason },
            `manifest rejected, keeping the file's last good content: ${formatManifestError(e)}`,
          );
        }
        invalid.push(...errors);
      }
      state.reported = reported;
    }

    const changed = (acceptedChanged || initial) && this.#rebuild();
    if (this.#stopped) return;
    if (invalid.length > 0) this.emit('invalid', invalid);
    if (changed && !initial) this.emit('update', this.#model);
  }

  /** Builds the model from the last-good files; keeps it (and the generation) when nothing changed. */
  #rebuild(): boolean {
    const objects: ManifestObject[] = [];
    for (const file of [...this.#accepted.keys()].sort()) objects.push(...this.#accepted.get(file)!);
    const model = buildModel(objects, { trustDomain: this.#trustDomain, generation: this.#generation + 1 });
    const fingerprint = modelFingerprint(model);
    // The first model is generation 1 even when the directory is empty.
    if (fingerprint === this.#fingerprint && this.#generation > 0) return false;
    this.#generation++;
    this.#model = model;
    this.#fingerprint = fingerprint;
    this.#log.info(
      { generation: model.generation, workloads: model.workloads.size, services: model.services.size },
      'mesh model updated',
    );
    return true;
  }
}

function unreadable(file: string, err: unknown): FileParseResult {
  const reason = `cannot be read: ${err instanceof Error ? err.message : String(err)}`;
  return { file, objects: [], locations: [], errors: [{ file, reason }] };
}

/** `file -> ino:size:mtime:ctime` for every name that is still a regular file (symlinks followed). */
async function statAll(dir: string, names: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const results: (string | undefined)[] = new Array(names.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const i = next++;
      try {
        const st = await stat(join(dir, names[i]!));
        // ctime too: a chmod that makes a file readable again is a change worth a read.
        results[i] = st.isFile() ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : undefined;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Not there any more: gone. Any other failure: try to read it, which reports why.
        results[i] = code === 'ENOENT' ? undefined : `unstatable:${code ?? 'unknown'}`;
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < Math.min(STAT_CONCURRENCY, names.length); w++) workers.push(worker());
  await Promise.all(workers);
  for (let i = 0; i < names.length; i++) if (results[i] !== undefined) out.set(names[i]!, results[i]!);
  return out;
}
