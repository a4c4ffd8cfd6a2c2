/**
 * `npm run fuzz [-- --time S] [--runs N] [--target NAME]... [--seed N [--path P]]`: runs every fuzz target
 * (test/fuzz/targets.ts) for a bounded time (default 20 s each) or count, one after the other,
 * and prints how many generated inputs each survived. Exits 1 when any target failed, after
 * printing fast-check's report (the shrunk input, its seed and path to replay it).
 * `--json FILE` also writes the outcomes there (for bench/README's table of survived inputs).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { TARGETS, type FuzzOutcome } from './targets.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      time: { type: 'string' },
      runs: { type: 'string' },
      target: { type: 'string', multiple: true, default: [] },
      seed: { type: 'string' },
      path: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const seconds = values.time === undefined ? (values.runs === undefined ? 20 : undefined) : Number(values.time);
  const runs = values.runs === undefined ? 2 ** 31 - 1 : Number(values.runs);
  if ((seconds !== undefined && !(seconds > 0)) || !(runs > 0)) throw new Error('--time and --runs take positive numbers');
  const wanted = new Set((values.target ?? []).flatMap((t) => t.split(',')));
  for (const w of wanted) if (!TARGETS.some((t) => t.name === w)) throw new Error(`no fuzz target ${w}; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  const selected = TARGETS.filter((t) => wanted.size === 0 || wanted.has(t.name));
  const outcomes: FuzzOutcome[] = [];
  for (const target of selected) {
    const open = await target.open();
    try {
      const outcome = await open.check({
        numRuns: runs,
        ...(seconds === undefined ? {} : { timeLimitMs: seconds * 1000 }),
        ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
        ...(values.path === undefined ? {} : { path: values.path }),
      });
      outcomes.push(outcome);
      process.stdout.write(`${outcome.failed ? 'FAIL' : 'ok  '} ${target.name.padEnd(20)} ${String(outcome.runs).padStart(9)} inputs survived in ${(outcome.ms / 1000).toFixed(1)} s (seed ${outcome.seed})\n`);
      if (outcome.report !== undefined) process.stdout.write(`${outcome.report}\n`);
    } finally {
      await open.close();
    }
  }
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ at: new Date().toISOString(), node: process.version, outcomes }, null, 2) + '\n');
  return outcomes.some((o) => o.failed) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`weft fuzz: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
