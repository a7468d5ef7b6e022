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
