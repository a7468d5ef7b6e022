import { createDecipheriv, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { VaultCipherError } from './errors.js';
import { KeyRing } from './key-ring.js';
import { parseToken } from './token-format.js';
import { VAULT_HEADER_BYTES, VaultCipher, type VaultAad } from './vault-cipher.js';

const MASTER = Buffer.from(
  '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  'hex',
);

const vault = (versions = [1], currentVersion?: number, master = MASTER) =>
  new VaultCipher(new KeyRing(master, versions, { currentVersion }));

function failure(run: () => unknown): VaultCipherError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(VaultCipherError);
    return error as VaultCipherError;
  }
  throw new Error('expected a VaultCipherError');
}

describe('VaultCipher', () => {
  const cipher = vault();
  const row: VaultAad = { token: cipher.newToken('email'), fieldClass: 'email' };

  it('round-trips strings and bytes, empty and non-ASCII included', () => {
    for (const value of ['jane.doe@example.com', '', 'Grüße, 東京 🏃', 'x'.repeat(10_000)]) {
      expect(cipher.decryptString(cipher.encrypt(value, row), row)).toBe(value);
    }
    const bytes = Uint8Array.from([0, 1, 2, 255, 254]);
    expect([...cipher.decrypt(cipher.encrypt(bytes, row), row)]).toEqual([...bytes]);
  });

  it('lays a blob out as version, IV, tag, ciphertext, with the documented key and AAD', () => {
    const blob = cipher.encrypt('jane.doe@example.com', row);
    expect(blob).toHaveLength(VAULT_HEADER_BYTES + 20);
    expect(VAULT_HEADER_BYTES).toBe(30);
    expect(blob.readUInt16BE(0)).toBe(1);
    // Decrypt with nothing but node:crypto and the layout in the doc comment.
    const key = Buffer.from(
      hkdfSync('sha256', MASTER, Buffer.from('nexus-hub/tokenization'), 'nexus/vault/v1', 32),
    );
    const aad = Buffer.concat([
      Buffer.from([0, 1, 5]),
      Buffer.from('email'),
      Buffer.from(row.token, 'utf8'),
    ]);
    const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(2, 14));
    decipher.setAuthTag(blob.subarray(14, 30));
    decipher.setAAD(aad);
    const plain = Buffer.concat([decipher.update(blob.subarray(30)), decipher.final()]);
    expect(plain.toString('utf8')).toBe('jane.doe@example.com');
  });

  it('uses a fresh IV for every value', () => {
    const ivs = new Set<string>();
    for (let i = 0; i < 2_000; i++)
      ivs.add(cipher.encrypt('same', row).subarray(2, 14).toString('hex'));
    expect(ivs.size).toBe(2_000);
  });

  it('refuses a blob moved to another row, relabelled, or under another master', () => {
    const blob = cipher.encrypt('jane.doe@example.com', row);
    const otherRow = { token: cipher.newToken('email'), fieldClass: 'email' } as const;
    for (const [aad, using] of [
      [otherRow, cipher],
      [{ token: row.token, fieldClass: 'name' }, cipher],
      [row, vault([1], undefined, Buffer.alloc(32, 9))],
    ] as const) {
      const error = failure(() => using.decrypt(blob, aad));
      expect(error.code).toBe('VAULT_AUTH_FAILED');
      expect(error.message).toMatch(/does not authenticate/);
      expect(error.message).not.toContain('jane');
    }
  });

  it('refuses a blob with any byte altered', () => {
    const blob = cipher.encrypt('jane.doe@example.com', row);
    for (let at = 2; at < blob.length; at++) {
      const altered = Buffer.from(blob);
      altered[at] = altered[at]! ^ 0x01;
      expect(failure(() => cipher.decrypt(altered, row)).code, `byte ${at}`).toBe(
        'VAULT_AUTH_FAILED',
      );
    }
    expect(failure(() => cipher.decrypt(blob.subarray(0, blob.length - 1), row)).code).toBe(
      'VAULT_AUTH_FAILED',
    );
  });

  it('refuses a blob relabelled with another configured version', () => {
    const two = vault([1, 2], 1);
    const blob = two.encrypt('value', row);
    blob.writeUInt16BE(2, 0);
    expect(failure(() => two.decrypt(blob, row)).code).toBe('VAULT_AUTH_FAILED');
  });

  it('refuses a blob shorter than the header or under an unknown version', () => {
    const short = failure(() => cipher.decrypt(Buffer.alloc(29), row));
    expect(short.code).toBe('VAULT_BLOB_MALFORMED');
    expect(short.message).toMatch(/29 bytes is shorter than the 30-byte header/);
    const blob = cipher.encrypt('value', row);
    for (const version of [0, 2, 65_535]) {
      blob.writeUInt16BE(version, 0);
      const unknown = failure(() => cipher.decrypt(blob, row));
      expect(unknown.code).toBe('KEY_VERSION_UNKNOWN');
      expect(unknown.message).toMatch(
        new RegExp(`key version ${version}, which is not configured`),
      );
    }
  });

  it('decrypts a blob inside a larger buffer', () => {
    const blob = cipher.encrypt('value', row);
    const backing = Buffer.alloc(blob.length + 9, 0xee);
    blob.copy(backing, 4);
    expect(cipher.decryptString(backing.subarray(4, 4 + blob.length), row)).toBe('value');
  });
});

describe('VaultCipher key rotation', () => {
  const row: VaultAad = { token: 'tok_v1_phone_AAAAAAAAAAAAAAAAAAAAAAAA', fieldClass: 'phone' };

  it('encrypts under the current version and keeps old versions readable', () => {
    const before = vault([1]);
    const old = before.encrypt('+4915123456789', row);
    const after = vault([1, 2]);
    expect(after.currentVersion).toBe(2);
    expect(after.blobVersion(old)).toBe(1);
    expect(after.decryptString(old, row)).toBe('+4915123456789');
    const fresh = after.encrypt('+4915123456789', row);
    expect(after.blobVersion(fresh)).toBe(2);
    expect(() => before.decrypt(fresh, row)).toThrow(/key version 2, which is not configured/);
  });

  it('reencrypt moves a blob to the current version; a current blob comes back unchanged', () => {
    const old = vault([1]).encrypt('+4915123456789', row);
    const after = vault([1, 2]);
    const moved = after.reencrypt(old, row);
    expect(after.blobVersion(moved)).toBe(2);
    expect(after.decryptString(moved, row)).toBe('+4915123456789');
    expect(after.reencrypt(moved, row)).toEqual(moved);
    // Once nothing is left under version 1, a ring without it reads everything.
    expect(vault([2]).decryptString(moved, row)).toBe('+4915123456789');
  });

  it('reencrypt refuses a blob that does not authenticate rather than carrying it forward', () => {
    const old = vault([1]).encrypt('+4915123456789', row);
    const otherRow = { ...row, token: 'tok_v1_phone_BBBBBBBBBBBBBBBBBBBBBBBB' };
    expect(failure(() => vault([1, 2]).reencrypt(old, otherRow)).code).toBe('VAULT_AUTH_FAILED');
  });
});

describe('vault tokens', () => {
  it('are tok_v<current>_<class>_<24 base64url characters>, and unique', () => {
    const cipher = vault([1, 2, 3], 2);
    const tokens = new Set<string>();
    for (let i = 0; i < 20_000; i++) tokens.add(cipher.newToken('card'));
    expect(tokens.size).toBe(20_000);
    for (const token of [...tokens].slice(0, 100)) {
      expect(token).toMatch(/^tok_v2_card_[A-Za-z0-9_-]{24}$/);
      expect(parseToken(token)).toMatchObject({ kind: 'vault', keyVersion: 2, fieldClass: 'card' });
    }
  });
});
