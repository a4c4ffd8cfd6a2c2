/**
 * Finds the network namespace that holds a pod's IP (ARCHITECTURE.md "Capture", step 1): every
 * `/proc/<pid>/ns/net` and `/var/run/netns/*` is a candidate, de-duplicated by inode; the one
 * whose local addresses include the IP wins. Addresses are cached per inode and re-checked
 * before use, because pod IPs are reused.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { inNetns, openNetns, closeNetns } from '../../native/index.js';
import { WeftError } from '../errors.js';

export interface NetnsCandidate {
  /** A path that opens the namespace. */
  path: string;
  /** `/proc/<pid>/net` when a process lives in it (readable without setns). */
  procNet?: string;
  inode: string;
}

/** Local IPv4 addresses listed in a fib_trie dump (`/32 host LOCAL` leaves). */
export function parseLocalAddresses(fibTrie: string): Set<string> {
  const out = new Set<string>();
  let last = '';
  for (const line of fibTrie.split('\n')) {
    const leaf = line.indexOf('|-- ');
    if (leaf >= 0) last = line.slice(leaf + 4).trim();
    else if (line.includes('/32 host LOCAL') && last) out.add(last);
  }
  return out;
}

export interface NetnsLocatorOptions {
  netnsDirs?: readonly string[];
  procDir?: string;
  /**
   * Only named namespaces whose name starts with this are candidates, and processes are not
   * scanned. For runtimes that name every pod namespace (the lab: `weft-<lab>-pod-`): cheaper,
   * and several labs on one machine (same pod addresses) never see each other's pods.
   */
  namePrefix?: string;
}

export class NetnsLocator {
  readonly #netnsDirs: readonly string[];
  readonly #procDir: string;
  readonly #namePrefix: string | undefined;

  constructor(options: NetnsLocatorOptions = {}) {
    this.#netnsDirs = options.netnsDirs ?? ['/var/run/netns'];
    this.#procDir = options.procDir ?? '/proc';
    this.#namePrefix = options.namePrefix;
  }

  /**
   * One pass over every namespace on the node: IP -> the namespaces holding it (normally one).
   * Take one scan per reconciliation and ask it for every pod.
   */
  scan(): NetnsScan {
    const byInode = new Map<string, NetnsCandidate>();
    for (const candidate of this.#candidates()) {
      const known = byInode.get(candidate.inode);
      // Prefer a candidate readable through /proc (no setns needed).
      if (!known || (candidate.procNet && !known.procNet)) byInode.set(candidate.inode, candidate);
    }
    const byIp = new Map<string, NetnsCandidate[]>();
    for (const candidate of byInode.values()) {
      for (const ip of this.#readAddresses(candidate) ?? []) {
        const list = byIp.get(ip);
        if (list) list.push(candidate);
        else byIp.set(ip, [candidate]);
      }
    }
    return new NetnsScan(byIp);
  }

  /** Every namespace on the node, once each (by inode). */
  namespaces(): NetnsCandidate[] {
    const byInode = new Map<string, NetnsCandidate>();
    for (const c of this.#candidates()) if (!byInode.has(c.inode)) byInode.set(c.inode, c);
    return [...byInode.values()];
  }

  /** The namespace holding `ip` (a fresh scan); see NetnsScan.locate. */
  locate(ip: string): NetnsCandidate {
    return this.scan().locate(ip);
  }

  *#candidates(): Generator<NetnsCandidate> {
    for (const dir of this.#netnsDirs) {
      let names: string[] = [];
      try {
        names = readdirSync(dir);
      } catch {
        continue; // no named namespaces on this node
      }
      for (const name of names) {
        if (this.#namePrefix !== undefined && !name.startsWith(this.#namePrefix)) continue;
        const path = `${dir}/${name}`;
        const inode = inodeOf(path);
        if (inode) yield { path, inode };
      }
    }
    if (this.#namePrefix !== undefined) return;
    let pids: string[] = [];
    try {
      pids = readdirSync(this.#procDir).filter((n) => n.charCodeAt(0) >= 48 && n.charCodeAt(0) <= 57);
    } catch {
      return;
    }
    for (const pid of pids) {
      const path = `${this.#procDir}/${pid}/ns/net`;
      const inode = inodeOf(path);
      if (inode) yield { path, procNet: `${this.#procDir}/${pid}/net`, inode };
    }
  }

  #readAddresses(candidate: NetnsCandidate): Set<string> | undefined {
    try {
      if (candidate.procNet) return parseLocalAddresses(readFileSync(`${candidate.procNet}/fib_trie`, 'utf8'));
      const fd = openNetns(candidate.path);
      try {
        // /proc/thread-self/net follows the calling thread's namespace, which setns just switched.
        return inNetns(fd, () => parseLocalAddresses(readFileSync('/proc/thread-self/net/fib_trie', 'utf8')));
      } finally {
        closeNetns(fd);
      }
    } catch {
      return undefined; // the process or namespace went away while scanning
    }
  }
}

export class NetnsScan {
  readonly #byIp: ReadonlyMap<string, NetnsCandidate[]>;
  constructor(byIp: ReadonlyMap<string, NetnsCandidate[]>) {
    this.#byIp = byIp;
  }

  /**
   * The one namespace holding `ip`. None: WEFT_ERR_NETNS_NOT_FOUND. Several (a deleted pod's
   * namespace still alive while its processes exit, and a new pod with the same IP):
   * WEFT_ERR_NETNS_AMBIGUOUS, because capturing the wrong one would black-hole the new pod;
   * the caller retries until the old one is gone.
   */
  locate(ip: string): NetnsCandidate {
    const found = this.#byIp.get(ip);
    if (!found || found.length === 0) {
      throw new WeftError('WEFT_ERR_NETNS_NOT_FOUND', `no network namespace on this node holds ${ip} (is the pod running on this node?)`);
    }
    if (found.length > 1) {
      throw new WeftError('WEFT_ERR_NETNS_AMBIGUOUS', `${found.length} network namespaces hold ${ip} (${found.map((c) => c.path).join(', ')}); waiting for the stale one to go`);
    }
    return found[0]!;
  }
}

/** `dev:ino` of a namespace file: the identity of a network namespace, whatever path names it. */
export function inodeOf(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}
