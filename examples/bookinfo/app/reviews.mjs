// reviews: v1 shows no ratings; v2 (black stars) and v3 (red stars) ask the ratings service,
// with a 10 s timeout as Istio's reviews does, carrying `end-user` and the trace headers on.
import { forwardedHeaders, serve, upstream, VERSION } from './common.mjs';

const RATINGS = process.env.RATINGS_URL ?? 'http://ratings:9080';
const RATINGS_TIMEOUT_MS = 10_000;
const COLOR = { v2: 'black', v3: 'red' }[VERSION];

serve('reviews', async (req, url) => {
  const m = /^\/reviews\/(\d+)$/.exec(url.pathname);
  if (url.pathname === '/health') return { body: { status: 'Reviews is healthy' } };
  if (m === null) return { status: 404, body: { error: 'try /reviews/<id>' } };
  const reviews = [
    { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
    { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
  ];
  if (COLOR === undefined) return { body: { id: Number(m[1]), reviews } };
  const ratings = await upstream(`${RATINGS}/ratings/${m[1]}`, { headers: forwardedHeaders(req), timeoutMs: RATINGS_TIMEOUT_MS });
  for (const r of reviews) {
    const stars = ratings.ok ? ratings.body.ratings?.[r.reviewer] : undefined;
    r.rating = stars === undefined ? { error: 'Ratings service is currently unavailable' } : { stars, color: COLOR };
  }
  // As Istio's reviews: a page without ratings is still a page (200), the stars say what failed.
  return { body: { id: Number(m[1]), reviews, ratings } };
});
