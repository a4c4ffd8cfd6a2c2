// productpage: the page, made of details and reviews. 200 only when both answered.
// As Istio's: reviews is called with a 3 s timeout and one retry, details with 3 s; the user
// (`end-user`) is the request's own `end-user` header, else the one /login put in a cookie.
import { forwardedHeaders, serve, upstream } from './common.mjs';

const DETAILS = process.env.DETAILS_URL ?? 'http://details:9080';
const REVIEWS = process.env.REVIEWS_URL ?? 'http://reviews:9080';
const REVIEWS_TIMEOUT_MS = 3000;
const REVIEWS_RETRIES = 1;
const DETAILS_TIMEOUT_MS = 3000;

function cookieUser(req) {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === 'user' && v.length > 0) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

async function formBody(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

serve('productpage', async (req, url, res) => {
  if (url.pathname === '/health') return { body: { status: 'Productpage is healthy' } };
  if (url.pathname === '/login' && req.method === 'POST') {
    const user = (await formBody(req)).get('username') ?? '';
    res.writeHead(302, { location: '/productpage', 'set-cookie': `user=${encodeURIComponent(user)}; Path=/`, 'content-length': 0 });
    res.end();
    return { raw: true };
  }
  if (url.pathname === '/logout') {
    res.writeHead(302, { location: '/productpage', 'set-cookie': 'user=; Path=/; Max-Age=0', 'content-length': 0 });
    res.end();
    return { raw: true };
  }
  if (url.pathname !== '/' && url.pathname !== '/productpage') return { status: 404, body: { error: 'try / or /productpage' } };
  const headers = forwardedHeaders(req);
  const user = headers['end-user'] ?? cookieUser(req);
  if (user !== undefined && user !== '') headers['end-user'] = user;
  const [details, reviews] = await Promise.all([
    upstream(`${DETAILS}/details/0`, { headers, timeoutMs: DETAILS_TIMEOUT_MS }),
    upstream(`${REVIEWS}/reviews/0`, { headers, timeoutMs: REVIEWS_TIMEOUT_MS, retries: REVIEWS_RETRIES }),
  ]);
  return {
    status: details.ok && reviews.ok ? 200 : 502,
    body: { product: 'The Comedy of Errors', user: user ?? null, details, reviews },
  };
});
