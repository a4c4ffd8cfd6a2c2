// reviews: v1 shows no ratings; v2 (black stars) and v3 (red stars) ask the ratings service.
import { serve, upstream } from './common.mjs';

const VERSION = process.env.REVIEWS_VERSION ?? 'v1';
const RATINGS = process.env.RATINGS_URL ?? 'http://ratings:9080';
const COLOR = { v2: 'black', v3: 'red' }[VERSION];

serve('reviews', async (_req, url) => {
  const m = /^\/reviews\/(\d+)$/.exec(url.pathname);
  if (url.pathname === '/health') return { body: { status: 'Reviews is healthy' } };
  if (m === null) return { status: 404, body: { error: 'try /reviews/<id>' } };
  const reviews = [
    { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
    { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
  ];
  if (COLOR === undefined) return { body: { version: VERSION, id: Number(m[1]), reviews } };
  const ratings = await upstream(`${RATINGS}/ratings/${m[1]}`);
  for (const r of reviews) {
    const stars = ratings.ok ? ratings.body.ratings?.[r.reviewer] : undefined;
    r.rating = stars === undefined ? { error: 'Ratings service is currently unavailable' } : { stars, color: COLOR };
  }
  return { status: ratings.ok ? 200 : 502, body: { version: VERSION, id: Number(m[1]), reviews, ratings } };
});
