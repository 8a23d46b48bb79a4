/**
 * Regular expressions that mean the same on Istio (Envoy's RE2) and in Concord's data plane
 * (JavaScript). Istio caps patterns at 1024 characters and compiles them with Go's RE2-style
 * regexp (pkg/config/validation: validateStringRegexp). JavaScript accepts constructs RE2 does
 * not (lookaround, backreferences — the ones that make matching super-linear), and RE2 accepts
 * some JavaScript rejects (`(?i)`, `\pL`, `[[:alpha:]]`): a pattern must pass both, so a file
 * that works here works on a real Istio cluster, and the reverse failure is reported here
 * rather than at request time. Data planes match the whole value: `^(?:<pattern>)$`, flag `u`.
 * Pure.
 */

import { mesh } from '@concord/core';

export const MAX_REGEX_LENGTH = 1024;
/** RE2's limit on `{n,m}` repeat counts. */
const MAX_REPEAT = 1000;

/** Null when the pattern is usable, else why not. */
export function regexProblem(pattern: string): string | null {
  return rePortability(pattern) ?? mesh.checkRegex(pattern);
}

/** RE2/JavaScript portability only (the data plane's own safety rules are mesh.checkRegex). */
function rePortability(pattern: string): string | null {
  if (pattern.length === 0) return 'regex must not be empty';
  if (pattern.length > MAX_REGEX_LENGTH) return `regex is too large, max length allowed is ${MAX_REGEX_LENGTH}`;
  if (pattern === '*')
    return `"*" is not a regular expression (for headers Istio reads it as "present", which Concord does not support); use ".+" for any non-empty value`;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '\\') {
      const next = pattern[i + 1] ?? '';
      if (/[1-9]/.test(next) && !inClass) return `backreference "\\${next}" is not supported by RE2 (Istio)`;
      if (next === 'k') return 'named backreference "\\k<…>" is not supported by RE2 (Istio)';
      if (next === 'u' || next === 'c' || next === '0') return `escape "\\${next}" is not supported by RE2 (Istio); use \\x{…} or the character itself`;
      i++;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      // A `]` right after `[` or `[^` is a literal in RE2 but ends the class in JavaScript.
      if (pattern[i + 1] === ']' || (pattern[i + 1] === '^' && pattern[i + 2] === ']'))
        return 'a "]" first in a character class means different things in RE2 and JavaScript; escape it as "\\]"';
      continue;
    }
    if (ch === '(' && pattern[i + 1] === '?') {
      const look = pattern.slice(i + 2, i + 4);
      if (look.startsWith('=') || look.startsWith('!')) return 'lookahead "(?=…)" / "(?!…)" is not supported by RE2 (Istio)';
      if (look === '<=' || look === '<!') return 'lookbehind "(?<=…)" / "(?<!…)" is not supported by RE2 (Istio)';
    }
    if (ch === '{') {
      const m = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i));
      if (m && (Number(m[1]) > MAX_REPEAT || (m[2] !== undefined && m[2] !== '' && Number(m[2]) > MAX_REPEAT))) {
        return `repeat count above ${MAX_REPEAT} is not supported by RE2 (Istio)`;
      }
    }
  }
  try {
    new RegExp(`^(?:${pattern})$`, 'u');
  } catch (err) {
    const msg = (err as Error).message.replace(/^Invalid regular expression: /, '');
    return `not a regular expression both RE2 (Istio) and JavaScript accept: ${msg}`;
  }
  return null;
}
