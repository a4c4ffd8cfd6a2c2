// What the four bookinfo services share: a JSON HTTP server on PORT (default 9080) that says
// which pod answered and which client address it saw, and a bounded JSON GET to an upstream.
import http from 'node:http';

export const POD = process.env.POD_NAME ?? 'unknown';
export const PORT = Number(process.env.PORT ?? 9080);
const UPSTREAM_TIMEOUT_MS = Number(process.env.UPSTREAM_TIMEOUT_MS ?? 3000);

/**
 * Serves `handler(req, url)` -> { status?, body } as JSON; every body gets `service`, `pod` and
 * `clientAddress` (the peer address of the TCP connection as this server saw it).
 */
export function serve(service, handler) {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let status = 200;
    let body;
    try {
      const out = await handler(req, url);
      status = out.status ?? 200;
      body = out.body;
    } catch (err) {
      status = 500;
      body = { error: err instanceof Error ? err.message : String(err) };
    }
    const json = JSON.stringify({ service, pod: POD, clientAddress: req.socket.remoteAddress, ...body });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  });
  server.keepAliveTimeout = 5000;
  // 0.0.0.0, not ::, so clientAddress is a plain IPv4 address.
  server.listen(PORT, '0.0.0.0', () => {
    process.stdout.write(`${service} (${POD}) listening on ${PORT}\n`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return server;
}

/** GET url -> { status, body } (body parsed as JSON when it is). Never hangs past the timeout. */
export function getJson(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false, timeout: UPSTREAM_TIMEOUT_MS }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          body = { raw: text };
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${UPSTREAM_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

/** An upstream call as part of a response: its body, or why it failed. */
export async function upstream(url) {
  try {
    const { status, body } = await getJson(url);
    return { ok: status >= 200 && status < 300, status, body };
  } catch (err) {
    return { ok: false, status: 0, error: `${err.code ?? ''} ${err.message}`.trim() };
  }
}
