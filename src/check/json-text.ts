// JSON text a user wrote (a config file, fixture files), parsed with the
// place of a syntax error as line and column and the line itself:
//
//   c.json: not valid JSON: line 4, column 3: expected "," or "}" after a value
//     4 |   "epochs": 3
//       |   ^
//
// JSON.parse says "position 25", or nothing at all ("Unexpected token '}',
// ... is not valid JSON"), depending on the error and the Node version; so on
// failure a small scanner of the JSON grammar (RFC 8259) walks the text to
// the first byte that cannot continue it. JSON.parse still does the parsing:
// the scanner runs only to explain a failure.

export interface JsonSyntaxProblem {
  /** Offset in the text (UTF-16 code units) of the first character that is wrong. */
  offset: number;
  message: string;
}

class Stop extends Error {
  constructor(readonly offset: number, message: string) {
    super(message);
  }
}

const WS = new Set([' ', '\t', '\n', '\r']);

/** Walks `text` as JSON; the first problem, or null if the text is valid JSON. */
export function jsonSyntaxProblem(text: string): JsonSyntaxProblem | null {
  let i = 0;
  const describe = (at: number) => (at >= text.length ? 'the end of the text' : `"${text[at]}"`);
  const fail = (message: string, at = i): never => { throw new Stop(at, message); };
  const skip = () => { while (i < text.length && WS.has(text[i])) i++; };
  const literal = (word: string) => {
    for (let k = 0; k < word.length; k++) if (text[i + k] !== word[k]) fail(`expected ${word}`, i + k);
    i += word.length;
  };
  const string = () => {
    const start = i++;
    for (;;) {
      if (i >= text.length) fail('a string that never ends (no closing ")', start);
      const c = text[i];
      if (c === '"') { i++; return; }
      if (c < ' ') fail(c === '\n' ? 'a line break inside a string (write \\n)' : 'a control character inside a string');
      if (c === '\\') {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('\\u needs four hex digits');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i += 2;
        } else {
          fail(`an unknown escape \\${e ?? ''} in a string`);
        }
      } else {
        i++;
      }
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (m === null || m[0] === '-') fail('a number that is not JSON (write digits, e.g. 0.5, -1, 1e-3)');
    i += m![0].length;
    if (i < text.length && /[0-9.eE]/.test(text[i])) fail('a number that is not JSON (a leading zero, or a stray "." or "e")');
  };
  const value = (depth: number): void => {
    if (depth > 512) fail('nested too deeply');
    skip();
    const c = text[i];
    if (c === '{') return object(depth);
    if (c === '[') return array(depth);
    if (c === '"') return string();
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    if (c === "'") fail('a single quote: JSON strings take double quotes');
    fail(`expected a value, found ${describe(i)}`);
  };
  const object = (depth: number) => {
    i++;
    skip();
    if (text[i] === '}') { i++; return; }
    for (;;) {
      skip();
      if (text[i] !== '"') fail(text[i] === '}' ? 'a comma before "}" (JSON allows none)' : `expected a field name in double quotes, found ${describe(i)}`);
      string();
      skip();
      if (text[i] !== ':') fail(`expected ":" after the field name, found ${describe(i)}`);
      i++;
      value(depth + 1);
      skip();
      if (text[i] === ',') { i++; continue; }
      if (text[i] === '}') { i++; return; }
      fail(`expected "," or "}" after a value, found ${describe(i)}`);
    }
  };
  const array = (depth: number) => {
    i++;
    skip();
    if (text[i] === ']') { i++; return; }
    for (;;) {
      skip();
      if (text[i] === ']') fail('a comma before "]" (JSON allows none)');
      value(depth + 1);
      skip();
      if (text[i] === ',') { i++; continue; }
      if (text[i] === ']') { i++; return; }
      fail(`expected "," or "]" after a value, found ${describe(i)}`);
    }
  };
  try {
    value(0);
    skip();
    if (i < text.length) fail(`more text after the JSON value: ${describe(i)}`);
    return null;
  } catch (e) {
    if (e instanceof Stop) return { offset: e.offset, message: e.message };
    throw e;
  }
}

/** Line and column (both from 1) of an offset in text. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1, start = 0;
  for (let k = 0; k < offset && k < text.length; k++) {
    if (text[k] === '\n') {
      line++;
      start = k + 1;
    }
  }
  return { line, column: offset - start + 1 };
}

/**
 * Parses JSON text; on a syntax error, throws a SyntaxError whose message
 * gives the line, the column, the cause and the line with a caret. A byte
 * order mark at the start is skipped (editors on Windows write one).
 */
export function parseJsonText(text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (err) {
    const problem = jsonSyntaxProblem(body);
    if (problem === null) throw new SyntaxError((err as Error).message);
    const { line, column } = lineColumn(body, problem.offset);
    const full = body.split('\n')[line - 1]?.replace(/\r$/, '') ?? '';
    // A long line (minified JSON) is shown around the column only.
    const from = full.length > 120 ? Math.max(0, column - 61) : 0;
    const lineText = (from > 0 ? '...' : '') + full.slice(from, from + 100) + (from + 100 < full.length ? '...' : '');
    const gutter = String(line);
    // Tabs stay tabs under the caret, so it lines up in a terminal.
    const pad = ((from > 0 ? '...' : '') + full.slice(from, column - 1)).replace(/[^\t]/g, ' ');
    throw new SyntaxError(`line ${line}, column ${column}: ${problem.message}\n  ${gutter} | ${lineText}\n  ${' '.repeat(gutter.length)} | ${pad}^`);
  }
}
