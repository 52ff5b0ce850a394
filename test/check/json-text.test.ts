// JSON syntax errors with line, column, cause and the line with a caret.
import { describe, expect, it } from 'vitest';
import { jsonSyntaxProblem, lineColumn, parseJsonText } from '../../src/check/json-text.js';

function errorOf(text: string): string {
  try {
    parseJsonText(text);
  } catch (e) {
    expect(e).toBeInstanceOf(SyntaxError);
    return (e as Error).message;
  }
  throw new Error('expected a syntax error');
}

describe('parseJsonText', () => {
  it('parses what JSON.parse parses, a leading byte order mark skipped', () => {
    expect(parseJsonText('{"a": [1, -2.5e3, "x\\n\\u00e9", true, false, null]}')).toEqual({ a: [1, -2500, 'x\né', true, false, null] });
    expect(parseJsonText('\ufeff{"a": 1}')).toEqual({ a: 1 });
  });

  it('a missing comma: line, column, cause and the line with a caret', () => {
    expect(errorOf('{\n  "epochs": 3\n  "batchSize": 32\n}')).toBe(
      'line 3, column 3: expected "," or "}" after a value, found """\n  3 |   "batchSize": 32\n    |   ^');
  });

  it('one message per kind of mistake, each at its place', () => {
    const at = (text: string) => {
      const p = jsonSyntaxProblem(text);
      expect(p, text).not.toBeNull();
      return `${lineColumn(text, p!.offset).line}:${lineColumn(text, p!.offset).column} ${p!.message}`;
    };
    expect(at('{"a": 1,}')).toBe('1:9 a comma before "}" (JSON allows none)');
    expect(at('[1, 2,]')).toBe('1:7 a comma before "]" (JSON allows none)');
    expect(at('{a: 1}')).toBe('1:2 expected a field name in double quotes, found "a"');
    expect(at("{'a': 1}")).toBe('1:2 expected a field name in double quotes, found "\'"');
    expect(at('{"a": \'x\'}')).toBe('1:7 a single quote: JSON strings take double quotes');
    expect(at('{"a" 1}')).toBe('1:6 expected ":" after the field name, found "1"');
    expect(at('{"a": }')).toBe('1:7 expected a value, found "}"');
    expect(at('{"a": 1')).toBe('1:8 expected "," or "}" after a value, found the end of the text');
    expect(at('{"a": "x')).toBe('1:7 a string that never ends (no closing ")');
    expect(at('{"a": "x\ny"}')).toBe('1:9 a line break inside a string (write \\n)');
    expect(at('{"a": "\\q"}')).toBe('1:8 an unknown escape \\q in a string');
    expect(at('{"a": "\\u12"}')).toBe('1:8 \\u needs four hex digits');
    expect(at('{"a": 01}')).toBe('1:8 a number that is not JSON (a leading zero, or a stray "." or "e")');
    expect(at('{"a": .5}')).toBe('1:7 expected a value, found "."');
    expect(at('{"a": -}')).toBe('1:7 a number that is not JSON (write digits, e.g. 0.5, -1, 1e-3)');
    expect(at('{"a": tru}')).toBe('1:10 expected true');
    expect(at('{"a": 1}}')).toBe('1:9 more text after the JSON value: "}"');
    expect(at('')).toBe('1:1 expected a value, found the end of the text');
    expect(at('\n\n  ')).toBe('3:3 expected a value, found the end of the text');
  });

  it('agrees with JSON.parse on what is valid', () => {
    for (const text of ['0', '-0.5E+2', '"\\/"', '[]', '{}', ' [ {"a" : [ ] } ] ', '{"__proto__": 1}']) expect(jsonSyntaxProblem(text), text).toBeNull();
  });

  it('a long line is shown around the column', () => {
    const text = `{${Array.from({ length: 60 }, (_, i) => `"f${i}": ${i}`).join(', ')} "x": 1}`;
    const lines = errorOf(text).split('\n');
    expect(lines[0]).toMatch(/^line 1, column \d+: expected "," or "}" after a value, found """$/);
    expect(lines[1].length).toBeLessThan(120);
    expect(lines[1]).toContain('"f59": 59 "x"');
    const caret = lines[2].indexOf('^');
    expect(lines[1][caret]).toBe('"');
    expect(lines[1].slice(caret - 4, caret + 3)).toBe(' 59 "x"');
  });
});
