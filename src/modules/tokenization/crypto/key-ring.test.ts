import { createHmac, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyCheckMismatchError, KeyRingError } from './errors.js';
import { KeyRing, keyCheckValue } from './key-ring.js';

const MASTER = Buffer.from(
  '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  'hex',
);
const OTHER_MASTER = Buffer.alloc(32, 0xab);

/** HKDF-SHA-256 as key-ring.ts documents it, computed here independently. */
const hkdf = (info: string) =>
  Buffer.from(hkdfSync('sha256', MASTER, Buffer.from('nexus-hub/tokenization'), info, 32));

describe('KeyRing', () => {
  it('derives every key with HKDF-SHA-256 and the documented labels', () => {
    const ring = new KeyRing(MASTER, [1, 2]);
    expect(ring.vaultKey(1)).toEqual(hkdf('nexus/vault/v1'));
    expect(ring.vaultKey(2)).toEqual(hkdf('nexus/vault/v2'));
    expect(ring.convergentKey(2, 'email')).toEqual(hkdf('nexus/convergent/v2/email'));
    expect(ring.fpeKey(1, 'card')).toEqual(hkdf('nexus/fpe/v1/card'));
    // Pinned: a change here would orphan every vault blob written so far.
    expect(ring.vaultKey(1).toString('hex')).toBe(
      '55eb1b0a3789bfb078c9935ed3fdfb420ce1e0faedf3118b5d2485b475d09333',
    );
  });

  it('gives unrelated keys to different purposes, versions, classes and masters', () => {
    const ring = new KeyRing(MASTER, [1, 2]);
    const keys = [
      ring.vaultKey(1),
      ring.vaultKey(2),
      ring.convergentKey(1, 'email'),
      ring.convergentKey(1, 'phone'),
      ring.convergentKey(2, 'email'),
      ring.fpeKey(1, 'email'),
      new KeyRing(OTHER_MASTER, [1]).vaultKey(1),
    ].map((key) => key.toString('hex'));
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('makes the highest version current unless told otherwise', () => {
    expect(new KeyRing(MASTER, [3, 1, 2]).currentVersion).toBe(3);
    expect(new KeyRing(MASTER, [3, 1, 2]).versions).toEqual([1, 2, 3]);
    // A version can be known (readable) before it is used for writing.
    const staged = new KeyRing(MASTER, [1, 2], { currentVersion: 1 });
    expect(staged.currentVersion).toBe(1);
    expect(staged.has(2)).toBe(true);
    expect(staged.has(3)).toBe(false);
  });

  it('does not depend on the caller keeping the master buffer intact', () => {
    const master = Buffer.from(MASTER);
    const ring = new KeyRing(master, [1]);
    master.fill(0);
    expect(ring.vaultKey(1)).toEqual(hkdf('nexus/vault/v1'));
  });

  it('refuses a bad master or bad versions', () => {
    expect(() => new KeyRing(Buffer.alloc(16), [1])).toThrow(
      /master key is 16 bytes; it must be 32/,
    );
    expect(() => new KeyRing(Buffer.alloc(33), [1])).toThrow(KeyRingError);
    expect(() => new KeyRing(MASTER, [])).toThrow(/at least one key version/);
    expect(() => new KeyRing(MASTER, [0])).toThrow(/key version 0 is outside 1\.\.65535/);
    expect(() => new KeyRing(MASTER, [65_536])).toThrow(/65536 is outside/);
    expect(() => new KeyRing(MASTER, [1.5])).toThrow(/1.5 is outside/);
    expect(() => new KeyRing(MASTER, [1, 2, 1])).toThrow(/listed twice/);
    expect(() => new KeyRing(MASTER, [1, 2], { currentVersion: 3 })).toThrow(
      /current version 3 is not one of the versions/,
    );
  });

  it('refuses keys of a version it does not hold', () => {
    const ring = new KeyRing(MASTER, [1, 2]);
    try {
      ring.vaultKey(3);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(KeyRingError);
      expect((error as KeyRingError).code).toBe('KEY_VERSION_UNKNOWN');
      expect((error as Error).message).toMatch(/key version 3 is not configured/);
    }
    expect(() => ring.convergentKey(0, 'email')).toThrow(/key version 0 is not configured/);
    expect(() => ring.fpeKey(9, 'card')).toThrow(KeyRingError);
  });
});

describe('key check value', () => {
  it('is an HMAC of a fixed label under a key derived for it, and is pinned', () => {
    const expected =
      'kcv1_' +
      createHmac('sha256', hkdf('nexus/key-check'))
        .update('nexus key check value')
        .digest()
        .subarray(0, 16)
        .toString('base64url');
    expect(keyCheckValue(MASTER)).toBe(expected);
    expect(keyCheckValue(MASTER)).toBe('kcv1_AWklpG4hnUyOlcFM0Bu5Gg');
    expect(new KeyRing(MASTER, [1, 7]).keyCheckValue()).toBe(expected);
  });

  it('differs between masters and does not reveal derived keys', () => {
    const check = keyCheckValue(MASTER);
    expect(keyCheckValue(OTHER_MASTER)).not.toBe(check);
    const ring = new KeyRing(MASTER, [1]);
    const checkBytes = Buffer.from(check.slice(5), 'base64url');
    for (const key of [ring.vaultKey(1), ring.convergentKey(1, 'email'), MASTER]) {
      expect(key.includes(checkBytes)).toBe(false);
    }
  });

  it('lets a hub detect at start that it was given the wrong master', () => {
    const stored = keyCheckValue(MASTER);
    expect(() => new KeyRing(MASTER, [1, 2]).verifyKeyCheck(stored)).not.toThrow();
    const wrong = new KeyRing(OTHER_MASTER, [1, 2]);
    expect(() => wrong.verifyKeyCheck(stored)).toThrow(KeyCheckMismatchError);
    expect(() => wrong.verifyKeyCheck(stored)).toThrow(/does not match the stored key check value/);
    for (const garbage of ['', 'kcv1_', stored.slice(0, -1), `${stored}x`, stored.toUpperCase()]) {
      expect(() => new KeyRing(MASTER, [1]).verifyKeyCheck(garbage)).toThrow(KeyCheckMismatchError);
    }
  });
});
