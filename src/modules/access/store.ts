import type { Executor } from '../../platform/db/storage.js';
import type { ApiKeyTable } from '../../platform/db/tables.js';

export type ApiKeyRow = ApiKeyTable;

export async function insertKey(db: Executor, row: ApiKeyRow): Promise<void> {
  await db.insertInto('api_keys').values(row).execute();
}

export function findByHash(db: Executor, hash: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom('api_keys').selectAll().where('secret_hash', '=', hash).executeTakeFirst();
}

export function listKeys(db: Executor, includeRevoked: boolean): Promise<ApiKeyRow[]> {
  let query = db.selectFrom('api_keys').selectAll().orderBy('created_at').orderBy('id');
  if (!includeRevoked) query = query.where('revoked_at', 'is', null);
  return query.execute();
}

export async function revokeKey(db: Executor, id: string, now: number): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: now })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function touchKey(db: Executor, id: string, now: number): Promise<void> {
  await db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', id).execute();
}
