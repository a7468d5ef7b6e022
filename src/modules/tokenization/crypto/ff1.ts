/**
 * FF1 format-preserving encryption (NIST SP 800-38G, with the Rev. 1 domain-size rule) on AES-128,
 * AES-192 or AES-256 from node:crypto. A string of n numerals in base `radix` encrypts to another
 * string of n numerals in the same base, so a 16-digit card-like number stays a 16-digit number.
 *
 * Parameters, as the standard sets them:
 * - radix in 2..2^16;
 * - length n in minLength..maxLength, where minLength is the smallest n >= 2 with
 *   radix^n >= 1,000,000 (Rev. 1: a smaller domain can be enumerated by an attacker), and
 *   maxLength < 2^32 (n is encoded in four bytes); we default to 1,024 numerals, which is more
 *   than any field we tokenize and keeps the big-integer arithmetic cheap;
 * - a tweak of 0..maxTweakBytes bytes (default 256).
 *
 * The implementation follows the spec's Algorithm 7/8 step for step, with three shortcuts that do
 * not change the result:
 * - One AES-ECB cipher per instance, fed one block per `update()` call. ECB without padding keeps
 *   no state between blocks, so the same cipher object serves every block and every message; that
 *   saves the key schedule that a `createCipheriv` per block would cost.
 * - PRF(P || Q) is a CBC-MAC. P, and every block of Q before the round number, depend only on the
 *   length and the tweak, so the MAC state after them is computed once per (length, tweak) and
 *   cached; a round then encrypts only the last block(s) of Q.
 * - The halves A and B are carried as integers, not numeral strings (each round needs NUM(B) and
 *   produces STR(c) only to take NUM of it in the next round). When radix^v <= 2^45 the
 *   integers are plain numbers: every intermediate value (acc * 256 + byte while reducing y) stays
 *   below 2^53. Larger domains use BigInt.
 *
 * Pure: no I/O; the only dependency is node:crypto.
 */
import { createCipheriv, type Cipher } from 'node:crypto';
import { Ff1Error } from './errors.js';

/** SP 800-38G Rev. 1: radix^minlen must be at least one million. */
export const FF1_MIN_DOMAIN_SIZE = 1_000_000;
export const FF1_MIN_RADIX = 2;
export const FF1_MAX_RADIX = 65_536;
/** n and the tweak length are written into P as four-byte integers. */
export const FF1_LENGTH_LIMIT = 2 ** 32 - 1;
export const FF1_DEFAULT_MAX_LENGTH = 1_024;
export const FF1_DEFAULT_MAX_TWEAK_BYTES = 256;

const ROUNDS = 10;
const BLOCK = 16;
/** Up to this modulus, acc * 256 + 255 < 2^53 while reducing y, so plain numbers are exact. */
const NUMBER_PATH_MAX_MODULUS = 2n ** 45n;
/** Plan cache bound: tweaks are usually a handful of field names; a flood just resets it. */
const MAX_CACHED_PLANS = 1_024;
const EMPTY = new Uint8Array(0);

export interface Ff1Options {
  /** Longest accepted input in numerals; default 1,024, at most 2^32 - 1. */
  maxLength?: number;
  /** Longest accepted tweak in bytes; default 256, at most 2^32 - 1. */
  maxTweakBytes?: number;
}

/** Tweak bytes; a string is taken as its UTF-8 bytes. */
export type Ff1Tweak = Uint8Array | string;

/** What depends on the length n only. */
interface Layout {
  readonly u: number;
  readonly v: number;
  /** Bytes of NUM(B) in Q. */
  readonly b: number;
  /** Bytes of S reduced to y. */
  readonly d: number;
  readonly numeric: boolean;
  /** radix^u and radix^v; the number forms are only meaningful when `numeric`. */
  readonly modU: number;
  readonly modV: number;
  readonly bigModU: bigint;
  readonly bigModV: bigint;
}

/** What depends on the length and the tweak: the CBC-MAC state before the varying blocks. */
interface Plan {
  readonly layout: Layout;
  /** CBC-MAC state after P and the constant leading blocks of Q. */
  readonly prefix: Buffer;
  /** The remaining blocks of Q: tweak and zero pad in place; [i] and NUM are written per round. */
  readonly tail: Buffer;
  /** Offset of the round number [i] in `tail`. */
  readonly roundByte: number;
}

/** FF1 over numeral arrays: each numeral an integer in 0..radix-1. */
export class Ff1 {
  readonly radix: number;
  readonly minLength: number;
  readonly maxLength: number;
  readonly maxTweakBytes: number;

  private readonly aes: Cipher;
  private readonly block = Buffer.alloc(BLOCK);
  private readonly layouts = new Map<number, Layout>();
  private readonly plans = new Map<string, Plan>();
  /** BigInt path: how many numerals fit in a plain number (radix^k <= 2^53), and radix^k. */
  private readonly chunkDigits: number;
  private readonly chunkPow: bigint;

  constructor(key: Uint8Array, radix: number, options: Ff1Options = {}) {
    if (!Number.isInteger(radix) || radix < FF1_MIN_RADIX || radix > FF1_MAX_RADIX) {
      throw new Ff1Error(
        'FF1_RADIX',
        `FF1: radix ${String(radix)} is outside ${FF1_MIN_RADIX}..${FF1_MAX_RADIX}`,
      );
    }
    if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
      throw new Ff1Error(
        'FF1_KEY_SIZE',
        `FF1: the key is ${key.length} bytes; AES needs 16, 24 or 32`,
      );
    }
    this.radix = radix;
    let minLength = 2;
    while (radix ** minLength < FF1_MIN_DOMAIN_SIZE) minLength++;
    this.minLength = minLength;
    this.maxLength = options.maxLength ?? FF1_DEFAULT_MAX_LENGTH;
    if (
      !Number.isInteger(this.maxLength) ||
      this.maxLength < minLength ||
      this.maxLength > FF1_LENGTH_LIMIT
    ) {
      throw new Ff1Error(
        'FF1_LENGTH',
        `FF1: maxLength ${String(this.maxLength)} is outside ${minLength}..${FF1_LENGTH_LIMIT} for radix ${radix}`,
      );
    }
    this.maxTweakBytes = options.maxTweakBytes ?? FF1_DEFAULT_MAX_TWEAK_BYTES;
    if (
      !Number.isInteger(this.maxTweakBytes) ||
      this.maxTweakBytes < 0 ||
      this.maxTweakBytes > FF1_LENGTH_LIMIT
    ) {
      throw new Ff1Error(
        'FF1_TWEAK',
        `FF1: maxTweakBytes ${String(this.maxTweakBytes)} is outside 0..${FF1_LENGTH_LIMIT}`,
      );
    }
    let chunkDigits = 1;
    while (radix ** (chunkDigits + 1) <= 2 ** 53) chunkDigits++;
    this.chunkDigits = chunkDigits;
    this.chunkPow = BigInt(radix) ** BigInt(chunkDigits);
    this.aes = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
    this.aes.setAutoPadding(false);
  }

  /** FF1.Encrypt(K, T, X): numerals in, numerals of the same length and radix out. */
  encrypt(numerals: ArrayLike<number>, tweak: Ff1Tweak = EMPTY): number[] {
    return this.run(numerals, tweak, false);
  }

  /** FF1.Decrypt(K, T, Y): the inverse of `encrypt` under the same key and tweak. */
  decrypt(numerals: ArrayLike<number>, tweak: Ff1Tweak = EMPTY): number[] {
    return this.run(numerals, tweak, true);
  }

  private run(x: ArrayLike<number>, tweak: Ff1Tweak, decrypt: boolean): number[] {
    const n = x.length;
    if (n < this.minLength || n > this.maxLength) {
      throw new Ff1Error(
        'FF1_LENGTH',
        `FF1: ${n} numerals is outside the allowed lengths ${this.minLength}..${this.maxLength} for radix ${this.radix}`,
      );
    }
    const plan = this.plan(n, this.tweakBytes(tweak));
    const { u, numeric } = plan.layout;
    const out = new Array<number>(n);
    if (numeric) {
      const [a, b] = this.numericRounds(
        plan,
        this.numberOf(x, 0, u),
        this.numberOf(x, u, n),
        decrypt,
      );
      this.writeNumber(out, 0, u, a);
      this.writeNumber(out, u, n, b);
    } else {
      const [a, b] = this.bigRounds(plan, this.bigOf(x, 0, u), this.bigOf(x, u, n), decrypt);
      this.writeBig(out, 0, u, a);
      this.writeBig(out, u, n, b);
    }
    return out;
  }

  /** Steps 6.i-6.ix of Algorithms 7 (encrypt) and 8 (decrypt), on plain numbers. */
  private numericRounds(plan: Plan, a: number, b: number, decrypt: boolean): [number, number] {
    const { modU, modV } = plan.layout;
    if (decrypt) {
      for (let i = ROUNDS - 1; i >= 0; i--) {
        const m = (i & 1) === 0 ? modU : modV;
        const c = (b - this.prfNumber(plan, i, a, m) + m) % m;
        b = a;
        a = c;
      }
    } else {
      for (let i = 0; i < ROUNDS; i++) {
        const m = (i & 1) === 0 ? modU : modV;
        const c = (a + this.prfNumber(plan, i, b, m)) % m;
        a = b;
        b = c;
      }
    }
    return [a, b];
  }

  /** The same rounds on BigInt, for domains above 2^45. */
  private bigRounds(plan: Plan, a: bigint, b: bigint, decrypt: boolean): [bigint, bigint] {
    const { bigModU, bigModV } = plan.layout;
    if (decrypt) {
      for (let i = ROUNDS - 1; i >= 0; i--) {
        const m = (i & 1) === 0 ? bigModU : bigModV;
        const c = (b - this.prfBig(plan, i, a, m) + m) % m;
        b = a;
        a = c;
      }
    } else {
      for (let i = 0; i < ROUNDS; i++) {
        const m = (i & 1) === 0 ? bigModU : bigModV;
        const c = (a + this.prfBig(plan, i, b, m)) % m;
        a = b;
        b = c;
      }
    }
    return [a, b];
  }

  /**
   * Q's varying bytes, R = PRF(P || Q), and y = NUM(S) mod `mod`. On the number path b <= 6, so
   * d <= 12 <= 16: S is a prefix of R and no extra AES blocks are needed.
   */
  private prfNumber(plan: Plan, round: number, value: number, mod: number): number {
    const { tail, roundByte } = plan;
    const { b, d } = plan.layout;
    tail[roundByte] = round;
    let rest = value;
    for (let k = tail.length - 1, stop = tail.length - b; k >= stop; k--) {
      const byte = rest % 256;
      tail[k] = byte;
      rest = (rest - byte) / 256;
    }
    const r = this.cbcTail(plan);
    let y = 0;
    for (let k = 0; k < d; k++) y = (y * 256 + r[k]!) % mod;
    return y;
  }

  private prfBig(plan: Plan, round: number, value: bigint, mod: bigint): bigint {
    const { tail, roundByte } = plan;
    const { b, d } = plan.layout;
    tail[roundByte] = round;
    tail.write(value.toString(16).padStart(2 * b, '0'), tail.length - b, b, 'hex');
    const r = this.cbcTail(plan);
    let s = r;
    if (d > BLOCK) {
      // S = R || CIPH(R xor [1]^16) || CIPH(R xor [2]^16) || ...: one ECB call for them all.
      const extra = Math.ceil(d / BLOCK) - 1;
      const blocks = Buffer.allocUnsafe(extra * BLOCK);
      for (let j = 1; j <= extra; j++) {
        const at = (j - 1) * BLOCK;
        r.copy(blocks, at);
        blocks.writeUInt32BE((blocks.readUInt32BE(at + 12) ^ j) >>> 0, at + 12);
      }
      s = Buffer.concat([r, this.aes.update(blocks)]);
    }
    return BigInt(`0x${s.toString('hex', 0, d)}`) % mod;
  }

  /** Continues the cached CBC-MAC state over the tail blocks of Q; returns R. */
  private cbcTail(plan: Plan): Buffer {
    const { tail } = plan;
    const block = this.block;
    let state: Buffer = plan.prefix;
    for (let at = 0; at < tail.length; at += BLOCK) {
      for (let k = 0; k < BLOCK; k++) block[k] = state[k]! ^ tail[at + k]!;
      state = this.aes.update(block);
    }
    return state;
  }

  private tweakBytes(tweak: Ff1Tweak): Uint8Array {
    const bytes = typeof tweak === 'string' ? Buffer.from(tweak, 'utf8') : tweak;
    if (bytes.length > this.maxTweakBytes) {
      throw new Ff1Error(
        'FF1_TWEAK',
        `FF1: the tweak is ${bytes.length} bytes, longer than the maximum ${this.maxTweakBytes}`,
      );
    }
    return bytes;
  }

  private plan(n: number, tweak: Uint8Array): Plan {
    const cacheKey =
      tweak.length === 0
        ? String(n)
        : `${n}:${Buffer.from(tweak.buffer, tweak.byteOffset, tweak.length).toString('latin1')}`;
    let plan = this.plans.get(cacheKey);
    if (plan === undefined) {
      if (this.plans.size >= MAX_CACHED_PLANS) this.plans.clear();
      plan = this.buildPlan(n, tweak);
      this.plans.set(cacheKey, plan);
    }
    return plan;
  }

  /** Steps 5 and 6.i up to the round number: P, Q's layout and the MAC over the constant part. */
  private buildPlan(n: number, tweak: Uint8Array): Plan {
    const layout = this.layout(n);
    const t = tweak.length;
    const p = Buffer.alloc(BLOCK);
    p[0] = 1;
    p[1] = 2;
    p[2] = 1;
    p.writeUIntBE(this.radix, 3, 3);
    p[6] = 10;
    p[7] = layout.u % 256;
    p.writeUInt32BE(n, 8);
    p.writeUInt32BE(t, 12);
    const pad = (((-t - layout.b - 1) % BLOCK) + BLOCK) % BLOCK;
    const q = Buffer.alloc(t + pad + 1 + layout.b);
    q.set(tweak, 0);
    const roundAt = t + pad;
    const constantBlocks = Math.floor(roundAt / BLOCK);
    let state = this.aes.update(p);
    for (let j = 0; j < constantBlocks; j++) {
      for (let k = 0; k < BLOCK; k++) this.block[k] = state[k]! ^ q[j * BLOCK + k]!;
      state = this.aes.update(this.block);
    }
    return {
      layout,
      prefix: state,
      tail: Buffer.from(q.subarray(constantBlocks * BLOCK)),
      roundByte: roundAt - constantBlocks * BLOCK,
    };
  }

  /** Steps 1, 3 and 4, and the moduli radix^u and radix^v. */
  private layout(n: number): Layout {
    let layout = this.layouts.get(n);
    if (layout === undefined) {
      const u = Math.floor(n / 2);
      const v = n - u;
      const radix = BigInt(this.radix);
      const bigModU = radix ** BigInt(u);
      const bigModV = radix ** BigInt(v);
      // ceil(v * log2(radix)) is exactly the bit length of radix^v - 1; computed exactly, not
      // with floating-point logarithms.
      const b = Math.ceil((bigModV - 1n).toString(2).length / 8);
      const numeric = bigModV <= NUMBER_PATH_MAX_MODULUS;
      layout = {
        u,
        v,
        b,
        d: 4 * Math.ceil(b / 4) + 4,
        numeric,
        modU: numeric ? Number(bigModU) : 0,
        modV: numeric ? Number(bigModV) : 0,
        bigModU,
        bigModV,
      };
      this.layouts.set(n, layout);
    }
    return layout;
  }

  private numeral(x: ArrayLike<number>, i: number): number {
    const value = x[i]!;
    if (value >>> 0 !== value || value >= this.radix) {
      throw new Ff1Error(
        'FF1_NUMERAL',
        `FF1: the numeral at position ${i} is not an integer in 0..${this.radix - 1}`,
      );
    }
    return value;
  }

  /** NUM_radix(X[start..end)) as a plain number; only called when it is below 2^45. */
  private numberOf(x: ArrayLike<number>, start: number, end: number): number {
    let value = 0;
    for (let i = start; i < end; i++) value = value * this.radix + this.numeral(x, i);
    return value;
  }

  /** STR^m_radix(value) written into out[start..end). */
  private writeNumber(out: number[], start: number, end: number, value: number): void {
    let rest = value;
    for (let i = end - 1; i >= start; i--) {
      const digit = rest % this.radix;
      out[i] = digit;
      rest = (rest - digit) / this.radix;
    }
  }

  /** NUM_radix on BigInt, in chunks of numerals that fit a plain number. */
  private bigOf(x: ArrayLike<number>, start: number, end: number): bigint {
    const radix = this.radix;
    let i = start;
    let word = 0;
    const head = start + ((end - start) % this.chunkDigits);
    for (; i < head; i++) word = word * radix + this.numeral(x, i);
    let value = BigInt(word);
    while (i < end) {
      word = 0;
      for (const stop = i + this.chunkDigits; i < stop; i++)
        word = word * radix + this.numeral(x, i);
      value = value * this.chunkPow + BigInt(word);
    }
    return value;
  }

  private writeBig(out: number[], start: number, end: number, value: bigint): void {
    const radix = this.radix;
    let i = end;
    let rest = value;
    while (i - start >= this.chunkDigits) {
      const quotient = rest / this.chunkPow;
      let word = Number(rest - quotient * this.chunkPow);
      rest = quotient;
      for (let k = 0; k < this.chunkDigits; k++) {
        const digit = word % radix;
        out[--i] = digit;
        word = (word - digit) / radix;
      }
    }
    let word = Number(rest);
    while (i > start) {
      const digit = word % radix;
      out[--i] = digit;
      word = (word - digit) / radix;
    }
  }
}

/** Alphabets for `Ff1Text`. base36 is the one NIST's radix-36 samples use. */
export const FF1_ALPHABETS = {
  decimal: '0123456789',
  hex: '0123456789abcdef',
  base36: '0123456789abcdefghijklmnopqrstuvwxyz',
  base62: '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
} as const;

/**
 * The mapping between the characters of a text and FF1 numerals: the i-th character of the
 * alphabet is numeral i. Characters are Unicode code points, so an alphabet may hold any
 * character; ASCII ones are looked up in a table, the rest in a map.
 */
export class Ff1Alphabet {
  readonly radix: number;
  readonly characters: string;
  private readonly symbols: readonly string[];
  private readonly ascii = new Int32Array(128).fill(-1);
  private readonly others = new Map<number, number>();
  /** Every character is one UTF-16 unit, so text can be walked with charCodeAt. */
  private readonly singleUnit: boolean;

  constructor(characters: string) {
    const symbols = Array.from(characters);
    if (symbols.length < FF1_MIN_RADIX || symbols.length > FF1_MAX_RADIX) {
      throw new Ff1Error(
        'FF1_ALPHABET',
        `FF1: an alphabet needs ${FF1_MIN_RADIX}..${FF1_MAX_RADIX} characters, got ${symbols.length}`,
      );
    }
    symbols.forEach((symbol, numeral) => {
      const codePoint = symbol.codePointAt(0) ?? -1;
      const known = codePoint < 128 ? this.ascii[codePoint]! >= 0 : this.others.has(codePoint);
      if (known) {
        throw new Ff1Error(
          'FF1_ALPHABET',
          `FF1: the alphabet repeats the character at position ${numeral}`,
        );
      }
      if (codePoint < 128) this.ascii[codePoint] = numeral;
      else this.others.set(codePoint, numeral);
    });
    this.radix = symbols.length;
    this.characters = characters;
    this.symbols = symbols;
    this.singleUnit = symbols.length === characters.length;
  }

  /** The numerals of `text`; refuses a character outside the alphabet (by position only). */
  toNumerals(text: string): number[] {
    const out: number[] = [];
    if (this.singleUnit) {
      for (let i = 0; i < text.length; i++) out.push(this.lookup(text.charCodeAt(i), i));
    } else {
      let i = 0;
      for (const symbol of text) out.push(this.lookup(symbol.codePointAt(0) ?? -1, i++));
    }
    return out;
  }

  /** The text of `numerals`; refuses a numeral outside 0..radix-1. */
  fromNumerals(numerals: ArrayLike<number>): string {
    let text = '';
    for (let i = 0; i < numerals.length; i++) {
      const symbol = this.symbols[numerals[i]!];
      if (symbol === undefined) {
        throw new Ff1Error(
          'FF1_NUMERAL',
          `FF1: the numeral at position ${i} is not an integer in 0..${this.radix - 1}`,
        );
      }
      text += symbol;
    }
    return text;
  }

  private lookup(codePoint: number, position: number): number {
    const numeral = codePoint < 128 ? this.ascii[codePoint]! : (this.others.get(codePoint) ?? -1);
    if (numeral < 0) {
      // The character itself stays out of the message: it is part of the plaintext.
      throw new Ff1Error(
        'FF1_NUMERAL',
        `FF1: the character at position ${position} is not in the ${this.radix}-character alphabet`,
      );
    }
    return numeral;
  }
}

/** FF1 on text: the alphabet's size is the radix, e.g. `new Ff1Text(key, FF1_ALPHABETS.decimal)`. */
export class Ff1Text {
  readonly alphabet: Ff1Alphabet;
  readonly ff1: Ff1;

  constructor(key: Uint8Array, alphabet: string | Ff1Alphabet, options: Ff1Options = {}) {
    this.alphabet = typeof alphabet === 'string' ? new Ff1Alphabet(alphabet) : alphabet;
    this.ff1 = new Ff1(key, this.alphabet.radix, options);
  }

  encrypt(text: string, tweak?: Ff1Tweak): string {
    return this.alphabet.fromNumerals(this.ff1.encrypt(this.alphabet.toNumerals(text), tweak));
  }

  decrypt(text: string, tweak?: Ff1Tweak): string {
    return this.alphabet.fromNumerals(this.ff1.decrypt(this.alphabet.toNumerals(text), tweak));
  }
}
