/**
 * `node dist/bench/tunnel-throughput.js [h2|h2-lean|h2-node|tls|tcp|haproxy-mtls] [seconds] [rate]`: the tunnel
 * alone, on loopback, without the lab — for profiling and for isolating the HTTP/2 layer. Three processes like the
 * real path: this one (the app: a source writing 64 KiB chunks and a sink), a "client agent"
 * (a plain listener whose connections are relayed into the tunnel) and a "server agent" (the
 * tunnel's server, relayed to the sink). `h2` is Weft's tunnel (HbonePool, createHboneServer,
 * relay: HTTP/2 CONNECT over mutual TLS 1.3); `tls` is a bare mutual TLS 1.3 pipe with the same
 * certificates (what the HTTP/2 layer is compared with); `tcp` is a plain TCP relay in the same
 * two processes (Node's floor: no crypto at all); `aead` is that relay with TLS 1.3's record layer
 * done in JavaScript (bench/aead-records.ts: a measuring stick for a plaintext-socket design, no
 * handshake); `haproxy-mtls` is the bench's HAProxy pair
 * (bench/haproxy-config.ts, one thread each) on 127.0.0.2 / 127.0.0.3. Prints Gbit/s and the
 * proxies' CPU seconds per GB; with a rate, 1 KiB requests and responses at that rate over 16
 * connections instead: latency from each write to its answer, and the proxies' CPU per 1000
 * requests (the latency scenario's figure). `node --cpu-prof --cpu-prof-dir=DIR dist/bench/...` profiles the agents too
 * (forked children inherit the flags).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { CertificateAuthority } from '../agent/identity/ca.js';
import { PlacementAuthorizer } from '../agent/identity/ca-auth.js';
import { InProcessCaClient } from '../agent/identity/ca-client.js';
import { requestCertificate } from '../agent/identity/manager.js';
import { HbonePool } from '../agent/tunnel/pool.js';
import { createHboneServer } from '../agent/tunnel/server.js';
import type { HboneImpl } from '../agent/tunnel/impl.js';
import { adoptAccepted, relay, REUSED_READS } from '../agent/proxy/relay.js';
import { aeadRelay, SEALED_READS, type DirectionKeys } from './aead-records.js';
import type { TlsCredentials } from '../agent/tunnel/settings.js';
import { makeCerts } from './certs.js';
import { DEFAULT_TRUST_DOMAIN } from '../agent/config.js';
import { haproxyConfig, TLS_PORT_OFFSET } from './haproxy-config.js';
import { cpuTimes, type CpuSplit } from './proc-stats.js';
import { listeningPorts } from './netns-process.js';
import { newLatencyHistogram, summarize } from './histogram.js';

const TD = DEFAULT_TRUST_DOMAIN;
const CLIENT_ID = `spiffe://${TD}/ns/bench/sa/client`;
const SERVER_ID = `spiffe://${TD}/ns/bench/sa/server`;
const CHUNK = Buffer.alloc(64 * 1024, 'x');
const REQUEST_BYTES = 1024;
const REQUEST = Buffer.alloc(REQUEST_BYTES, 'q');
const RESPONSE = Buffer.alloc(REQUEST_BYTES, 'r');
const RR_CONNECTIONS = 16;
/**
 * The V8 flags of the three processes (the app and both proxies). Every socket read and TLS record is a fresh ArrayBuffer (external
 * memory); V8 counts external bytes allocated since the last Mark-Compact against the
 * old-generation limit, which it sizes from the live heap. These processes hold ~8.5 MB, so the
 * limit left ~29 MB of slack, less than the ~32 MB of ArrayBuffers at which V8 reacts to external
 * memory pressure: every pressure scavenge was followed by a full Mark-Compact (every 25-70 ms in
 * bulk). The agents hold 40+ MB and get only the scavenges. A 64 MB initial old space gives these
 * processes the same slack, so the floors measure the relay, not a GC pattern the agents do not have (the app process stormed
 * the same way, as the load generator).
 * WEFT_TUNNEL_NODE_FLAGS replaces it (`WEFT_TUNNEL_NODE_FLAGS= ` shows the storm).
 */
const PROXY_NODE_FLAGS = (process.env['WEFT_TUNNEL_NODE_FLAGS'] ?? '--initial-old-space-size=64').split(' ').filter((f) => f !== '');

type Mode = 'h2' | 'h2-lean' | 'h2-node' | 'tls' | 'tcp' | 'aead' | 'haproxy-mtls';
type AgentMode = Exclude<Mode, 'haproxy-mtls'>;
const MODES: readonly Mode[] = ['h2', 'h2-lean', 'h2-node', 'tls', 'tcp', 'aead', 'haproxy-mtls'];
/** `h2` is the process default (WEFT_HBONE_IMPL, else lean); `h2-lean` / `h2-node` name the HTTP/2 implementation. */
function hboneImpl(mode: AgentMode): { impl?: HboneImpl } {
  return mode === 'h2-lean' ? { impl: 'lean' } : mode === 'h2-node' ? { impl: 'node' } : {};
}
const isH2 = (mode: AgentMode): boolean => mode === 'h2' || mode === 'h2-lean' || mode === 'h2-node';
type Creds = Pick<TlsCredentials, 'identity' | 'keyPem' | 'certPem' | 'chainPem' | 'trustBundle'>;
interface Msg {
  role: 'client' | 'server';
  mode: AgentMode;
  creds: Creds;
  /** server: where the sink is; client: where the tunnel server is. */
  port: number;
  /** aead: the record keys (hex) of each direction; random per run. */
  aead?: { toServer: { key: string; iv: string }; toClient: { key: string; iv: string } };
}

function aeadKeys(msg: Msg): { toServer: DirectionKeys; toClient: DirectionKeys } {
  const k = (d: { key: string; iv: string }): DirectionKeys => ({ key: Buffer.from(d.key, 'hex'), iv: Buffer.from(d.iv, 'hex') });
  return { toServer: k(msg.aead!.toServer), toClient: k(msg.aead!.toClient) };
}


function tlsOptions(c: Creds): tls.SecureContextOptions {
  return { key: c.keyPem, cert: c.certPem + c.chainPem.join(''), ca: c.trustBundle, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' };
}

/** Listens on an ephemeral loopback port. */
async function listenLoopback(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/**
 * The proxies' plain TCP sockets read into reused buffers as the agent's do (relay.ts
 * REUSED_READS for the sockets they make, adoptAccepted for the accepted ones);
 * WEFT_TUNNEL_ONREAD=0 reads the default way (a new ArrayBuffer per read).
 */
const REUSED = process.env['WEFT_TUNNEL_ONREAD'] !== '0';
const adopt = (s: net.Socket): net.Socket => (REUSED ? adoptAccepted(s) : s);

async function agent(msg: Msg): Promise<void> {
  const upstreamTo = (port: number): net.Socket => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, ...(REUSED ? { onread: REUSED_READS } : {}) });
    s.setNoDelay(true);
    return s;
  };
  let port: number;
  if (msg.role === 'server') {
    if (isH2(msg.mode)) {
      const server = createHboneServer({
        ...hboneImpl(msg.mode),
        credentials: () => msg.creds,
        onStream: (stream) => {
          const up = upstreamTo(msg.port);
          up.once('connect', () => {
            stream.respond({ ':status': 200 });
            relay(stream, up, () => undefined);
          });
        },
      });
      port = (await server.listen(0, '127.0.0.1')).port;
    } else if (msg.mode === 'aead') {
      const keys = aeadKeys(msg);
      const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (s) => {
        const up = net.connect({ port: msg.port, host: '127.0.0.1', allowHalfOpen: true });
        up.setNoDelay(true);
        const sealed = adoptAccepted(s, SEALED_READS);
        sealed.setNoDelay(true);
        aeadRelay(up, sealed, keys.toClient, keys.toServer);
      });
      port = await listenLoopback(server);
    } else if (msg.mode === 'tcp') {
      port = await listenLoopback(net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: REUSED }, (s) => relay(adopt(s), upstreamTo(msg.port), () => undefined)));
    } else {
      const server = tls.createServer({ ...tlsOptions(msg.creds), requestCert: true, rejectUnauthorized: true, allowHalfOpen: true, noDelay: true }, (s) => relay(s, upstreamTo(msg.port), () => undefined));
      port = await listenLoopback(server);
    }
  } else {
    const pool = new HbonePool({ credentials: async () => msg.creds, ...hboneImpl(msg.mode) });
    const keys = msg.mode === 'aead' ? aeadKeys(msg) : undefined;
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: REUSED }, (accepted) => {
      if (keys !== undefined) {
        accepted.setNoDelay(true);
        const up = net.connect({ port: msg.port, host: '127.0.0.1', allowHalfOpen: true, onread: SEALED_READS });
        up.setNoDelay(true);
        aeadRelay(accepted, up, keys.toServer, keys.toClient);
        // Paused when the other modes read with onread (pauseOnConnect); this one reads 'data'.
        accepted.resume();
        return;
      }
      const down = adopt(accepted);
      down.setNoDelay(true);
      if (msg.mode === 'tcp') {
        relay(down, upstreamTo(msg.port), () => undefined);
      } else if (isH2(msg.mode)) {
        void pool.connect({ sourceIdentity: CLIENT_ID, destination: { host: '127.0.0.1', port: msg.port }, expectedIdentity: SERVER_ID, authority: `127.0.0.1:${msg.port}` }).then((stream) => relay(down, stream, () => undefined));
      } else {
        const up = tls.connect({ ...tlsOptions(msg.creds), host: '127.0.0.1', port: msg.port, checkServerIdentity: () => undefined, allowHalfOpen: true } as tls.ConnectionOptions);
        up.setNoDelay(true);
        relay(down, up, () => undefined);
      }
    });
    port = await listenLoopback(server);
  }
  process.send!({ port });
  process.on('message', (m: string) => {
    if (m === 'exit') process.exit(0);
  });
}

async function main(): Promise<void> {
  const mode = (process.argv[2] ?? 'h2') as Mode;
  if (!MODES.includes(mode)) throw new Error(`mode must be one of ${MODES.join(', ')}, not ${mode}`);
  const seconds = Number(process.argv[3] ?? 5);
  const rr = process.argv[4] !== undefined;
  const rate = Number(process.argv[4] ?? 0);
  const ca = new CertificateAuthority(CertificateAuthority.generateRoot(TD), { authorizer: new PlacementAuthorizer(() => true), trustDomain: TD });
  const caClient = new InProcessCaClient(ca, 'node-a');
  const pick = (c: TlsCredentials): Creds => ({ identity: c.identity, keyPem: c.keyPem, certPem: c.certPem, chainPem: c.chainPem, trustBundle: c.trustBundle });
  const clientCreds = pick(await requestCertificate(caClient, CLIENT_ID));
  const serverCreds = pick(await requestCertificate(caClient, SERVER_ID));

  let received = 0;
  // rr: answers every REQUEST_BYTES received with as many bytes (a 1 KiB request/response app)
  const sink = net.createServer((s) => {
    s.setNoDelay(true);
    // the agents exit with connections open: a reset at the end is expected
    s.on('error', () => undefined);
    let pending = 0;
    s.on('data', (d: Buffer) => {
      received += d.length;
      if (!rr) return;
      pending += d.length;
      while (pending >= REQUEST_BYTES) {
        pending -= REQUEST_BYTES;
        s.write(RESPONSE);
      }
    });
  });
  const sinkPort = await listenBelow(sink, 65_535 - TLS_PORT_OFFSET);
  const proxies = mode === 'haproxy-mtls' ? await startHaproxy(sinkPort) : await forkAgents(mode, clientCreds, serverCreds, sinkPort);
  try {
    if (rr) await requestResponse(proxies.entry, rate, seconds, proxies.cpu, mode);
    else await bulk(proxies.entry, seconds, proxies.cpu, mode, () => received);
  } finally {
    await proxies.stop();
    sink.close();
  }
}

/** The two proxies of a mode: where the app connects, their CPU seconds so far (utime + stime from /proc, as the bench reads them), and a stop. */
interface Proxies {
  entry: { host: string; port: number };
  cpu(): Promise<CpuSplit>;
  stop(): Promise<void>;
}

/** Listens on an ephemeral loopback port at or below `max` (HAProxy's TLS port is the port + 10,000). */
async function listenBelow(server: net.Server, max: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenLoopback(server);
    if (port <= max) return port;
    server.close();
    await once(server, 'close');
  }
  throw new Error(`no ephemeral port at or below ${max} in 50 attempts`);
}

async function forkAgents(mode: AgentMode, clientCreds: Creds, serverCreds: Creds, sinkPort: number): Promise<Proxies> {
  const start = async (msg: Msg): Promise<{ child: ChildProcess; port: number }> => {
    const child = fork(new URL(import.meta.url).pathname, ['--agent'], { stdio: 'inherit' });
    child.send(msg);
    const [reply] = (await once(child, 'message')) as [{ port: number }];
    return { child, port: reply.port };
  };
  const hex = (n: number): string => randomBytes(n).toString('hex');
  const aead = mode === 'aead' ? { toServer: { key: hex(32), iv: hex(12) }, toClient: { key: hex(32), iv: hex(12) } } : undefined;
  const server = await start({ role: 'server', mode, creds: serverCreds, port: sinkPort, ...(aead ? { aead } : {}) });
  const client = await start({ role: 'client', mode, creds: clientCreds, port: server.port, ...(aead ? { aead } : {}) });
  const children = [client.child, server.child];
  const pids = children.map((c) => c.pid!);
  return {
    entry: { host: '127.0.0.1', port: client.port },
    cpu: async () => cpuTimes(pids),
    stop: async () => {
      for (const c of children) c.send('exit');
    },
  };
}

/** The bench's HAProxy pair on loopback: app -> 127.0.0.2:P -> mutual TLS -> 127.0.0.3:P+10000 -> sink 127.0.0.1:P. */
async function startHaproxy(sinkPort: number): Promise<Proxies> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-tunnel-haproxy-'));
  const certs = await makeCerts(dir);
  const ports = [sinkPort];
  const common = { ports, caFile: certs.caFile, maxconn: 1000 };
  await writeFile(join(dir, 'client.cfg'), haproxyConfig({ ...common, role: 'client', certPem: certs.clientPem, listenIp: '127.0.0.2', peerIp: '127.0.0.3' }));
  await writeFile(join(dir, 'server.cfg'), haproxyConfig({ ...common, role: 'server', certPem: certs.serverPem, listenIp: '127.0.0.3', podIp: '127.0.0.1' }));
  const children = ['server', 'client'].map((side) => spawn('haproxy', ['-db', '-f', join(dir, `${side}.cfg`)], { stdio: ['ignore', 'inherit', 'inherit'] }));
  const stop = async (): Promise<void> => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitListening('127.0.0.3', sinkPort + TLS_PORT_OFFSET);
    await waitListening('127.0.0.2', sinkPort);
  } catch (err) {
    await stop();
    throw err;
  }
  const pids = children.map((c) => c.pid!);
  return { entry: { host: '127.0.0.2', port: sinkPort }, cpu: async () => cpuTimes(pids), stop };
}

/** Bounded: 100 looks at /proc/net/tcp, 50 ms apart (no probe connection, which HAProxy would log). */
async function waitListening(host: string, port: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (listeningPorts(readFileSync('/proc/net/tcp', 'utf8')).has(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`haproxy did not listen on ${host}:${port} within 5 s`);
}

/** CPU seconds between two readings, and the user/system split per `per` units of work as text. */
function cpuBetween(before: CpuSplit, after: CpuSplit, per: number, unit: string, digits: number): { total: number; split: string } {
  const user = after.user - before.user;
  const system = after.system - before.system;
  return { total: user + system, split: `user ${(user / per).toFixed(digits)} / system ${(system / per).toFixed(digits)} ${unit}` };
}

async function bulk(entry: Proxies['entry'], seconds: number, cpu: () => Promise<CpuSplit>, mode: string, received: () => number): Promise<void> {
  const src = net.connect(entry);
  await once(src, 'connect');
  // Warm-up: the first second (handshake, window growth) is not measured.
  const until = (ms: number): Promise<void> => new Promise((resolve) => {
    const end = Date.now() + ms;
    const pump = (): void => {
      while (Date.now() < end) if (!src.write(CHUNK)) return void src.once('drain', pump);
      resolve();
    };
    pump();
  });
  await until(1000);
  const bytes0 = received();
  const cpu0 = await cpu();
  const t0 = process.hrtime.bigint();
  await until(seconds * 1000);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = received() - bytes0;
  const gb = bytes / 1e9;
  const used = cpuBetween(cpu0, await cpu(), gb, 's/GB', 2);
  const cpuUsed = used.total;
  process.stdout.write(`${mode}: ${((bytes * 8) / elapsed / 1e9).toFixed(2)} Gbit/s, proxies' CPU ${(cpuUsed / gb).toFixed(2)} s/GB (${used.split}; ${cpuUsed.toFixed(2)} s over ${elapsed.toFixed(1)} s)\n`);
  src.destroy();
}

/**
 * `rate` requests per second over RR_CONNECTIONS connections for `seconds` (after 1 s of warm-up
 * at the same rate): the proxies' CPU per 1000 requests, the figure the latency scenario reports.
 */
async function requestResponse(entry: Proxies['entry'], rate: number, seconds: number, cpu: () => Promise<CpuSplit>, mode: string): Promise<void> {
  // Each connection's requests in flight, by the time they were written (answers come in order).
  const inFlight: number[][] = [];
  let latency = newLatencyHistogram();
  let answered = 0;
  const conns = await Promise.all(
    Array.from({ length: RR_CONNECTIONS }, async (_, i) => {
      const c = net.connect(entry);
      c.setNoDelay(true);
      await once(c, 'connect');
      const sentAt: number[] = (inFlight[i] = []);
      let pending = 0;
      c.on('data', (d: Buffer) => {
        pending += d.length;
        const now = performance.now();
        for (; pending >= REQUEST_BYTES; pending -= REQUEST_BYTES) {
          answered++;
          latency.recordValue(Math.max(1, Math.round((now - sentAt.shift()!) * 1000)));
        }
      });
      return c;
    }),
  );
  const run = (ms: number): Promise<number> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      let sent = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        const elapsed = now - t0;
        const due = Math.min(Math.floor((elapsed * rate) / 1000), Math.floor((ms * rate) / 1000));
        for (; sent < due; sent++) {
          inFlight[sent % RR_CONNECTIONS]!.push(now);
          conns[sent % RR_CONNECTIONS]!.write(REQUEST);
        }
        if (elapsed >= ms) {
          clearInterval(timer);
          resolve(sent);
        }
      }, 1);
    });
  await run(1000);
  latency = newLatencyHistogram();
  const answered0 = answered;
  const cpu0 = await cpu();
  await run(seconds * 1000);
  const cpu1 = await cpu();
  const done = answered - answered0;
  const used = cpuBetween(cpu0, cpu1, done / 1000 / 1000, 'ms', 1);
  const cpuUsed = used.total;
  const l = summarize(latency);
  const perThousand = ((cpuUsed * 1e3 * 1000) / done).toFixed(1);
  process.stdout.write(`${mode} rr @ ${rate}/s: ${done} answered, latency from the write p50 ${l.p50} p90 ${l.p90} p99 ${l.p99} ms, proxies' CPU ${perThousand} ms per 1000 requests (${used.split})\n`);
  for (const c of conns) c.destroy();
}

/** The app process runs with the proxies' flags too (it reads as much as they do): re-run under them once. */
function rerunWithFlags(): boolean {
  if (PROXY_NODE_FLAGS.every((f) => process.execArgv.includes(f))) return false;
  const child = spawn(process.execPath, [...process.execArgv, ...PROXY_NODE_FLAGS, ...process.argv.slice(1)], { stdio: 'inherit' });
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)));
  return true;
}

if (process.argv.includes('--agent')) {
  process.once('message', (m: Msg) => void agent(m));
} else if (!rerunWithFlags()) {
  main().catch((err: unknown) => {
    process.stderr.write(`tunnel-throughput: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}
