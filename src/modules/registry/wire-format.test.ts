import { describe, expect, it } from 'vitest';
import { MAX_SCHEMA_ID, WireFormatError, decodeWire, encodeWire } from './wire-format.js';

/** What @kafkajs/confluent-schema-registry's JSON encoding writes, following Confluent's documented layout. */
function confluentJsonFrame(registryId: number, payload: unknown): Buffer {
  const id = Buffer.alloc(4);
  id.writeInt32BE(registryId, 0);
  return Buffer.concat([Buffer.alloc(1), id, Buffer.from(JSON.stringify(payload))]);
}

describe('encodeWire / decodeWire', () => {
  it('round-trips JSON values of every kind', () => {
    const values: unknown[] = [
      { code: 'DE', name: 'Deutschland', locales: ['de-DE', 'en-GB'], nested: { n: 1.5 } },
      ['a', 1, true, null],
      'Grüße, 東京 🏃',
      42,
      -0.25,
      true,
      false,
      null,
      {},
      [],
    ];
    for (const value of values) {
      for (const schemaId of [1, 7, 256, 65_536, MAX_SCHEMA_ID]) {
        expect(decodeWire(encodeWire(schemaId, value))).toEqual({ schemaId, value });
      }
    }
  });

  it('lays out magic byte, big-endian id and UTF-8 JSON byte by byte', () => {
    const buffer = encodeWire(0x01020304, { a: 'é' });
    const json = [...Buffer.from('{"a":"é"}', 'utf8')];
    expect(json).toEqual([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0xa9, 0x22, 0x7d]);
    expect([...buffer]).toEqual([0x00, 0x01, 0x02, 0x03, 0x04, ...json]);
    expect(buffer.length).toBe(5 + json.length);

    expect([...encodeWire(1, null)]).toEqual([0, 0, 0, 0, 1, 0x6e, 0x75, 0x6c, 0x6c]);
    expect([...encodeWire(MAX_SCHEMA_ID, 0).subarray(0, 5)]).toEqual([0, 0x7f, 0xff, 0xff, 0xff]);
    expect([...encodeWire(258, 0).subarray(0, 5)]).toEqual([0, 0, 0, 1, 2]);
  });

  it('decodes a Uint8Array view that starts inside a larger buffer', () => {
    const framed = encodeWire(300, { ok: true });
    const backing = new Uint8Array(framed.length + 10).fill(0xff);
    backing.set(framed, 7);
    const view = backing.subarray(7, 7 + framed.length);
    expect(decodeWire(view)).toEqual({ schemaId: 300, value: { ok: true } });
  });

  it('refuses a buffer shorter than the 5-byte header', () => {
    for (const bytes of [[], [0], [0, 0, 0, 1]]) {
      expect(() => decodeWire(Uint8Array.from(bytes))).toThrow(WireFormatError);
      expect(() => decodeWire(Uint8Array.from(bytes))).toThrow(/shorter than the 5-byte header/);
    }
  });

  it('refuses a wrong magic byte', () => {
    const framed = encodeWire(5, { a: 1 });
    framed[0] = 1;
    expect(() => decodeWire(framed)).toThrow(/magic byte is 0x01, expected 0x00/);
    // Plain JSON that was never framed starts with '{' (0x7b).
    expect(() => decodeWire(Buffer.from('{"a":1}'))).toThrow(/magic byte is 0x7b/);
  });

  it('refuses a schema id outside 1..2^31-1', () => {
    expect(() => decodeWire(Uint8Array.from([0, 0, 0, 0, 0, 0x31]))).toThrow(
      /schema id 0 is outside 1\.\.2147483647/,
    );
    expect(() => decodeWire(Uint8Array.from([0, 0x80, 0, 0, 0, 0x31]))).toThrow(
      /schema id 2147483648 is outside/,
    );
    expect(() => decodeWire(Uint8Array.from([0, 0xff, 0xff, 0xff, 0xff, 0x31]))).toThrow(
      /schema id 4294967295 is outside/,
    );
  });

  it('refuses a body that is not JSON, empty, or not UTF-8', () => {
    const header = [0, 0, 0, 0, 9];
    expect(() => decodeWire(Uint8Array.from(header))).toThrow(/not valid JSON/);
    expect(() => decodeWire(Buffer.concat([Buffer.from(header), Buffer.from('{"a":')]))).toThrow(
      /not valid JSON/,
    );
    expect(() => decodeWire(Buffer.concat([Buffer.from(header), Buffer.from("{'a':1}")]))).toThrow(
      WireFormatError,
    );
    expect(() => decodeWire(Uint8Array.from([...header, 0x22, 0xc3, 0x28, 0x22]))).toThrow(
      /not valid UTF-8/,
    );
  });

  it('refuses to encode with an invalid id or a value without JSON text', () => {
    for (const id of [0, -1, 1.5, MAX_SCHEMA_ID + 1, Number.NaN]) {
      expect(() => encodeWire(id, {})).toThrow(/outside 1\.\.2147483647/);
    }
    expect(() => encodeWire(1, undefined)).toThrow(/has no JSON text/);
    expect(() => encodeWire(1, () => 1)).toThrow(/has no JSON text/);
  });

  describe('interop with @kafkajs/confluent-schema-registry (JSON schema type)', () => {
    const payload = { specversion: '1.0', type: 'market.created.v1', data: { code: 'SE' } };

    it('decodes what the package encodes', () => {
      expect(decodeWire(confluentJsonFrame(17, payload))).toEqual({ schemaId: 17, value: payload });
      expect(decodeWire(confluentJsonFrame(MAX_SCHEMA_ID, payload)).schemaId).toBe(MAX_SCHEMA_ID);
    });

    it('encodes exactly the bytes the package writes', () => {
      expect(encodeWire(17, payload).equals(confluentJsonFrame(17, payload))).toBe(true);
      expect(
        encodeWire(MAX_SCHEMA_ID, payload).equals(confluentJsonFrame(MAX_SCHEMA_ID, payload)),
      ).toBe(true);
    });

    it('reads a hand-written frame in the documented layout', () => {
      // 00 | 00 00 00 2a (id 42) | {"id":1}
      const frame = Uint8Array.from([
        0x00, 0x00, 0x00, 0x00, 0x2a, 0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x31, 0x7d,
      ]);
      expect(decodeWire(frame)).toEqual({ schemaId: 42, value: { id: 1 } });
    });
  });
});
