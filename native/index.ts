/**
 * koffi bindings for the few socket and namespace calls Node does not offer: setns(2) to make
 * sockets inside a pod's network namespace, SO_MARK / IP_TRANSPARENT / IP_FREEBIND on them,
 * SO_ORIGINAL_DST to read where a redirected connection was going, and bind/listen so a
 * listening socket can be created in one namespace and served by Node's event loop in another.
 *
 * setns(2) with CLONE_NEWNET switches the calling thread only. Every call here runs on the
 * JavaScript thread, synchronously, between a setns into the pod and a setns back, so no other
 * JavaScript (and no libuv callback) ever runs while the thread is in a foreign namespace.
 */
import { createRequire } from 'node:module';
import { openSync, closeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { isIPv4 } from 'node:net';
import { WeftError } from '../agent/errors.js';

const require = createRequire(import.meta.url);
// koffi ships prebuilt binaries; loaded with require because it is a CommonJS package.
const koffi = require('koffi') as typeof import('koffi');

const libc = koffi.load('libc.so.6');
const c = {
  setns: libc.func('int setns(int fd, int nstype)'),
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)'),
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *val, _Inout_ uint32_t *len)'),
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)'),
  listen: libc.func('int listen(int fd, int backlog)'),
  close: libc.func('int close(int fd)'),
  // fcntl is variadic; F_DUPFD_CLOEXEC takes one int, passed like a fixed int on x86_64/aarch64.
  fcntlInt: libc.func('int fcntl(int fd, int cmd, int arg)'),
  getrlimit: libc.func('int getrlimit(int resource, _Out_ uint8_t *rlim)'),
  setrlimit: libc.func('int setrlimit(int resource, const uint8_t *rlim)'),
};

// Linux x86_64/aarch64 constants (stable ABI).
const CLONE_NEWNET = 0x40000000;
const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0x800;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_REUSEPORT = 15;
const SO_MARK = 36;
const SOL_IP = 0;
const IP_TRANSPARENT = 19;
const IP_FREEBIND = 15;
const SO_ORIGINAL_DST = 80;
const SO_LINGER = 13;
const IP_BIND_ADDRESS_NO_PORT = 24;
const RLIMIT_NOFILE = 7;

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) errnoNames.set(value, name);

/** A failed system call: names the call, its target and the errno (EPERM, EADDRINUSE, ...). */
export class SyscallError extends WeftError {
  readonly errno: number;
  readonly errnoName: string;
  readonly syscall: string;
  constructor(syscall: string, errno: number, detail?: string) {
    const name = errnoNames.get(errno) ?? `errno ${errno}`;
    super('WEFT_ERR_SYSCALL', `${syscall}${detail ? `(${detail})` : ''} failed: ${name}${hint(name)}`);
    this.errno = errno;
    this.errnoName = name;
    this.syscall = syscall;
  }
}

function hint(errnoName: string): string {
  if (errnoName === 'EPERM') return ' (needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN)';
  if (errnoName === 'EADDRINUSE') return ' (something else holds that address and port)';
  return '';
}

function check(result: number, syscall: string, detail?: string): number {
  if (result < 0) throw new SyscallError(syscall, koffi.errno(), detail);
  return result;
}

const one = Buffer.alloc(4);
one.writeInt32LE(1);

function setIntOption(fd: number, level: number, name: number, value: number, label: string): void {
  const buf = value === 1 ? one : Buffer.alloc(4);
  if (value !== 1) buf.writeUInt32LE(value >>> 0);
  check(c.setsockopt(fd, level, name, buf, 4), 'setsockopt', label);
}

function sockaddrIn(address: string, port: number): Buffer {
  if (!isIPv4(address)) throw new WeftError('WEFT_ERR_CONFIG', `not an IPv4 address: ${address}`);
  const buf = Buffer.alloc(16);
  buf.writeUInt16LE(AF_INET, 0);
  buf.writeUInt16BE(port, 2);
  const parts = address.split('.');
  for (let i = 0; i < 4; i++) buf[4 + i] = Number(parts[i]);
  return buf;
}

// The agent's own namespace, opened once: every excursion into a pod returns here.
let homeNetnsFd = -1;
function homeNetns(): number {
  if (homeNetnsFd < 0) homeNetnsFd = openSync('/proc/thread-self/ns/net', 'r');
  return homeNetnsFd;
}

/** Opens a network namespace handle (e.g. /var/run/netns/x or /proc/PID/ns/net). */
export function openNetns(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    throw new WeftError('WEFT_ERR_NETNS_NOT_FOUND', `cannot open network namespace ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export function closeNetns(fd: number): void {
  closeSync(fd);
}

/**
 * Runs `fn` with the calling thread inside the network namespace `netnsFd`, then returns home.
 * `fn` must be synchronous; a failure to return home is fatal for the process.
 */
export function inNetns<T>(netnsFd: number, fn: () => T): T {
  const home = homeNetns();
  check(c.setns(netnsFd, CLONE_NEWNET), 'setns', 'CLONE_NEWNET');
  try {
    return fn();
  } finally {
    if (c.setns(home, CLONE_NEWNET) !== 0) {
      // Continuing would open sockets in the wrong namespace; crash loudly instead.
      process.stderr.write(`weft: FATAL: setns back to the agent's namespace failed (errno ${koffi.errno()})\n`);
      process.abort();
    }
  }
}

export interface TcpSocketOptions {
  /** Make the socket inside this network namespace (fd from openNetns); default: current. */
  netnsFd?: number;
  /** SO_MARK value (needs CAP_NET_ADMIN). */
  mark?: number;
  /** IP_TRANSPARENT + IP_FREEBIND, to bind to an address the namespace does not own. */
  transparent?: boolean;
  reuseAddress?: boolean;
  /** SO_REUSEPORT: a second agent can listen on the same port during a handover (same uid). */
  reusePort?: boolean;
  bind?: { address: string; port: number };
  /**
   * IP_BIND_ADDRESS_NO_PORT: a bind to port 0 takes no port until connect(2), which then picks
   * one free for the whole 4-tuple. Without it every bind holds a port of the address, and a
   * burst of connections from one client IP runs the range out (issue 10, EADDRNOTAVAIL).
   */
  bindAddressNoPort?: boolean;
  /** Also listen(2) with this backlog. */
  listenBacklog?: number;
}

/**
 * Creates a non-blocking IPv4 TCP socket with the given options and returns its fd. The fd is
 * closed again if any step fails. Hand it to `net.Server.listen({ fd })` or
 * `new net.Socket({ fd }).connect(...)`.
 */
export function createTcpSocket(options: TcpSocketOptions): number {
  const make = (): number => {
    const fd = check(c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), 'socket', 'AF_INET, SOCK_STREAM');
    try {
      if (options.reuseAddress) setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, 'SO_REUSEADDR');
      if (options.reusePort) setIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, 'SO_REUSEPORT');
      if (options.mark !== undefined) setIntOption(fd, SOL_SOCKET, SO_MARK, options.mark, 'SO_MARK');
      if (options.transparent) {
        setIntOption(fd, SOL_IP, IP_TRANSPARENT, 1, 'IP_TRANSPARENT');
        setIntOption(fd, SOL_IP, IP_FREEBIND, 1, 'IP_FREEBIND');
      }
      if (options.bindAddressNoPort) setIntOption(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1, 'IP_BIND_ADDRESS_NO_PORT');
      if (options.bind) {
        const { address, port } = options.bind;
        if (c.bind(fd, sockaddrIn(address, port), 16) < 0) {
          const err = new SyscallError('bind', koffi.errno(), `${address}:${port}`);
          // Port 0: no process holds "that address"; the local port range is used up for this IP.
          if (port === 0 && (err.errnoName === 'EADDRINUSE' || err.errnoName === 'EADDRNOTAVAIL')) {
            throw new WeftError('WEFT_ERR_PORTS_EXHAUSTED', `no local port left for ${address} (net.ipv4.ip_local_port_range used up): bind failed with ${err.errnoName}`, { cause: err });
          }
          throw err;
        }
      }
      if (options.listenBacklog !== undefined) check(c.listen(fd, options.listenBacklog), 'listen', String(options.listenBacklog));
      return fd;
    } catch (err) {
      c.close(fd);
      throw err;
    }
  };
  return options.netnsFd === undefined ? make() : inNetns(options.netnsFd, make);
}

/** struct linger { int l_onoff = 1; int l_linger = 0; }: close(2) then sends a RST, not a FIN. */
const lingerZero = Buffer.alloc(8);
lingerZero.writeInt32LE(1, 0);

/**
 * Makes the next close of `fd` abortive (SO_LINGER 0: RST, no FIN_WAIT, no TIME_WAIT). For a
 * socket already shut down for writing, where libuv's uv_tcp_close_reset (Node's
 * resetAndDestroy) refuses with EINVAL and the socket would otherwise stay open.
 */
export function setLingerZero(fd: number): void {
  check(c.setsockopt(fd, SOL_SOCKET, SO_LINGER, lingerZero, 8), 'setsockopt', 'SO_LINGER');
}

export interface OpenFileLimit {
  /** The soft limit before the call. */
  previous: number;
  soft: number;
  hard: number;
}

function readNofile(): { soft: bigint; hard: bigint } {
  const buf = Buffer.alloc(16);
  check(c.getrlimit(RLIMIT_NOFILE, buf), 'getrlimit', 'RLIMIT_NOFILE');
  return { soft: buf.readBigUInt64LE(0), hard: buf.readBigUInt64LE(8) };
}

/**
 * Raises RLIMIT_NOFILE's soft limit to the hard limit (the agent holds about two descriptors
 * per proxied connection; the usual soft limit of 1024 is a few hundred connections).
 */
export function raiseOpenFileLimit(): OpenFileLimit {
  const before = readNofile();
  if (before.soft < before.hard) {
    const buf = Buffer.alloc(16);
    buf.writeBigUInt64LE(before.hard, 0);
    buf.writeBigUInt64LE(before.hard, 8);
    check(c.setrlimit(RLIMIT_NOFILE, buf), 'setrlimit', 'RLIMIT_NOFILE');
  }
  const after = readNofile();
  return { previous: Number(before.soft), soft: Number(after.soft), hard: Number(after.hard) };
}

/** The current RLIMIT_NOFILE (tests; the agent reports what raiseOpenFileLimit returned). */
export function openFileLimit(): { soft: number; hard: number } {
  const l = readNofile();
  return { soft: Number(l.soft), hard: Number(l.hard) };
}

const F_DUPFD_CLOEXEC = 1030;

/** A second descriptor (close-on-exec) for the same open socket: it stays open when `fd` is closed. */
export function dupFd(fd: number): number {
  return check(c.fcntlInt(fd, F_DUPFD_CLOEXEC, 0), 'fcntl', 'F_DUPFD_CLOEXEC');
}

export function closeFd(fd: number): void {
  c.close(fd);
}

export interface SocketAddress {
  address: string;
  port: number;
}

const origDstBuf = Buffer.alloc(16);
const origDstLen = [16];

/** The destination a connection had before an iptables REDIRECT/DNAT rewrote it. */
export function originalDestination(fd: number): SocketAddress {
  origDstLen[0] = 16;
  check(c.getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, origDstBuf, origDstLen), 'getsockopt', 'SO_ORIGINAL_DST');
  const b = origDstBuf;
  return { address: `${b[4]}.${b[5]}.${b[6]}.${b[7]}`, port: b.readUInt16BE(2) };
}

/** Reads SO_MARK (used by tests to check what the agent set). */
export function getMark(fd: number): number {
  const buf = Buffer.alloc(4);
  const len = [4];
  check(c.getsockopt(fd, SOL_SOCKET, SO_MARK, buf, len), 'getsockopt', 'SO_MARK');
  return buf.readUInt32LE(0);
}

/** The OS file descriptor behind a connected or accepted net.Socket (Linux TCP handles expose it). */
export function socketFd(socket: import('node:net').Socket): number {
  // _handle is Node's internal TCPWrap; its `fd` is public on Unix but not in the typings.
  const handle = (socket as unknown as { _handle?: unknown })._handle as { fd?: number } | null | undefined;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new WeftError('WEFT_ERR_SYSCALL', 'socket has no file descriptor (closed, or not a TCP socket)');
  return fd;
}
