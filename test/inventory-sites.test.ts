import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SiteDirectory } from '../src/modules/inventory/index.js';
import { migrateToLatest } from '../src/platform/db/migrations.js';
import { openSqlite } from '../src/platform/db/sqlite.js';
import type { Storage } from '../src/platform/db/storage.js';

// SQLite has one connection: a read on the root executor waits until the transaction holding
// it ends. A lookup inside that transaction must therefore never wait for such a read.
describe('SiteDirectory inside a transaction (SQLite)', () => {
  let dir: string;
  let storage: Storage;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-sites-'));
    storage = openSqlite({ file: join(dir, 'nexus.db') });
    expect((await migrateToLatest(storage)).error).toBeUndefined();
  });
  afterAll(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads on the transaction while a reload on the root connection waits for it', async () => {
    const sites = new SiteDirectory(storage.db);
    let outside: Promise<unknown> = Promise.resolve();
    const inside = await storage.transaction(async (trx) => {
      await sql`select 1`.execute(trx);
      sites.invalidate();
      // A reload on the root connection (as the live feed's lookups make): queued behind us.
      outside = sites.site('AV-NOWHERE');
      return Promise.race([
        sites.sitesOf(['AV-NOWHERE'], trx).then((found) => (found.size === 0 ? 'read' : 'found')),
        new Promise((resolve) => setTimeout(() => resolve('stuck'), 2000)),
      ]);
    });
    expect(inside).toBe('read');
    expect(await outside).toBeUndefined();
  });
});
