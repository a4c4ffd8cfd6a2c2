// ratings: stars per reviewer.
import { serve } from './common.mjs';

serve('ratings', async (_req, url) => {
  const m = /^\/ratings\/(\d+)$/.exec(url.pathname);
  if (url.pathname === '/health') return { body: { status: 'Ratings is healthy' } };
  if (m === null) return { status: 404, body: { error: 'try /ratings/<id>' } };
  return { body: { id: Number(m[1]), ratings: { Reviewer1: 5, Reviewer2: 4 } } };
});
