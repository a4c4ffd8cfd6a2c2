/**
 * RegularExpression matches (paths, headers, query parameters, gRPC methods) run on V8's
 * backtracking engine against input an attacker chooses, so a pattern is accepted only when its
 * worst case is bounded (docs/gateway-api.md, "Regular expressions"):
 * - at most MAX_REGEX_LENGTH characters; it compiles as a JavaScript RegExp;
 * - no backreferences and no lookaround (RE2, which Envoy-based meshes use, has neither, so
 *   a pattern that works there is not refused for these);
 * - no quantifier on a group that holds a quantifier or an alternation (`(a+)+`, `(a|ab)*`:
 *   the exponential cases);
 * - at most MAX_UNBOUNDED unbounded quantifiers (`*`, `+`, `{n,}`, `{n,m}` with m > 32), so the
 *   polynomial worst case is at most quadratic in the input, which node's 16 KiB header limit bounds.
 * Matches are whole-string (`^(?:p)$`), as Envoy's safe_regex matches are.
 */

export const MAX_REGEX_LENGTH = 256;
export const MAX_UNBOUNDED = 2;
const LARGE_REPEAT = 32;

/** undefined when the pattern is acceptable, else why not (for a field error). */
export function regexProblem(pattern: string): string | undefined {
  if (pattern.length > MAX_REGEX_LENGTH) return `regular expression longer than ${MAX_REGEX_LENGTH} characters`;
  try {
    new RegExp(pattern);
  } catch (err) {
    return `not a valid regular expression (${(err as Error).message})`;
  }
  // One pass over the pattern with a stack of open groups; each group remembers whether it
  // holds a quantifier or an alternation, so the quantifier after its `)` can be judged.
  interface Group {
    quantified: boolean;
    alternation: boolean;
  }
  const stack: Group[] = [{ quantified: false, alternation: false }];
  let unbounded = 0;
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
    if (c === '*' || c === '+') {
      isQuantifier = isUnbounded = true;
    } else if (c === '?') {
      // `??`, `*?`, `+?` are lazy markers of the quantifier before, not quantifiers of their own.
      const prev = pattern[i - 1];
      isQuantifier = !(prev === '*' || prev === '+' || prev === '?' || prev === '}') || pattern[i - 2] === '\\';
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
      if (m !== null) {
        isQuantifier = true;
        isUnbounded = m[2] !== undefined && (m[3] === '' || Number(m[3]) > LARGE_REPEAT);
        if (m[2] === undefined && Number(m[1]) > LARGE_REPEAT) isUnbounded = true;
        i += m[0].length - 1;
      }
    }
    if (isQuantifier) {
      if (lastClosed !== undefined && (lastClosed.quantified || lastClosed.alternation)) {
        return 'a quantifier on a group that contains a quantifier or an alternation is not supported (catastrophic backtracking)';
      }
      stack[stack.length - 1]!.quantified = true;
      if (isUnbounded && ++unbounded > MAX_UNBOUNDED) return `more than ${MAX_UNBOUNDED} unbounded quantifiers (*, +, {n,}) are not supported`;
      lastClosed = undefined;
      continue;
    }
    lastClosed = undefined;
  }
  return undefined;
}

/** The whole-string matcher for an accepted pattern (compile once, at route compile time). */
export function anchoredRegex(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`);
}
