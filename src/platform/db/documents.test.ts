import { describe, expect, it } from 'vitest';
import { canonicalJson } from './documents.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth and matches JSON.stringify otherwise', () => {
    const value = { z: 1, a: { y: [1, 2, { c: null, b: 'q"' }], x: true }, m: [] };
    expect(canonicalJson(value)).toBe(
      '{"a":{"x":true,"y":[1,2,{"b":"q\\"","c":null}]},"m":[],"z":1}',
    );
    expect(JSON.parse(canonicalJson(value))).toEqual(value);
  });

  it('gives equal text for equal documents in any key order', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe(
      canonicalJson({ a: { c: 3, d: 2 }, b: 1 }),
    );
  });

  it('drops undefined members and writes null for undefined array items, as JSON.stringify does', () => {
    const value = { a: undefined, b: [undefined, 1], c: new Date(0) };
    expect(canonicalJson(value)).toBe(JSON.stringify({ b: [null, 1], c: new Date(0) }));
  });
});
