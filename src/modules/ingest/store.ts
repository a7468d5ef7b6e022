import { insertRows } from '../../platform/db/bulk.js';
import type { Executor } from '../../platform/db/storage.js';
import type { DeadLetterTable } from '../../platform/db/tables.js';

export type DeadLetterRow = DeadLetterTable;

/** Marks an inbound event id as taken; false when it was ingested before (a replay). */
export async function claimEventId(db: Executor, eventId: string): Promise<boolean> {
  const inserted = await db
    .insertInto('inbox')
    .values({ consumer: 'ingest', event_id: eventId, processed_at: Date.now() })
    .onConflict((oc) => oc.columns(['consumer', 'event_id']).doNothing())
    .executeTakeFirst();
  return Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0;
}

const CLAIM_CHUNK = 500;

/**
 * `claimEventId` for many ids in one statement per 500: the ids that were free and are now
 * taken. Claimed in sorted order, so two batches with overlapping ids wait on each other
 * rather than deadlock on PostgreSQL.
 */
export async function claimEventIds(
  db: Executor,
  eventIds: readonly string[],
): Promise<Set<string>> {
  const sorted = [...new Set(eventIds)].sort();
  const claimed = new Set<string>();
  const now = Date.now();
  for (let i = 0; i < sorted.length; i += CLAIM_CHUNK) {
    const result = await insertRows<{ event_id: string }>(
      db,
      'insert into inbox (consumer, event_id, processed_at)',
      3,
      sorted.slice(i, i + CLAIM_CHUNK).map((id) => ['ingest', id, now]),
      'on conflict (consumer, event_id) do nothing returning event_id',
    );
    for (const row of result.rows) claimed.add(row.event_id);
  }
  return claimed;
}

export async function insertDeadLetter(db: Executor, row: DeadLetterRow): Promise<void> {
  await db.insertInto('dead_letters').values(row).execute();
}

export function listDeadLetters(
  db: Executor,
  query: {
    consumer?: string | undefined;
    status?: string | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<DeadLetterRow[]> {
  let select = db
    .selectFrom('dead_letters')
    .selectAll()
    .orderBy('id')
    .limit(query.limit + 1);
  if (query.consumer) select = select.where('consumer', '=', query.consumer);
  if (query.status) select = select.where('status', '=', query.status as DeadLetterRow['status']);
  if (query.after) select = select.where('id', '>', query.after);
  return select.execute();
}

export function getDeadLetter(db: Executor, id: string): Promise<DeadLetterRow | undefined> {
  return db.selectFrom('dead_letters').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function updateDeadLetter(
  db: Executor,
  id: string,
  changes: Partial<Pick<DeadLetterRow, 'envelope' | 'error' | 'status' | 'attempts'>>,
): Promise<void> {
  await db
    .updateTable('dead_letters')
    .set({ ...changes, updated_at: Date.now() })
    .where('id', '=', id)
    .execute();
}
