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

export class NetnsLocator {
  readonly #netnsDirs: readonly string[];
  readonly #procDir: string;
  readonly #addressesByInode = new Map<string, Set<string>>();
  readonly #candidateByInode = new Map<string, NetnsCandidate>();

  constructor(options: { netnsDirs?: readonly string[]; procDir?: string } = {}) {
    this.#netnsDirs = options.netnsDirs ?? ['/var/run/netns'];
    this.#procDir = options.procDir ?? '/proc';
  }

  /** The namespace holding `ip`, or throws WEFT_ERR_NETNS_NOT_FOUND. */
  locate(ip: string): NetnsCandidate {
    for (const [inode, addresses] of this.#addressesByInode) {
      if (!addresses.has(ip)) continue;
      const candidate = this.#candidateByInode.get(inode)!;
      const fresh = this.#readAddresses(candidate);
      if (fresh?.has(ip)) return candidate;
    }
    this.#rescan();
    for (const [inode, addresses] of this.#addressesByInode) {
      if (addresses.has(ip)) return this.#candidateByInode.get(inode)!;
    }
    throw new WeftError('WEFT_ERR_NETNS_NOT_FOUND', `no network namespace on this node holds ${ip} (is the pod running on this node?)`);
  }

  #rescan(): void {
    this.#addressesByInode.clear();
    this.#candidateByInode.clear();
    for (const candidate of this.#candidates()) {
      if (this.#candidateByInode.has(candidate.inode)) {
        // Prefer a candidate readable through /proc (no setns needed).
        if (candidate.procNet && !this.#candidateByInode.get(candidate.inode)!.procNet) this.#candidateByInode.set(candidate.inode, candidate);
        continue;
      }
      this.#candidateByInode.set(candidate.inode, candidate);
    }
    for (const [inode, candidate] of this.#candidateByInode) {
      const addresses = this.#readAddresses(candidate);
      if (addresses) this.#addressesByInode.set(inode, addresses);
    }
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
        const path = `${dir}/${name}`;
        const inode = inodeOf(path);
        if (inode) yield { path, inode };
      }
    }
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

function inodeOf(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}
