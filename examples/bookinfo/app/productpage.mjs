// productpage: the page, made of details and reviews. 200 only when both answered.
import { serve, upstream } from './common.mjs';

const DETAILS = process.env.DETAILS_URL ?? 'http://details:9080';
const REVIEWS = process.env.REVIEWS_URL ?? 'http://reviews:9080';

serve('productpage', async (_req, url) => {
  if (url.pathname === '/health') return { body: { status: 'Productpage is healthy' } };
  if (url.pathname !== '/' && url.pathname !== '/productpage') return { status: 404, body: { error: 'try / or /productpage' } };
  const [details, reviews] = await Promise.all([upstream(`${DETAILS}/details/0`), upstream(`${REVIEWS}/reviews/0`)]);
  return { status: details.ok && reviews.ok ? 200 : 502, body: { product: 'The Comedy of Errors', details, reviews } };
});
