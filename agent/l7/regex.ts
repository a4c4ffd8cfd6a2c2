/**
 * RegularExpression matches (paths, headers, query parameters, gRPC methods) run against input
 * an attacker chooses, so no accepted pattern may backtrack without bound
 * (docs/gateway-api.md, "Regular expressions"):
 * - at most MAX_REGEX_LENGTH characters; no backreferences, no lookaround (RE2, which
 *   Envoy-based meshes use, has neither, so a pattern that works there is not refused for these);
 * - a pattern with at most one unbounded quantifier (`*`, `+`, `{n,}`), bounded counted
 *   repetitions whose choices multiply to little (MAX_CHOICES*), and no quantifier on a group
 *   holding a quantifier or an alternation runs on V8's backtracking engine: anchored, its work
 *   is linear in the input times a constant of the pattern;
 * - any other pattern (`.*a.*b` takes V8 1.6 s on 16 KiB of input; `(a+)+` is exponential) runs
 *   on V8's linear-time engine (the `l` flag, enabled here with --enable-experimental-regexp-engine)
 *   and is accepted only if that engine takes it (it refuses large counted repetitions);
 *   without that engine (a Node whose V8 lacks it) such a pattern is refused.
 * Matches are whole-string (`^(?:p)$`), as Envoy's safe_regex matches are.
 */
import { setFlagsFromString } from 'node:v8';

export const MAX_REGEX_LENGTH = 256;

/** Whether V8's linear-time engine is available (the flag is process-wide; set once here). */
export const LINEAR_ENGINE: boolean = (() => {
  const probe = () => {
    try {
      new RegExp('a', 'l');
      return true;
    } catch {
      return false;
    }
  };
  if (probe()) return true;
  try {
    setFlagsFromString('--enable-experimental-regexp-engine');
  } catch {
    return false;
  }
  return probe();
})();

interface Shape {
  /** A quantifier on a group that holds a quantifier or an alternation. */
  readonly nested: boolean;
  /** `*`, `+`, `{n,}`. */
  readonly unbounded: number;
  /** The product of the counts each bounded quantifier can try: what backtracking may multiply. */
  readonly boundedChoices: number;
}

/**
 * Backtracking's worst case is about input length x boundedChoices with one unbounded
 * quantifier, boundedChoices without: these bounds keep it under ~10^7 steps for 16 KiB.
 */
const MAX_CHOICES_WITH_UNBOUNDED = 1000;
const MAX_CHOICES = 1_000_000;

/** How a pattern is run: '' backtracking, 'l' linear; or why it is refused. */
function plan(pattern: string): { readonly flags: '' | 'l' } | { readonly problem: string } {
  if (pattern.length > MAX_REGEX_LENGTH) return { problem: `regular expression longer than ${MAX_REGEX_LENGTH} characters` };
  try {
    new RegExp(pattern);
  } catch (err) {
    return { problem: `not a valid regular expression (${(err as Error).message})` };
  }
  const shape = scan(pattern);
  if (typeof shape === 'string') return { problem: shape };
  if (!shape.nested && (shape.unbounded === 0 ? shape.boundedChoices <= MAX_CHOICES : shape.unbounded === 1 && shape.boundedChoices <= MAX_CHOICES_WITH_UNBOUNDED)) return { flags: '' };
  if (!LINEAR_ENGINE) {
    return {
      problem: shape.nested
        ? 'a quantifier on a group that contains a quantifier or an alternation is not supported (catastrophic backtracking)'
        : 'more than one unbounded quantifier (*, +, {n,}), or large counted repetitions with one, need a linear-time regex engine, which this Node lacks',
    };
  }
  try {
    new RegExp(pattern, 'l');
  } catch {
    return { problem: 'cannot be matched in linear time: V8\'s linear engine refuses it (large counted repetitions such as {0,100} combined with several unbounded quantifiers or nested ones)' };
  }
  return { flags: 'l' };
}

/** undefined when the pattern is acceptable, else why not (for a field error). */
export function regexProblem(pattern: string): string | undefined {
  const p = plan(pattern);
  return 'problem' in p ? p.problem : undefined;
}

/** Backreferences and lookaround, or the pattern's shape. */
function scan(pattern: string): Shape | string {
  // One pass over the pattern with a stack of open groups; each group remembers whether it
  // holds a quantifier or an alternation, so the quantifier after its `)` can be judged.
  interface Group {
    quantified: boolean;
    alternation: boolean;
  }
  const stack: Group[] = [{ quantified: false, alternation: false }];
  let unbounded = 0;
  let boundedChoices = 1;
  let nested = false;
  let inClass = false;
  let lastClosed: Group | undefined;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const n = pattern[i + 1] ?? '';
      if (!inClass && /[1-9]/.test(n)) return 'backreferences are not supported';
      if (!inClass && n === 'k' && pattern[i + 2] === '<') return 'backreferences are not supported';
      i++;
      lastClosed = undefined;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      lastClosed = undefined;
      continue;
    }
    if (c === '(') {
      if (pattern.startsWith('(?=', i) || pattern.startsWith('(?!', i) || pattern.startsWith('(?<=', i) || pattern.startsWith('(?<!', i)) {
        return 'lookahead and lookbehind are not supported';
      }
      stack.push({ quantified: false, alternation: false });
      // `(?:` and `(?<name>`: the `?` opens a group form, it quantifies nothing.
      if (pattern[i + 1] === '?') {
        if (pattern[i + 2] === '<') {
          const end = pattern.indexOf('>', i);
          i = end === -1 ? i + 2 : end;
        } else i += 2;
      }
      lastClosed = undefined;
      continue;
    }
    if (c === ')') {
      const g = stack.pop()!;
      const parent = stack[stack.length - 1]!;
      if (g.quantified) parent.quantified = true;
      lastClosed = g;
      continue;
    }
    if (c === '|') {
      stack[stack.length - 1]!.alternation = true;
      lastClosed = undefined;
      continue;
    }
    let isQuantifier = false;
    let isUnbounded = false;
    /** How many counts a bounded quantifier can try (`?`: 2, `{2,5}`: 4). */
    let choices = 1;
    if (c === '*' || c === '+') {
      isQuantifier = isUnbounded = true;
    } else if (c === '?') {
      // `??`, `*?`, `+?` are lazy markers of the quantifier before, not quantifiers of their own.
      const prev = pattern[i - 1];
      isQuantifier = !(prev === '*' || prev === '+' || prev === '?' || prev === '}') || pattern[i - 2] === '\\';
      choices = 2;
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
      if (m !== null) {
        isQuantifier = true;
        if (m[2] !== undefined && m[3] === '') isUnbounded = true;
        else if (m[2] !== undefined) choices = Math.max(1, Number(m[3]) - Number(m[1]) + 1);
        i += m[0].length - 1;
      }
    }
    if (isQuantifier) {
      if (lastClosed !== undefined && (lastClosed.quantified || lastClosed.alternation)) {
        nested = true;
      }
      stack[stack.length - 1]!.quantified = true;
      if (isUnbounded) unbounded++;
      else boundedChoices = Math.min(boundedChoices * choices, Number.MAX_SAFE_INTEGER);
      lastClosed = undefined;
      continue;
    }
    lastClosed = undefined;
  }
  return { nested, unbounded, boundedChoices };
}

/** The whole-string matcher for an accepted pattern (compile once, at route compile time). */
export function anchoredRegex(pattern: string): RegExp {
  const p = plan(pattern);
  if ('problem' in p) throw new Error(`regex refused by validation reached compilation: ${p.problem}`);
  return new RegExp(`^(?:${pattern})$`, p.flags);
}

/** Which engine an accepted pattern runs on (for tests and the docs). */
export function regexEngine(pattern: string): 'backtracking' | 'linear' | undefined {
  const p = plan(pattern);
  return 'problem' in p ? undefined : p.flags === 'l' ? 'linear' : 'backtracking';
}
