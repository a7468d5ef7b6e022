import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../platform/db/migrations.js';
import { openSqlite } from '../../platform/db/sqlite.js';
import type { Storage } from '../../platform/db/storage.js';
import { VaultWriter, type PendingToken } from './writer.js';

describe('VaultWriter', () => {
  let dir: string;
  let storage: Storage;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-writer-'));
    storage = openSqlite({ file: join(dir, 'nexus.db') });
    await migrateToLatest(storage);
  });
  afterAll(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails only the caller whose value fails a group-committed write', async () => {
    const writer = new VaultWriter({
      storage,
      encrypt: (pending) => {
        if (pending.value === 'POISON') throw new Error('this value cannot be encrypted');
        return { ciphertext: Buffer.from(JSON.stringify(pending.value)), keyVersion: 1 };
      },
    });
    const pending = (i: number): PendingToken => ({
      token: `tok_writer_${i}`,
      kind: 'vault',
      fieldClass: 'name',
      value: i === 5 ? 'POISON' : `name ${i}`,
      keyVersion: 1,
      epoch: 0,
    });
    // Submitted in one turn of the event loop: one group commit takes them all.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => writer.write([pending(i)], `C-${i}`)),
    );
    expect(outcomes.map((o) => o.status)).toEqual(
      Array.from({ length: 12 }, (_, i) => (i === 5 ? 'rejected' : 'fulfilled')),
    );
    expect(String((outcomes[5] as PromiseRejectedResult).reason)).toContain('cannot be encrypted');
    const { rows } = await sql<{ token: string }>`select token from token_vault
      where token like 'tok_writer_%' order by token`.execute(storage.db);
    expect(rows.map((r) => r.token).sort()).toEqual(
      Array.from({ length: 12 }, (_, i) => `tok_writer_${i}`)
        .filter((t) => t !== 'tok_writer_5')
        .sort(),
    );
  });
});
