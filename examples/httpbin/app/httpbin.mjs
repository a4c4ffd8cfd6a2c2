// An httpbin for the lab: the endpoints Istio's tasks use (circuit breaking, timeouts, retries,
// fault injection), answering as go-httpbin (mccutchen/go-httpbin, Istio's current httpbin image)
// does: header names canonical (Title-Case) with their values as lists, `origin` the first
// X-Forwarded-For address else the peer's. One access-log line per request on stdout (the pod's
// log), as go-httpbin writes it, with the Host the request named besides (a mirrored request's
// says `<host>-shadow`, Istio's mirroring task reads it there). Dependency-free; PORT (default 8080).
//   /get /headers /ip /user-agent /status/CODES /delay/SECONDS /anything[/...] /post /put /patch /delete /health
import http from 'node:http';

const PORT = Number(process.env.PORT ?? 8080);
const MAX_DELAY_MS = 10_000;
const MAX_BODY_BYTES = 1 << 20;

/** Go's textproto.CanonicalMIMEHeaderKey: `x-b3-traceid` -> `X-B3-Traceid`. */
function canonical(name) {
  return name.split('-').map((p) => (p === '' ? p : p[0].toUpperCase() + p.slice(1).toLowerCase())).join('-');
}

function headersOf(req) {
  const out = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = canonical(req.rawHeaders[i]);
    (out[k] ??= []).push(req.rawHeaders[i + 1]);
  }
  return out;
}

function argsOf(url) {
  const out = {};
  for (const [k, v] of url.searchParams) (out[k] ??= []).push(v);
  return out;
}

function origin(req) {
  const xff = req.headers['x-forwarded-for'];
  const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
  return first || req.socket.remoteAddress;
}

function fullUrl(req) {
  return `http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`;
}

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body, null, 2) + '\n';
  res.bodyBytes = Buffer.byteLength(text);
  res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }), 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > MAX_BODY_BYTES) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** What /anything and the method endpoints answer: the request as go-httpbin describes it. */
async function describe(req, url) {
  const data = await readBody(req);
  const type = req.headers['content-type'] ?? '';
  let json = null;
  if (type.includes('json')) {
    try {
      json = JSON.parse(data);
    } catch {
      json = null;
    }
  }
  const form = {};
  if (type.includes('application/x-www-form-urlencoded')) for (const [k, v] of new URLSearchParams(data)) (form[k] ??= []).push(v);
  return { args: argsOf(url), headers: headersOf(req), method: req.method, origin: origin(req), url: fullUrl(req), data, files: {}, form, json };
}

/** `/status/200`, `/status/200,500`, `/status/200:0.9,503:0.1`: one code, or one chosen by weight. */
function pickStatus(spec) {
  const choices = spec.split(',').map((c) => {
    const [code, weight] = c.split(':');
    return { code: Number(code), weight: weight === undefined ? 1 : Number(weight) };
  });
  if (choices.some((c) => !Number.isInteger(c.code) || c.code < 100 || c.code > 599 || !(c.weight >= 0))) return undefined;
  const total = choices.reduce((n, c) => n + c.weight, 0);
  let r = Math.random() * total;
  for (const c of choices) {
    r -= c.weight;
    if (r < 0) return c.code;
  }
  return choices[choices.length - 1].code;
}

/** `/delay/3`, `/delay/0.5`, `/delay/500ms`: milliseconds, capped as go-httpbin caps it; undefined if not a duration. */
function delayMs(spec) {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(spec);
  if (m === null) return undefined;
  const ms = m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
  return Math.min(ms, MAX_DELAY_MS);
}

/** go-httpbin's access-log line (its StdLogObserver), and `host`. */
function logRequest(req, res, started) {
  const size = res.bodyBytes ?? 0;
  const ms = (performance.now() - started).toFixed(2);
  const q = (v) => JSON.stringify(String(v ?? ''));
  process.stdout.write(`time=${q(new Date().toISOString())} status=${res.statusCode} method=${q(req.method)} uri=${q(req.url)} size_bytes=${size} duration_ms=${ms} user_agent=${q(req.headers['user-agent'])} client_ip=${origin(req)} host=${q(req.headers.host)}\n`);
}

const server = http.createServer(async (req, res) => {
  const started = performance.now();
  res.on('finish', () => logRequest(req, res, started));
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;
  try {
    if (path === '/get' && (req.method === 'GET' || req.method === 'HEAD')) {
      return send(res, 200, { args: argsOf(url), headers: headersOf(req), method: req.method, origin: origin(req), url: fullUrl(req) });
    }
    if (path === '/headers') return send(res, 200, { headers: headersOf(req) });
    if (path === '/ip') return send(res, 200, { origin: origin(req) });
    if (path === '/user-agent') return send(res, 200, { 'user-agent': req.headers['user-agent'] ?? '' });
    if (path === '/health' || path === '/status/200' && req.method === 'HEAD') return send(res, 200, { status: 'ok' });
    const status = /^\/status\/([^/]+)$/.exec(path);
    if (status !== null) {
      const code = pickStatus(status[1]);
      if (code === undefined) return send(res, 400, { error: `invalid status ${status[1]}` });
      // As go-httpbin: redirects say where, a teapot says so, everything else has no body.
      if (code >= 300 && code < 400) return send(res, code, undefined, { location: '/redirect/1' });
      if (code === 418) {
        res.writeHead(418, { 'content-type': 'text/plain', 'x-more-info': 'http://tools.ietf.org/html/rfc2324' });
        return res.end("I'm a teapot!");
      }
      return send(res, code, undefined);
    }
    const delay = /^\/delay\/([^/]+)$/.exec(path);
    if (delay !== null) {
      const ms = delayMs(delay[1]);
      if (ms === undefined) return send(res, 400, { error: `invalid delay ${delay[1]}` });
      const timer = setTimeout(async () => send(res, 200, await describe(req, url)), ms);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if (path === '/anything' || path.startsWith('/anything/')) return send(res, 200, await describe(req, url));
    const method = /^\/(post|put|patch|delete)$/.exec(path);
    if (method !== null) {
      if (req.method?.toLowerCase() !== method[1]) return send(res, 405, { error: `method ${req.method} not allowed on ${path}` });
      return send(res, 200, await describe(req, url));
    }
    return send(res, 404, { error: `not found: ${path} (try /get, /status/200, /delay/1, /headers, /ip, /anything)` });
  } catch (err) {
    return send(res, err.status ?? 500, { error: err.message });
  }
});
server.keepAliveTimeout = 5000;
server.listen(PORT, process.env.HOST ?? '0.0.0.0', () => process.stdout.write(`httpbin (${process.env.POD_NAME ?? 'local'}) listening on ${server.address().port}\n`));
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
