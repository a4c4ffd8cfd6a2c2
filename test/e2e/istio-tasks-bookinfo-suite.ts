/**
 * Istio's Bookinfo traffic-management tasks, run as Istio's pages describe them, on the bookinfo
 * lab (root; istio-tasks-bookinfo.test.ts on the local source, lab `tasks1`, and
 * istio-tasks-bookinfo-kubernetes.test.ts on the Kubernetes-mode lab `ktasks1`, where Istio's
 * CRDs are installed first and every manifest goes through the real kubectl) with Istio's ambient waypoint (`waypoint`, class istio-waypoint, the
 * namespace labelled istio.io/use-waypoint). Each task applies Istio's manifests
 * (test/fixtures/istio/, no namespace: `default`) and checks what the task page says the user
 * sees on the product page (a user logged in as jason carries the cookie the login sets):
 * - request routing: all to v1 (no stars); jason to v2 (black stars), everyone else v1;
 * - traffic shifting: 50/50 v1/v3, then 100 % v3 (red stars); 90/10 v1/v2 with an HTTPRoute;
 * - fault injection: a 7 s delay on ratings for jason breaks the page's reviews (productpage
 *   gives up after 3 s and one retry, though reviews would wait 10 s: the bug the task teaches);
 *   an abort 500 shows "Ratings service is currently unavailable";
 * - request timeouts: 0.5 s on reviews with a 2 s delay on ratings: reviews unavailable,
 *   productpage having tried twice (504 from the waypoint each time, flag UT).
 * Counts are checked with bounds a fair split breaks with probability below 1e-4 (binomial).
 * One lab for the file, with Istio's destination-rule-all (Bookinfo's setup); each task deletes
 * what it applied, as the task's cleanup does.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labDown, labUp } from '../../agent/lab/index.js';
import { bookinfoPodName } from '../helpers/bookinfo.js';
import { waitFor } from '../helpers/wait.js';
import { podNode, waitCaptured } from './helpers.js';
import { podAsyncScript } from './pod-fetch.js';
import { applyFixtures, applyText, deleteFixtures, FIXTURES, enrollWaypoint, requestLines, requestsTotal, waypointMetrics, waypointRoutes, installIstioCrds, type TaskLab } from './istio-tasks-helpers.js';

/** The Bookinfo tasks on `LAB` (istio-tasks-bookinfo.test.ts: local source; -kubernetes: Kubernetes mode). */
export function bookinfoTasksSuite(LAB: TaskLab): void {
  const PAGE = 'http://productpage.default:9080/productpage';
  const RATINGS_UNAVAILABLE = 'Ratings service is currently unavailable';
  let waypointPod = '';

  /** What one product page showed (productpage's JSON reduced to what the tasks look at). */
  interface Page {
    status: number;
    /** The reviews version shown, or null when the reviews part failed. */
    reviews: string | null;
    /** productpage's call to reviews: the last attempt's status (0: no answer), how many attempts, why it failed. */
    reviewsStatus: number;
    reviewsAttempts: number;
    reviewsError: string | null;
    /** Per review: the stars' color, `none` (v1 shows none), or the error text shown instead. */
    stars: string[];
    /** reviews' call to ratings: its status (null when reviews did not call it). */
    ratingsStatus: number | null;
    details: boolean;
    error?: string;
  }

  /**
   * `count` product pages, one after the other, requested from the pod outside the mesh (as a
   * browser through the ingress); `user` logged in (the cookie productpage's /login sets).
   */
  async function pages(count: number, user?: string): Promise<Page[]> {
    const headers = user === undefined ? {} : { cookie: `user=${user}` };
    const script = podAsyncScript(`
      const out = [];
      for (let i = 0; i < ${count}; i++) {
        try {
          const r = await fetch(${JSON.stringify(PAGE)}, { headers: ${JSON.stringify(headers)}, signal: AbortSignal.timeout(20000) });
          const b = await r.json();
          const rv = b.reviews ?? {};
          const body = rv.body ?? {};
          out.push({
            status: r.status,
            reviews: rv.ok ? body.version : null,
            reviewsStatus: rv.status,
            reviewsAttempts: rv.attempts,
            reviewsError: rv.error ?? null,
            stars: rv.ok ? (body.reviews ?? []).map((x) => x.rating === undefined ? 'none' : (x.rating.color ?? x.rating.error)) : [],
            ratingsStatus: body.ratings === undefined ? null : body.ratings.status,
            details: b.details?.ok === true,
          });
        } catch (e) {
          out.push({ status: 0, reviews: null, stars: [], error: e.message });
        }
      }
      process.stdout.write(JSON.stringify(out));`);
    const r = await podNode(LAB.name, 'client', 'outside', script);
    try {
      return JSON.parse(r.stdout) as Page[];
    } catch {
      throw new Error(`the page script printed no result (exit ${r.code}): ${r.stderr || r.stdout}`);
    }
  }

  /** How often each reviews version was shown (`failed` when the reviews part was not). */
  function versionCounts(ps: Page[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of ps) {
      const k = p.reviews ?? 'failed';
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  /** Waits until a few pages show what a task's manifests make them show (the agents and the waypoint read the change). */
  async function converged(what: string, check: (ps: Page[]) => boolean, user?: string, count = 3): Promise<void> {
    let last: Page[] = [];
    try {
      await waitFor(async () => check((last = await pages(count, user))), what, 60_000);
    } catch (err) {
      throw new Error(`${(err as Error).message} (last pages: ${JSON.stringify(last)}; the waypoint's routes: ${await waypointRoutes(LAB, waypointPod).catch(() => '?')})`);
    }
  }

  const allV1 = (ps: Page[]): boolean => ps.every((p) => p.status === 200 && p.reviews === 'v1');

  describe(`Istio Bookinfo tasks on the waypoint${LAB.kubernetes ? ' (Kubernetes mode, kubectl)' : ''}`, () => {
    before(async () => {
      await labDown({ name: LAB.name });
      const status = await labUp({ name: LAB.name, kubernetes: LAB.kubernetes });
      await waitCaptured(LAB.name, 'node-1', [bookinfoPodName(status, 'productpage'), ...['v1', 'v2', 'v3'].map((v) => bookinfoPodName(status, 'reviews', v))].map((n) => `default/${n}`));
      // Kubernetes mode: Istio's CRDs first, as on a cluster without Istio (the agents and the waypoint watch the kinds once served).
      installIstioCrds(LAB);
      waypointPod = await enrollWaypoint(LAB);
      // Bookinfo's setup in Istio's docs: the subsets (version labels) every task's routes name.
      await applyFixtures(LAB, 'destination-rule-all.yaml');
    });

    after(async () => {
      await labDown({ name: LAB.name });
    });

    it('request routing: virtual-service-all-v1 sends every page to reviews v1 (no stars); reviews-test-v2 sends jason to v2 (black stars), the others stay on v1', async () => {
      await applyFixtures(LAB, 'virtual-service-all-v1.yaml');
      try {
        await converged('every page shows reviews v1', allV1);
        for (const user of [undefined, 'jason']) {
          const ps = await pages(20, user);
          assert.deepEqual(versionCounts(ps), { v1: 20 }, `${user ?? 'nobody'} logged in: ${JSON.stringify(ps.find((p) => p.reviews !== 'v1'))}`);
          assert.ok(ps.every((p) => p.stars.every((s) => s === 'none') && p.ratingsStatus === null && p.details));
        }
        await applyFixtures(LAB, 'virtual-service-reviews-test-v2.yaml');
        await converged('jason sees reviews v2', (ps) => ps.every((p) => p.reviews === 'v2'), 'jason');
        const jason = await pages(20, 'jason');
        assert.deepEqual(versionCounts(jason), { v2: 20 });
        assert.ok(jason.every((p) => p.status === 200 && p.stars.length === 2 && p.stars.every((s) => s === 'black') && p.ratingsStatus === 200), JSON.stringify(jason[0]));
        assert.deepEqual(versionCounts(await pages(20)), { v1: 20 }, 'not logged in: v1');
        assert.deepEqual(versionCounts(await pages(10, 'jasonx')), { v1: 10 }, 'another user: v1 (the match is exact)');
      } finally {
        await deleteFixtures(LAB, 'virtual-service-all-v1.yaml');
      }
    });

    it("request routing with Istio's older API versions: virtual-service-all-v1 as networking.istio.io/v1alpha3 and reviews-test-v2 as v1beta1 route as the v1 objects do", async () => {
      // Istio's samples were v1alpha3 for years; its CRDs serve v1, v1beta1 and v1alpha3 with one storage.
      const asVersion = (name: string, version: string): string => readFileSync(join(FIXTURES, name), 'utf8').replaceAll('apiVersion: networking.istio.io/v1\n', `apiVersion: networking.istio.io/${version}\n`);
      await applyText(LAB, asVersion('virtual-service-all-v1.yaml', 'v1alpha3'));
      try {
        await converged('every page shows reviews v1', allV1);
        await applyText(LAB, asVersion('virtual-service-reviews-test-v2.yaml', 'v1beta1'));
        await converged('jason sees reviews v2', (ps) => ps.every((p) => p.reviews === 'v2'), 'jason');
        assert.deepEqual(versionCounts(await pages(10, 'jason')), { v2: 10 });
        assert.deepEqual(versionCounts(await pages(10)), { v1: 10 }, 'not logged in: v1');
      } finally {
        await deleteFixtures(LAB, 'virtual-service-all-v1.yaml');
      }
    });

    it('traffic shifting: reviews-50-v3 splits v1/v3 (each 30..70 of 100, never v2), then reviews-v3 sends all to v3 (red stars)', async () => {
      await applyFixtures(LAB, 'virtual-service-all-v1.yaml');
      try {
        await converged('every page shows reviews v1', allV1);
        await applyFixtures(LAB, 'virtual-service-reviews-50-v3.yaml');
        await converged('v3 shows up', (ps) => ps.some((p) => p.reviews === 'v3'), undefined, 10);
        const counts = versionCounts(await pages(100));
        assert.deepEqual(Object.keys(counts).sort(), ['v1', 'v3'], JSON.stringify(counts));
        // Binomial(100, 0.5): outside 30..70 with probability 3e-5.
        assert.ok(counts['v3']! >= 30 && counts['v3']! <= 70, JSON.stringify(counts));
        await applyFixtures(LAB, 'virtual-service-reviews-v3.yaml');
        await converged('every page shows reviews v3', (ps) => ps.every((p) => p.reviews === 'v3'), undefined, 10);
        const v3 = await pages(20);
        assert.deepEqual(versionCounts(v3), { v3: 20 });
        assert.ok(v3.every((p) => p.stars.length === 2 && p.stars.every((s) => s === 'red')), JSON.stringify(v3[0]));
      } finally {
        await deleteFixtures(LAB, 'virtual-service-all-v1.yaml');
      }
    });

    it('traffic shifting with the Gateway API: route-reviews-90-10 sends v1 about 90 % and v2 about 10 % (v2 1..25 of 100, never v3)', async () => {
      await applyFixtures(LAB, 'route-reviews-90-10.yaml');
      try {
        // Without a route reviews answers from any version; with this one never from v3.
        await converged('reviews v3 no longer answers', (ps) => ps.every((p) => p.reviews === 'v1' || p.reviews === 'v2'), undefined, 20);
        const counts = versionCounts(await pages(100));
        assert.deepEqual(Object.keys(counts).filter((k) => k !== 'v1' && k !== 'v2'), [], JSON.stringify(counts));
        // Binomial(100, 0.1): 0 with probability 2.7e-5, above 25 with about 1e-5.
        assert.ok((counts['v2'] ?? 0) >= 1 && (counts['v2'] ?? 0) <= 25, JSON.stringify(counts));
        assert.equal((counts['v1'] ?? 0) + (counts['v2'] ?? 0), 100);
        const text = await waypointMetrics(LAB, waypointPod);
        assert.ok(requestsTotal(text, { reporter: 'waypoint', destination_service_name: 'reviews-v2', response_code: '200' }) >= (counts['v2'] ?? 0), requestLines(text));
      } finally {
        await deleteFixtures(LAB, 'route-reviews-90-10.yaml');
      }
    });

    it("fault injection: ratings-test-delay (7 s for jason) fails the page's reviews for jason: productpage gave up after 3 s and one retry, the others' pages are fine", async () => {
      await applyFixtures(LAB, 'virtual-service-all-v1.yaml', 'virtual-service-reviews-test-v2.yaml');
      try {
        await converged('jason sees reviews v2', (ps) => ps.every((p) => p.reviews === 'v2'), 'jason');
        const before = await waypointMetrics(LAB, waypointPod);
        await applyFixtures(LAB, 'virtual-service-ratings-test-delay.yaml');
        const delayedBefore = requestsTotal(before, { reporter: 'waypoint', destination_service_name: 'ratings', response_flags: 'DI' });
        await converged('the reviews part fails for jason', (ps) => ps.every((p) => p.reviews === null), 'jason', 1);
        const jason = await pages(2, 'jason');
        for (const p of jason) {
          // Istio's page: "Sorry, product reviews are currently unavailable for this book."
          assert.equal(p.reviews, null, JSON.stringify(p));
          assert.equal(p.reviewsAttempts, 2, 'productpage tried reviews twice (3 s timeout, one retry)');
          assert.equal(p.reviewsStatus, 0, 'no answer from reviews within productpage\'s timeout');
          assert.match(p.reviewsError ?? '', /timeout/i);
          assert.equal(p.details, true, 'details is unaffected');
        }
        const others = await pages(5);
        assert.deepEqual(versionCounts(others), { v1: 5 }, 'pages of everyone else are unaffected');
        // The delayed ratings calls end after their 7 s (reviews waits 10 s): the waypoint counts them with flag DI.
        await waitFor(async () => requestsTotal(await waypointMetrics(LAB, waypointPod), { reporter: 'waypoint', destination_service_name: 'ratings', response_code: '200', response_flags: 'DI' }) > delayedBefore, 'the waypoint counted delayed ratings requests with response_flags DI', 30_000);
      } finally {
        await deleteFixtures(LAB, 'virtual-service-all-v1.yaml');
      }
    });

    it('fault injection: ratings-test-abort (500 for jason) shows "Ratings service is currently unavailable" on jason\'s page; the waypoint counts 500 with flag FI', async () => {
      await applyFixtures(LAB, 'virtual-service-all-v1.yaml', 'virtual-service-reviews-test-v2.yaml');
      try {
        await converged('jason sees reviews v2', (ps) => ps.every((p) => p.reviews === 'v2' && p.ratingsStatus === 200), 'jason');
        await applyFixtures(LAB, 'virtual-service-ratings-test-abort.yaml');
        await converged('ratings aborts for jason', (ps) => ps.every((p) => p.ratingsStatus === 500), 'jason');
        const before = requestsTotal(await waypointMetrics(LAB, waypointPod), { reporter: 'waypoint', destination_service_name: 'ratings', response_code: '500', response_flags: 'FI' });
        const jason = await pages(10, 'jason');
        for (const p of jason) {
          assert.equal(p.status, 200, JSON.stringify(p));
          assert.equal(p.reviews, 'v2');
          assert.equal(p.ratingsStatus, 500);
          assert.deepEqual(p.stars, [RATINGS_UNAVAILABLE, RATINGS_UNAVAILABLE]);
        }
        const text = await waypointMetrics(LAB, waypointPod);
        assert.equal(requestsTotal(text, { reporter: 'waypoint', destination_service_name: 'ratings', response_code: '500', response_flags: 'FI' }) - before, 10, requestLines(text));
        assert.deepEqual(versionCounts(await pages(5)), { v1: 5 }, 'everyone else: reviews v1, no ratings asked');
      } finally {
        await deleteFixtures(LAB, 'virtual-service-all-v1.yaml');
      }
    });

    it('request timeouts: with a 2 s delay on ratings the page shows v2 with stars; with timeout 0.5s on reviews it shows reviews unavailable after productpage\'s two tries (504, flag UT)', async () => {
      await applyFixtures(LAB, 'virtual-service-all-v1.yaml', 'request-timeouts-reviews-v2.yaml');
      try {
        await converged('every page shows reviews v2', (ps) => ps.every((p) => p.reviews === 'v2'));
        await applyFixtures(LAB, 'request-timeouts-ratings-delay.yaml');
        await converged('ratings answers with the delay', (ps) => ps.every((p) => p.reviews === 'v2' && p.ratingsStatus === 200), undefined, 1);
        const before = await waypointMetrics(LAB, waypointPod);
        const delayed = (t: string): number => requestsTotal(t, { reporter: 'waypoint', destination_service_name: 'ratings', response_flags: 'DI' });
        const slow = await pages(2);
        for (const p of slow) assert.deepEqual([p.status, p.reviews, p.stars], [200, 'v2', ['black', 'black']], JSON.stringify(p));
        assert.equal(delayed(await waypointMetrics(LAB, waypointPod)) - delayed(before), 2, 'both ratings calls were delayed (flag DI)');

        const timedOut = (t: string): number => requestsTotal(t, { reporter: 'waypoint', destination_service_name: 'reviews', response_code: '504', response_flags: 'UT' });
        await applyFixtures(LAB, 'request-timeouts-reviews-timeout.yaml');
        await converged('the reviews part fails', (ps) => ps.every((p) => p.reviews === null), undefined, 1);
        const start = timedOut(await waypointMetrics(LAB, waypointPod));
        const ps = await pages(3);
        for (const p of ps) {
          assert.equal(p.reviews, null, JSON.stringify(p));
          assert.equal(p.reviewsStatus, 504, "the waypoint's answer: upstream request timeout");
          assert.equal(p.reviewsAttempts, 2, 'productpage retried once');
          assert.equal(p.details, true);
        }
        const text = await waypointMetrics(LAB, waypointPod);
        assert.equal(timedOut(text) - start, 6, `two timed-out reviews requests per page: ${requestLines(text)}`);
      } finally {
        await deleteFixtures(LAB, 'virtual-service-all-v1.yaml');
      }
    });
  });
}
