import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Housekeeping } from '../src/platform/events/housekeeping.js';
import { storageTargets, type OpenedStorage } from './support/targets.js';

describe.each(storageTargets)('housekeeping: $name', (target) => {
  let opened: OpenedStorage;
  beforeAll(async () => {
    opened = await target.open();
  });
  afterAll(async () => {
    await opened.dispose();
  });

  const day = 24 * 60 * 60 * 1000;
  const retention = { inboxMs: 7 * day, streamMs: 7 * day };
  const publish = (ids: string[], at: number) =>
    opened.storage.db
      .insertInto('bus_messages')
      .values(
        ids.map((id) => ({
          event_id: id,
          subject: 'nexus.evt.global.test.v1',
          partition_key: id,
          envelope: '{}',
          published_at: at,
        })),
      )
      .execute();
  const stream = async () =>
    (
      await opened.storage.db.selectFrom('bus_messages').select('event_id').orderBy('seq').execute()
    ).map((r) => r.event_id);

  it('keeps the stream within its retention, cutting by seq, and leaves an empty stream alone', async () => {
    const now = Date.now();
    const keeping = new Housekeeping(opened.storage, [], { retention });
    await keeping.runOnce(now);
    expect(await stream()).toEqual([]);

    await publish(['old-1', 'old-2'], now - 8 * day);
    await publish(['new-1', 'new-2'], now - day);
    await keeping.runOnce(now);
    expect(await stream()).toEqual(['new-1', 'new-2']);

    // A week later nothing is young enough: all of it goes.
    await keeping.runOnce(now + 7 * day);
    expect(await stream()).toEqual([]);
  });
});
