import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Ff1Error } from './errors.js';
import { Ff1, Ff1Alphabet, Ff1Text, FF1_ALPHABETS } from './ff1.js';

const AES128 = '2B7E151628AED2A6ABF7158809CF4F3C';
const AES192 = `${AES128}EF4359D8D580AA4F`;
const AES256 = `${AES192}7F036D6F04FC6A94`;
const TWEAK_DIGITS = '39383736353433323130';
const TWEAK_36 = '3737373770717273373737';

/** NIST SP 800-38G sample vectors (FF1samples.pdf, Samples 1-9). */
const NIST_SAMPLES = [
  { sample: 1, key: AES128, radix: 10, tweak: '', pt: '0123456789', ct: '2433477484' },
  { sample: 2, key: AES128, radix: 10, tweak: TWEAK_DIGITS, pt: '0123456789', ct: '6124200773' },
  {
    sample: 3,
    key: AES128,
    radix: 36,
    tweak: TWEAK_36,
    pt: '0123456789abcdefghi',
    ct: 'a9tv40mll9kdu509eum',
  },
  { sample: 4, key: AES192, radix: 10, tweak: '', pt: '0123456789', ct: '2830668132' },
  { sample: 5, key: AES192, radix: 10, tweak: TWEAK_DIGITS, pt: '0123456789', ct: '2496655549' },
  {
    sample: 6,
    key: AES192,
    radix: 36,
    tweak: TWEAK_36,
    pt: '0123456789abcdefghi',
    ct: 'xbj3kv35jrawxv32ysr',
  },
  { sample: 7, key: AES256, radix: 10, tweak: '', pt: '0123456789', ct: '6657667009' },
  { sample: 8, key: AES256, radix: 10, tweak: TWEAK_DIGITS, pt: '0123456789', ct: '1001623463' },
  {
    sample: 9,
    key: AES256,
    radix: 36,
    tweak: TWEAK_36,
    pt: '0123456789abcdefghi',
    ct: 'xs8a0azh2avyalyzuwd',
  },
] as const;

const alphabetFor = (radix: number) =>
  radix === 10 ? FF1_ALPHABETS.decimal : FF1_ALPHABETS.base36;

/** Deterministic PRNG (mulberry32) so a failing random case can be replayed. */
function prng(seed: number): (bound: number) => number {
  let state = seed >>> 0;
  return (bound) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * bound);
  };
}

/**
 * FF1 written straight from Algorithms 7 and 8 of SP 800-38G, with none of the implementation's
 * shortcuts: BigInt throughout, a fresh AES-CBC cipher for every PRF, S built by concatenation,
 * b from the spec's logarithm formula. The optimised implementation must agree with it.
 */
function referenceFf1(
  key: Buffer,
  radix: number,
  tweak: Buffer,
  x: readonly number[],
  decrypt: boolean,
): number[] {
  const bits = key.length * 8;
  const n = x.length;
  const u = Math.floor(n / 2);
  const v = n - u;
  const t = tweak.length;
  const big = BigInt(radix);
  const num = (xs: readonly number[]) => xs.reduce((acc, digit) => acc * big + BigInt(digit), 0n);
  const str = (m: number, value: bigint) => {
    const out: number[] = [];
    for (let i = 0; i < m; i++) {
      out.unshift(Number(value % big));
      value /= big;
    }
    return out;
  };
  const bytes = (value: bigint, length: number) =>
    Buffer.from(value.toString(16).padStart(2 * length, '0'), 'hex');
  const b = Math.ceil(Math.ceil(v * Math.log2(radix)) / 8);
  const d = 4 * Math.ceil(b / 4) + 4;
  const p = Buffer.concat([
    Buffer.from([1, 2, 1]),
    bytes(BigInt(radix), 3),
    Buffer.from([10, u % 256]),
    bytes(BigInt(n), 4),
    bytes(BigInt(t), 4),
  ]);
  const prf = (data: Buffer) => {
    const cbc = createCipheriv(`aes-${bits}-cbc`, key, Buffer.alloc(16));
    cbc.setAutoPadding(false);
    const out = cbc.update(data);
    return out.subarray(out.length - 16);
  };
  const ciph = (block: Buffer) => {
    const ecb = createCipheriv(`aes-${bits}-ecb`, key, null);
    ecb.setAutoPadding(false);
    return ecb.update(block);
  };
  const y = (i: number, half: readonly number[]) => {
    const q = Buffer.concat([
      tweak,
      Buffer.alloc((((-t - b - 1) % 16) + 16) % 16),
      Buffer.from([i]),
      bytes(num(half), b),
    ]);
    const r = prf(Buffer.concat([p, q]));
    let s = Buffer.from(r);
    for (let j = 1; s.length < d; j++) {
      const block = Buffer.from(r);
      const counter = bytes(BigInt(j), 16);
      for (let k = 0; k < 16; k++) block[k] = block[k]! ^ counter[k]!;
      s = Buffer.concat([s, ciph(block)]);
    }
    return BigInt(`0x${s.subarray(0, d).toString('hex')}`);
  };
  let a = x.slice(0, u);
  let bb = x.slice(u);
  if (!decrypt) {
    for (let i = 0; i < 10; i++) {
      const m = i % 2 === 0 ? u : v;
      const c = (num(a) + y(i, bb)) % big ** BigInt(m);
      a = bb;
      bb = str(m, c);
    }
  } else {
    for (let i = 9; i >= 0; i--) {
      const m = i % 2 === 0 ? u : v;
      const mod = big ** BigInt(m);
      const c = (((num(bb) - y(i, a)) % mod) + mod) % mod;
      bb = a;
      a = str(m, c);
    }
  }
  return [...a, ...bb];
}

describe('FF1 NIST SP 800-38G samples', () => {
  for (const { sample, key, radix, tweak, pt, ct } of NIST_SAMPLES) {
    const bits = key.length * 4;
    it(`sample ${sample} (AES-${bits}, radix ${radix}, ${tweak === '' ? 'no' : 'with'} tweak) encrypts and decrypts`, () => {
      const fpe = new Ff1Text(Buffer.from(key, 'hex'), alphabetFor(radix));
      const t = Buffer.from(tweak, 'hex');
      expect(fpe.ff1.radix).toBe(radix);
      expect(fpe.encrypt(pt, t)).toBe(ct);
      expect(fpe.decrypt(ct, t)).toBe(pt);
    });
  }

  it('gives the same results on numeral arrays', () => {
    const ff1 = new Ff1(Buffer.from(AES128, 'hex'), 10);
    const pt = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    expect(ff1.encrypt(pt)).toEqual([2, 4, 3, 3, 4, 7, 7, 4, 8, 4]);
    expect(ff1.decrypt([2, 4, 3, 3, 4, 7, 7, 4, 8, 4])).toEqual(pt);
    expect(ff1.encrypt(Uint16Array.from(pt), Buffer.from(TWEAK_DIGITS, 'hex'))).toEqual(
      [...'6124200773'].map(Number),
    );
  });

  it('reproduces the samples through the reference implementation too', () => {
    for (const { key, radix, tweak, pt, ct } of NIST_SAMPLES) {
      const alphabet = new Ff1Alphabet(alphabetFor(radix));
      const out = referenceFf1(
        Buffer.from(key, 'hex'),
        radix,
        Buffer.from(tweak, 'hex'),
        alphabet.toNumerals(pt),
        false,
      );
      expect(alphabet.fromNumerals(out)).toBe(ct);
    }
  });
});

describe('FF1 against the reference implementation', () => {
  const keys = [16, 24, 32].map((size) => Buffer.from(AES256.slice(0, size * 2), 'hex'));

  it('agrees on random inputs across radices, lengths, tweaks and key sizes', () => {
    const random = prng(20_260_601);
    const radices = [2, 10, 16, 26, 36, 62, 255, 65_536];
    const tweakLengths = [0, 1, 7, 11, 15, 16, 17, 31, 40];
    let cases = 0;
    for (const radix of radices) {
      for (const key of keys) {
        const ff1 = new Ff1(key, radix);
        for (let k = 0; k < 12; k++) {
          const n = ff1.minLength + random(k < 8 ? 30 : 80);
          const x = Array.from({ length: n }, () => random(radix));
          const tweak = Buffer.from(
            Array.from({ length: tweakLengths[random(tweakLengths.length)]! }, () => random(256)),
          );
          const label = `radix ${radix}, n ${n}, key ${key.length * 8}, tweak ${tweak.length}`;
          const ct = ff1.encrypt(x, tweak);
          expect(ct, label).toEqual(referenceFf1(key, radix, tweak, x, false));
          expect(ff1.decrypt(ct, tweak), label).toEqual(x);
          expect(referenceFf1(key, radix, tweak, ct, true), label).toEqual(x);
          cases++;
        }
      }
    }
    expect(cases).toBe(radices.length * keys.length * 12);
  });

  it('agrees on both sides of the plain-number/BigInt boundary and on long inputs', () => {
    const random = prng(7);
    const key = keys[2]!;
    // radix 10: v = 13 (10^13 < 2^45) stays on plain numbers, v = 14 goes to BigInt;
    // 300 numerals of radix 65,536 need d > 16 (several extra AES blocks for S).
    for (const [radix, n] of [
      [10, 25],
      [10, 26],
      [10, 27],
      [10, 28],
      [2, 90],
      [2, 91],
      [65_536, 300],
      [10, 1_024],
    ] as const) {
      const ff1 = new Ff1(key, radix);
      const x = Array.from({ length: n }, () => random(radix));
      const tweak = Buffer.from('field:card');
      const ct = ff1.encrypt(x, tweak);
      expect(ct, `radix ${radix}, n ${n}`).toEqual(referenceFf1(key, radix, tweak, x, false));
      expect(ff1.decrypt(ct, tweak)).toEqual(x);
    }
  });
});

describe('FF1 round trips', () => {
  const key = Buffer.from(AES256, 'hex');

  for (const radix of [2, 10, 16, 26, 36, 62]) {
    it(`radix ${radix}: decrypt(encrypt(x)) = x, same length, numerals in range`, () => {
      const random = prng(radix);
      const ff1 = new Ff1(key, radix);
      for (let k = 0; k < 200; k++) {
        const n = ff1.minLength + random(40);
        const x = Array.from({ length: n }, () => random(radix));
        const tweak = k % 3 === 0 ? undefined : `tweak-${k % 5}`;
        const ct = ff1.encrypt(x, tweak);
        expect(ct).toHaveLength(n);
        expect(
          ct.every((numeral) => Number.isInteger(numeral) && numeral >= 0 && numeral < radix),
        ).toBe(true);
        expect(ff1.decrypt(ct, tweak)).toEqual(x);
      }
    });
  }

  it('round-trips text over every built-in alphabet and a non-ASCII one', () => {
    const random = prng(99);
    for (const characters of [...Object.values(FF1_ALPHABETS), 'äöüß€😀🙂', 'АБВГДЕЖЗИЙ']) {
      const alphabet = new Ff1Alphabet(characters);
      const fpe = new Ff1Text(key, alphabet);
      const symbols = Array.from(characters);
      for (let k = 0; k < 20; k++) {
        const n = fpe.ff1.minLength + random(20);
        const text = Array.from({ length: n }, () => symbols[random(symbols.length)]).join('');
        const ct = fpe.encrypt(text, 'customer.loyaltyId');
        expect(Array.from(ct)).toHaveLength(n);
        expect(Array.from(ct).every((c) => symbols.includes(c))).toBe(true);
        expect(fpe.decrypt(ct, 'customer.loyaltyId')).toBe(text);
      }
    }
  });

  it('depends on the tweak and the key; a string tweak is its UTF-8 bytes', () => {
    const fpe = new Ff1Text(key, FF1_ALPHABETS.decimal);
    const pan = '4111111111111111';
    const outputs = new Set(['', 'a', 'b', 'card', 'card2'].map((t) => fpe.encrypt(pan, t)));
    expect(outputs.size).toBe(5);
    expect(fpe.encrypt(pan, 'ünï')).toBe(fpe.encrypt(pan, Buffer.from('ünï', 'utf8')));
    expect(fpe.encrypt(pan)).toBe(fpe.encrypt(pan, new Uint8Array(0)));
    const other = new Ff1Text(Buffer.from(AES128, 'hex'), FF1_ALPHABETS.decimal);
    expect(other.encrypt(pan)).not.toBe(fpe.encrypt(pan));
  });

  it('reuses one AES-ECB cipher safely: results do not depend on what ran before', () => {
    // The instance keeps one ECB cipher and cached MAC states. Interleave lengths, tweaks and
    // directions and check every answer against a fresh instance.
    const shared = new Ff1(key, 10);
    const random = prng(3);
    const inputs = Array.from({ length: 50 }, (_, k) => ({
      x: Array.from({ length: 6 + random(30) }, () => random(10)),
      tweak: k % 2 === 0 ? 'a' : Buffer.from([k % 7]),
      decrypt: k % 3 === 0,
    }));
    for (const { x, tweak, decrypt } of inputs) {
      const fresh = new Ff1(key, 10);
      const expected = decrypt ? fresh.decrypt(x, tweak) : fresh.encrypt(x, tweak);
      expect(decrypt ? shared.decrypt(x, tweak) : shared.encrypt(x, tweak)).toEqual(expected);
    }
    // And the ECB cipher object itself keeps no state from block to block.
    const ecb = createCipheriv('aes-256-ecb', key, null);
    ecb.setAutoPadding(false);
    const block = Buffer.alloc(16, 7);
    const first = ecb.update(block);
    ecb.update(Buffer.alloc(16, 1));
    expect(ecb.update(block)).toEqual(first);
    expect(ecb.update(Buffer.concat([block, block]))).toEqual(Buffer.concat([first, first]));
  });

  it('does not modify its input', () => {
    const ff1 = new Ff1(key, 10);
    const x = [1, 2, 3, 4, 5, 6, 7, 8];
    ff1.encrypt(x);
    expect(x).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe('FF1 parameters', () => {
  const key = Buffer.from(AES128, 'hex');

  it('sets the minimum length so that radix^minLength >= 1,000,000 (Rev. 1)', () => {
    const expected: Array<[number, number]> = [
      [2, 20],
      [10, 6],
      [16, 5],
      [26, 5],
      [36, 4],
      [62, 4],
      [100, 3],
      [1_000, 2],
      [65_536, 2],
    ];
    for (const [radix, minLength] of expected) {
      expect(new Ff1(key, radix).minLength, `radix ${radix}`).toBe(minLength);
    }
  });

  it('refuses a length below the minimum or above the maximum', () => {
    const ff1 = new Ff1(key, 10, { maxLength: 40 });
    expect(() => ff1.encrypt([1, 2, 3, 4, 5])).toThrow(Ff1Error);
    expect(() => ff1.encrypt([1, 2, 3, 4, 5])).toThrow(
      /5 numerals is outside the allowed lengths 6\.\.40/,
    );
    expect(() => ff1.decrypt([1, 2, 3, 4, 5])).toThrow(/outside the allowed lengths/);
    expect(() => ff1.encrypt(new Array<number>(41).fill(0))).toThrow(/41 numerals/);
    expect(() => new Ff1(key, 2).encrypt(new Array<number>(19).fill(1))).toThrow(
      /19 numerals is outside the allowed lengths 20\.\.1024/,
    );
    expect(() => new Ff1Text(key, FF1_ALPHABETS.decimal).encrypt('')).toThrow(/0 numerals/);
    try {
      ff1.encrypt([]);
    } catch (error) {
      expect(error).toBeInstanceOf(Ff1Error);
      expect((error as Ff1Error).code).toBe('FF1_LENGTH');
    }
  });

  it('refuses numerals outside 0..radix-1, without quoting them', () => {
    const ff1 = new Ff1(key, 10);
    for (const bad of [10, -1, 1.5, Number.NaN, 2 ** 32, Infinity]) {
      const x = [1, 2, 3, bad, 5, 6, 7];
      expect(() => ff1.encrypt(x), String(bad)).toThrow(
        /numeral at position 3 is not an integer in 0\.\.9/,
      );
      expect(() => ff1.decrypt(x), String(bad)).toThrow(Ff1Error);
    }
    // Both arithmetic paths check.
    expect(() => ff1.encrypt([...new Array<number>(39).fill(0), 10])).toThrow(/position 39/);
    const text = new Ff1Text(key, FF1_ALPHABETS.decimal);
    expect(() => text.encrypt('4111-1111')).toThrow(
      /character at position 4 is not in the 10-character alphabet/,
    );
    try {
      text.encrypt('4111Q1111');
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).not.toContain('Q');
    }
  });

  it('refuses a key that is not 16, 24 or 32 bytes', () => {
    for (const size of [0, 8, 15, 17, 31, 33, 64]) {
      expect(() => new Ff1(Buffer.alloc(size), 10), `${size} bytes`).toThrow(
        new RegExp(`key is ${size} bytes; AES needs 16, 24 or 32`),
      );
    }
    try {
      new Ff1(Buffer.alloc(20), 10);
    } catch (error) {
      expect((error as Ff1Error).code).toBe('FF1_KEY_SIZE');
    }
  });

  it('refuses a radix outside 2..65536', () => {
    for (const radix of [0, 1, 65_537, 2.5, Number.NaN, -10]) {
      expect(() => new Ff1(key, radix), String(radix)).toThrow(/radix .* is outside 2\.\.65536/);
    }
    expect(new Ff1(key, 2).radix).toBe(2);
    expect(new Ff1(key, 65_536).radix).toBe(65_536);
  });

  it('refuses a tweak longer than maxTweakBytes and bad limits', () => {
    const ff1 = new Ff1(key, 10, { maxTweakBytes: 8 });
    const x = [1, 2, 3, 4, 5, 6];
    expect(() => ff1.encrypt(x, Buffer.alloc(8))).not.toThrow();
    expect(() => ff1.encrypt(x, Buffer.alloc(9))).toThrow(
      /tweak is 9 bytes, longer than the maximum 8/,
    );
    expect(() => ff1.encrypt(x, 'ümlauts!')).toThrow(/tweak is 9 bytes/);
    expect(() => new Ff1(key, 10, { maxLength: 5 })).toThrow(/maxLength 5 is outside 6\.\./);
    expect(() => new Ff1(key, 10, { maxLength: 2 ** 32 })).toThrow(/maxLength/);
    expect(() => new Ff1(key, 10, { maxTweakBytes: -1 })).toThrow(/maxTweakBytes/);
  });

  it('refuses an alphabet that is too short, too long or repeats a character', () => {
    expect(() => new Ff1Alphabet('a')).toThrow(/needs 2\.\.65536 characters, got 1/);
    expect(() => new Ff1Alphabet('')).toThrow(/got 0/);
    expect(() => new Ff1Alphabet('0123456789a1')).toThrow(/repeats the character at position 11/);
    expect(() => new Ff1Alphabet('aé😀é')).toThrow(/repeats the character at position 3/);
    expect(new Ff1Alphabet('😀😁').radix).toBe(2);
    expect(() => new Ff1Alphabet(FF1_ALPHABETS.decimal).fromNumerals([1, 10])).toThrow(
      /position 1/,
    );
  });
});
