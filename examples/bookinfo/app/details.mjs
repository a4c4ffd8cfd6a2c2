// details: facts about a book.
import { serve } from './common.mjs';

serve('details', async (_req, url) => {
  const m = /^\/details\/(\d+)$/.exec(url.pathname);
  if (url.pathname === '/health') return { body: { status: 'Details is healthy' } };
  if (m === null) return { status: 404, body: { error: 'try /details/<id>' } };
  return {
    body: {
      id: Number(m[1]),
      author: 'William Shakespeare',
      year: 1595,
      type: 'paperback',
      pages: 200,
      publisher: 'PublisherA',
      language: 'English',
      'ISBN-10': '1234567890',
      'ISBN-13': '123-1234567890',
    },
  };
});
