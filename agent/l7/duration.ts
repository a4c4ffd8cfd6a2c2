/**
 * Gateway API durations (GEP-2257): up to four `<1-5 digits><h|m|s|ms>` parts, summed as Go's
 * time.ParseDuration does (`1m30s`, `500ms`, `1h`). `0s` means "no timeout".
 */
const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const PART = /([0-9]{1,5})(ms|h|m|s)/g;
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** Milliseconds, or undefined when `text` is not a Gateway API duration. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}
