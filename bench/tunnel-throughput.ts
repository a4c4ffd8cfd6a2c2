/**
 * `node dist/bench/tunnel-throughput.js [h2|tls] [seconds]`: the tunnel alone, on loopback,
 * without the lab — for profiling and for isolating the HTTP/2 layer. Three processes like the
 * real path: this one (the app: a source writing 64 KiB chunks and a sink), a "client agent"
 * (a plain listener whose connections are relayed into the tunnel) and a "server agent" (the
 * tunnel's server, relayed to the sink). `h2` is Weft's tunnel (HbonePool, createHboneServer,
 * relay: HTTP/2 CONNECT over mutual TLS 1.3); `tls` is a bare mutual TLS 1.3 pipe with the same
 * certificates (what the HTTP/2 layer is compared with). Prints Gbit/s and the agents' CPU
 * seconds per GB. `node --cpu-prof --cpu-prof-dir=DIR dist/bench/...` profiles the agents too
 * (forked children inherit the flags).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { CertificateAuthority } from '../agent/identity/ca.js';
import { PlacementAuthorizer } from '../agent/identity/ca-auth.js';
import { InProcessCaClient } from '../agent/identity/ca-client.js';
import { requestCertificate } from '../agent/identity/manager.js';
import { HbonePool } from '../agent/tunnel/pool.js';
import { createHboneServer } from '../agent/tunnel/server.js';
import { relay } from '../agent/proxy/relay.js';
import type { TlsCredentials } from '../agent/tunnel/settings.js';

const TD = 'cluster.local';
const CLIENT_ID = `spiffe://${TD}/ns/bench/sa/client`;
const SERVER_ID = `spiffe://${TD}/ns/bench/sa/server`;
const CHUNK = Buffer.alloc(64 * 1024, 'x');

type Creds = Pick<TlsCredentials, 'identity' | 'keyPem' | 'certPem' | 'chainPem' | 'trustBundle'>;
interface Msg {
  role: 'client' | 'server';
  mode: 'h2' | 'tls';
  creds: Creds;
  /** server: where the sink is; client: where the tunnel server is. */
  port: number;
}

function tlsOptions(c: Creds): tls.SecureContextOptions {
  return { key: c.keyPem, cert: c.certPem + c.chainPem.join(''), ca: c.trustBundle, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function agent(msg: Msg): Promise<void> {
  const upstreamTo = (port: number): net.Socket => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    s.setNoDelay(true);
    return s;
  };
  let port: number;
  if (msg.role === 'server') {
    if (msg.mode === 'h2') {
      const server = createHboneServer({
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
    } else {
      const server = tls.createServer({ ...tlsOptions(msg.creds), requestCert: true, rejectUnauthorized: true, allowHalfOpen: true }, (s) => relay(s, upstreamTo(msg.port), () => undefined));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      port = (server.address() as net.AddressInfo).port;
    }
  } else {
    const pool = new HbonePool({ credentials: async () => msg.creds });
    const server = net.createServer({ allowHalfOpen: true }, (down) => {
      down.setNoDelay(true);
      if (msg.mode === 'h2') {
        void pool.connect({ sourceIdentity: CLIENT_ID, destination: { host: '127.0.0.1', port: msg.port }, expectedIdentity: SERVER_ID, authority: `127.0.0.1:${msg.port}` }).then((stream) => relay(down, stream, () => undefined));
      } else {
        const up = tls.connect({ ...tlsOptions(msg.creds), host: '127.0.0.1', port: msg.port, checkServerIdentity: () => undefined, allowHalfOpen: true } as tls.ConnectionOptions);
        up.setNoDelay(true);
        relay(down, up, () => undefined);
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as net.AddressInfo).port;
  }
  process.send!({ port });
  process.on('message', (m: string) => {
    if (m === 'cpu') process.send!({ cpu: cpuSeconds() });
    if (m === 'exit') process.exit(0);
  });
}

async function main(): Promise<void> {
  const mode = (process.argv[2] ?? 'h2') as 'h2' | 'tls';
  const seconds = Number(process.argv[3] ?? 5);
  const ca = new CertificateAuthority(CertificateAuthority.generateRoot(TD), { authorizer: new PlacementAuthorizer(() => true), trustDomain: TD });
  const caClient = new InProcessCaClient(ca, 'node-a');
  const pick = (c: TlsCredentials): Creds => ({ identity: c.identity, keyPem: c.keyPem, certPem: c.certPem, chainPem: c.chainPem, trustBundle: c.trustBundle });
  const clientCreds = pick(await requestCertificate(caClient, CLIENT_ID));
  const serverCreds = pick(await requestCertificate(caClient, SERVER_ID));

  let received = 0;
  const sink = net.createServer((s) => s.on('data', (d: Buffer) => (received += d.length)));
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');

  const start = async (msg: Msg): Promise<{ child: ChildProcess; port: number }> => {
    const child = fork(new URL(import.meta.url).pathname, ['--agent'], { stdio: 'inherit' });
    child.send(msg);
    const [reply] = (await once(child, 'message')) as [{ port: number }];
    return { child, port: reply.port };
  };
  const server = await start({ role: 'server', mode, creds: serverCreds, port: (sink.address() as net.AddressInfo).port });
  const client = await start({ role: 'client', mode, creds: clientCreds, port: server.port });
  const cpu = async (): Promise<number> => {
    const all = await Promise.all([client.child, server.child].map(async (c) => {
      c.send('cpu');
      const [r] = (await once(c, 'message')) as [{ cpu: number }];
      return r.cpu;
    }));
    return all[0]! + all[1]!;
  };

  const src = net.connect({ port: client.port, host: '127.0.0.1' });
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
  const bytes0 = received;
  const cpu0 = await cpu();
  const t0 = process.hrtime.bigint();
  await until(seconds * 1000);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = received - bytes0;
  const cpuUsed = (await cpu()) - cpu0;
  const gb = bytes / 1e9;
  process.stdout.write(`${mode}: ${((bytes * 8) / elapsed / 1e9).toFixed(2)} Gbit/s, agents' CPU ${(cpuUsed / gb).toFixed(2)} s/GB (${cpuUsed.toFixed(2)} s over ${elapsed.toFixed(1)} s)\n`);
  src.destroy();
  for (const c of [client.child, server.child]) c.send('exit');
  sink.close();
}

if (process.argv.includes('--agent')) {
  process.once('message', (m: Msg) => void agent(m));
} else {
  main().catch((err: unknown) => {
    process.stderr.write(`tunnel-throughput: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}
