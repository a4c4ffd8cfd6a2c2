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
import { close as fsClose, constants, fstat as fsFstat, open as fsOpen, read as fsRead, watch, type FSWatcher, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { WeftError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  fileTooLarge,
  formatManifestError,
  listManifestFiles,
  objectKey,
  oversizeDocumentsIn,
  parseManifestText,
  reconcileFiles,
  retainObjects,
  type FileParseResult,
} from './manifest.js';
import { MANIFEST_DEBOUNCE_MS, MANIFEST_MAX_WAIT_MS, MANIFEST_RESCAN_MS, MAX_MANIFEST_FILE_BYTES } from '../config.js';
import { MeshStore, modelKind } from './store.js';
import type { ManifestError, ManifestObject, MeshModel, Refusal } from './types.js';

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
  /** Parses one file's text (default parseManifestText): a seam for tests that count parses. */
  parse?: (text: string, file: string) => FileParseResult;
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
  /** Those errors, for the admin API's refusals. */
  errors: ManifestError[];
  conflicted: boolean;
}

/**
 * Files stated or read at once during a scan: enough to keep libuv's four pool threads busy
 * while the main thread parses, few enough not to queue thousands of requests.
 */
const READ_CONCURRENCY = 16;

export class LocalSource extends EventEmitter<LocalSourceEvents> {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #trustDomain: string | undefined;
  readonly #debounceMs: number;
  readonly #maxWaitMs: number;
  readonly #rescanMs: number;
  readonly #useWatch: boolean;
  readonly #parse: (text: string, file: string) => FileParseResult;

  readonly #files = new Map<string, FileState>();
  #accepted = new Map<string, readonly ManifestObject[]>();
  /** Object key -> the file of #accepted that defines it (reconcileFiles keeps it current). */
  readonly #owners = new Map<string, string>();
  readonly #store: MeshStore;

  #watcher: FSWatcher | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;
  #burstStart = 0;
  #rescanTimer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #scanAgain = false;
  #dirMissing = false;
  #dirIno: number | undefined;
  #started = false;
  #stopped = false;
  #lastReadStartedAt: number | undefined;

  constructor(options: LocalSourceOptions) {
    super();
    this.#dir = options.dir;
    this.#log = options.logger.child({ component: 'discovery-local', dir: options.dir });
    this.#trustDomain = options.trustDomain;
    this.#debounceMs = options.debounceMs ?? MANIFEST_DEBOUNCE_MS;
    this.#maxWaitMs = options.maxWaitMs ?? MANIFEST_MAX_WAIT_MS;
    this.#rescanMs = options.rescanMs ?? MANIFEST_RESCAN_MS;
    this.#useWatch = options.watch ?? true;
    this.#parse = options.parse ?? parseManifestText;
    this.#store = new MeshStore({ selectorEndpoints: true, ...(this.#trustDomain !== undefined ? { trustDomain: this.#trustDomain } : {}) });
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
      { generation: this.#store.generation, files: this.#accepted.size, workloads: this.#store.workloads.size, services: this.#store.services.size },
      'manifests loaded',
    );
    return this.#store.snapshot();
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
    return this.#store.snapshot();
  }

  refusals(): Refusal[] {
    const out: Refusal[] = [];
    for (const state of this.#files.values()) {
      for (const e of state.errors) out.push({ object: e.file, file: e.file, code: e.code ?? 'WEFT_ERR_MANIFEST_INVALID', reason: formatManifestError(e) });
    }
    out.push(...this.#store.refusals());
    return out;
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
    const startedAt = Date.now();
    try {
      await this.#scanOnce(initial);
    } finally {
      this.#lastReadStartedAt = startedAt;
    }
  }

  /**
   * Wall-clock time at which the last completed scan began: every file written before it has
   * been looked at (so `weft lab apply` knows when an agent's refusals include what it wrote).
   */
  lastReadStartedAt(): number | undefined {
    return this.#lastReadStartedAt;
  }

  async #scanOnce(initial: boolean): Promise<void> {
    let names: string[];
    let dirIno: number;
    try {
      // The directory's inode too: a directory swapped in by rename (a whole source put in place
      // at once) is a new inode, and the watcher on the old one hears nothing more.
      [names, dirIno] = await Promise.all([listManifestFiles(this.#dir), stat(this.#dir).then((st) => st.ino)]);
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

    this.#checkDirReplaced(dirIno);

    const { candidates, gone } = await this.#readChanged(names);
    const present = new Set(names);
    for (const file of gone) present.delete(file);
    let removedAny = false;
    const removedObjects: ManifestObject[] = [];
    for (const file of [...this.#files.keys()]) {
      if (present.has(file)) continue;
      this.#files.delete(file);
      const objects = this.#accepted.get(file);
      if (this.#accepted.delete(file)) removedAny = true;
      if (objects !== undefined) {
        removedObjects.push(...objects);
        for (const o of objects) {
          const key = objectKey(o);
          if (this.#owners.get(key) === file) this.#owners.delete(key);
        }
      }
      this.#log.info({ file }, 'manifest file removed');
    }
    if (candidates.length === 0 && !removedAny && !initial) return;
    // A file refused for redefining another file's object may fit now that something moved.
    for (const state of this.#files.values()) {
      if (state.conflicted && !candidates.includes(state.parsed)) candidates.push(state.parsed);
    }
    candidates.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));

    const previous = this.#accepted;
    const { accepted, rejected, conflicted } = reconcileFiles(previous, candidates, this.#owners);
    this.#accepted = accepted;
    let acceptedChanged = removedAny;
    const changedFiles: string[] = [];
    for (const c of candidates) {
      if (accepted.get(c.file) === previous.get(c.file)) continue;
      acceptedChanged = true;
      changedFiles.push(c.file);
    }

    const invalid: ManifestError[] = [];
    for (const c of candidates) {
      const state = this.#files.get(c.file);
      if (state === undefined) continue;
      state.conflicted = conflicted.has(c.file);
      const errors = rejected.get(c.file);
      const reported = errors === undefined ? '' : errors.map(formatManifestError).join('\n');
      state.errors = errors ?? [];
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

    const changed = (acceptedChanged || initial) && this.#apply(removedObjects, changedFiles, previous, initial);
    if (this.#stopped) return;
    if (invalid.length > 0) this.emit('invalid', invalid);
    if (changed && !initial) this.emit('update', this.#store.snapshot());
  }

  /** Reopens the watcher on a directory that was replaced since it was opened. */
  #checkDirReplaced(ino: number): void {
    if (this.#dirIno === ino) return;
    const first = this.#dirIno === undefined;
    this.#dirIno = ino;
    if (first || this.#watcher === undefined) return;
    this.#log.info('manifest directory replaced; watching the new one');
    this.#closeWatcher();
    this.#openWatcher();
  }

  /**
   * Reads the files that are new or whose (inode, size, mtime, ctime) moved, READ_CONCURRENCY at
   * a time, and parses each as it arrives (parsing one while others are read). Unchanged files
   * cost one stat; a file whose content is byte-for-byte what was parsed before is not parsed
   * again. Returns the parse results that are new, for reconcileFiles, and the listed names
   * that are gone or no longer regular files.
   */
  async #readChanged(names: readonly string[]): Promise<{ candidates: FileParseResult[]; gone: string[] }> {
    const fresh: (FileParseResult | undefined)[] = new Array(names.length);
    const gone: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length && !this.#stopped) {
        const i = next++;
        const file = names[i]!;
        const known = this.#files.get(file);
        const path = join(this.#dir, file);
        if (known !== undefined) {
          const signature = await statSignature(path);
          if (signature === known.signature) continue;
          if (signature === undefined) {
            gone.push(file);
            continue;
          }
        }
        let read: ReadResult;
        try {
          read = await readRegularFile(path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
            gone.push(file);
            continue;
          }
          // Unreadable (permissions): refused like an invalid file, so its last good content
          // stays; its stat signature, so it is tried again only when it changes (a chmod).
          const signature = (await statSignature(path)) ?? 'unreadable';
          const parsed = unreadable(file, err);
          this.#files.set(file, { signature, text: undefined, parsed, reported: known?.reported ?? '', errors: known?.errors ?? [], conflicted: false });
          fresh[i] = parsed;
          continue;
        }
        if (read === undefined) {
          gone.push(file);
          continue;
        }
        if ('tooLarge' in read) {
          // Refused from its size alone: never read, so it cannot stall the event loop.
          if (known?.signature === read.signature) continue;
          const parsed: FileParseResult = { file, objects: [], locations: [], errors: [fileTooLarge(file, read.tooLarge)] };
          this.#files.set(file, { signature: read.signature, text: undefined, parsed, reported: known?.reported ?? '', errors: known?.errors ?? [], conflicted: false });
          fresh[i] = parsed;
          continue;
        }
        // A document over the object limit refuses the file from its bytes: not decoded, not parsed.
        const oversize = oversizeDocumentsIn(read.bytes, file);
        if (oversize !== undefined) {
          this.#files.set(file, { signature: read.signature, text: undefined, parsed: oversize, reported: known?.reported ?? '', errors: known?.errors ?? [], conflicted: false });
          fresh[i] = oversize;
          continue;
        }
        const text = read.bytes.toString('utf8');
        if (known !== undefined && known.text === text) {
          known.signature = read.signature;
          continue;
        }
        // Kinds the agent does not read (ConfigMaps, Deployments...) are not kept past the parse.
        const parsed = retainObjects(this.#parse(text, file), isModelObject);
        this.#files.set(file, { signature: read.signature, text, parsed, reported: known?.reported ?? '', errors: known?.errors ?? [], conflicted: false });
        fresh[i] = parsed;
      }
    };
    const workers: Promise<void>[] = [];
    for (let w = 0; w < Math.min(READ_CONCURRENCY, names.length); w++) workers.push(worker());
    await Promise.all(workers);
    // In name order (names are sorted), whatever order the reads finished in.
    const candidates: FileParseResult[] = [];
    for (const parsed of fresh) if (parsed !== undefined) candidates.push(parsed);
    return { candidates, gone };
  }

  /**
   * Applies what moved to the model: the objects of removed files go, the objects of changed
   * files are put again (the store ignores those whose facts did not change), and an object no
   * longer in its file goes. Deletes first, so an object that moved between files in one scan
   * stays. Keeps the generation when nothing changed.
   */
  #apply(removed: readonly ManifestObject[], changedFiles: readonly string[], previous: ReadonlyMap<string, readonly ManifestObject[]>, initial: boolean): boolean {
    const store = this.#store;
    for (const o of removed) store.deleteObject(o);
    for (const file of changedFiles) {
      const now = new Set((this.#accepted.get(file) ?? []).map(objectKey));
      for (const o of previous.get(file) ?? []) if (!now.has(objectKey(o))) store.deleteObject(o);
    }
    for (const file of changedFiles) for (const o of this.#accepted.get(file) ?? []) store.upsertObject(o);
    // The first model is generation 1 even when the directory is empty.
    const changed = store.commit(initial && store.generation === 0 ? 1 : undefined);
    if (!changed) return false;
    this.#log.info({ generation: store.generation, workloads: store.workloads.size, services: store.services.size }, 'mesh model updated');
    return true;
  }
}

function unreadable(file: string, err: unknown): FileParseResult {
  const reason = `cannot be read: ${err instanceof Error ? err.message : String(err)}`;
  return { file, objects: [], locations: [], errors: [{ file, reason }] };
}

/** `ino:size:mtime:ctime`: ctime too, so a chmod that makes a file readable again is a change worth a read. */
function signatureOf(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** The signature of a regular file (symlinks followed); undefined when gone or not a file. */
async function statSignature(path: string): Promise<string | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? signatureOf(st) : undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Any failure but "gone": read it, which reports why.
    return code === 'ENOENT' ? undefined : `unstatable:${code ?? 'unknown'}`;
  }
}

type ReadResult = { bytes: Buffer; signature: string } | { tooLarge: number; signature: string } | undefined;

function isModelObject(o: ManifestObject): boolean {
  return modelKind(o) !== undefined;
}

/**
 * A regular file's bytes and signature from one open: open, fstat, read, close (four requests
 * on libuv's pool, where stat + readFile takes six). O_NONBLOCK so a FIFO named *.yaml cannot
 * hang the open; anything but a regular file is undefined. The callback API, one promise per
 * file: fs.promises' FileHandle costs a promise and a tracked handle per step, which measured
 * ~40 % more main-thread time over the 6,550 files of the scale source.
 */
function readRegularFile(path: string): Promise<ReadResult> {
  return new Promise((resolve, reject) => {
    fsOpen(path, constants.O_RDONLY | constants.O_NONBLOCK, (openErr, fd) => {
      if (openErr !== null) return reject(openErr);
      const finish = (err: Error | null, result: ReadResult): void => {
        fsClose(fd, (closeErr) => {
          const first = err ?? closeErr;
          if (first !== null) reject(first);
          else resolve(result);
        });
      };
      fsFstat(fd, (statErr, st) => {
        if (statErr !== null) return finish(statErr, undefined);
        if (!st.isFile()) return finish(null, undefined);
        if (st.size > MAX_MANIFEST_FILE_BYTES) return finish(null, { tooLarge: st.size, signature: signatureOf(st) });
        // One byte more than the size, so a file that grew since the fstat is read to its end.
        let buffer = Buffer.allocUnsafe(st.size + 1);
        let length = 0;
        const onRead = (readErr: Error | null, bytesRead: number): void => {
          if (readErr !== null) return finish(readErr, undefined);
          if (bytesRead === 0) return finish(null, { bytes: buffer.subarray(0, length), signature: signatureOf(st) });
          length += bytesRead;
          if (length === buffer.length) {
            const bigger = Buffer.allocUnsafe(buffer.length * 2);
            buffer.copy(bigger, 0, 0, length);
            buffer = bigger;
          }
          fsRead(fd, buffer, length, buffer.length - length, length, onRead);
        };
        fsRead(fd, buffer, 0, buffer.length, 0, onRead);
      });
    });
  });
}
