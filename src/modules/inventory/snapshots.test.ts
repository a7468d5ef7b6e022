import { describe, expect, it } from 'vitest';
import { LevelSnapshots } from './snapshots.js';
import type { LevelRow } from './store.js';

const row = (sku: string, version: number, reserved = 0): LevelRow => ({
  sku,
  location_id: 'S1',
  on_hand: 10,
  reserved,
  safety_stock: 0,
  version,
  updated_at: 0,
});
const key = (sku: string) => ({ sku, locationId: 'S1' });

describe('LevelSnapshots', () => {
  it('gives every row of a batch once, or null when one is missing', () => {
    const s = new LevelSnapshots();
    s.record([row('A', 1), row('B', 4)]);
    expect(s.take([key('A'), key('B'), key('A')], 0)).toEqual([row('A', 1), row('B', 4)]);
    expect(s.take([key('A'), key('C')], 0)).toBeNull();
  });

  it('keeps the later version of a row whatever order commits are recorded in', () => {
    const s = new LevelSnapshots();
    s.record([row('A', 3, 3)]);
    s.record([row('A', 2, 2)]);
    expect(s.take([key('A')], 0)).toEqual([row('A', 3, 3)]);
  });

  it('hands out copies: a batch changing its rows does not change the snapshot', () => {
    const s = new LevelSnapshots();
    s.record([row('A', 1)]);
    const taken = s.take([key('A')], 0) as LevelRow[];
    taken[0]!.reserved = 9;
    expect(s.take([key('A')], 0)).toEqual([row('A', 1)]);
  });

  it('forgets the oldest rows beyond its limit', () => {
    const s = new LevelSnapshots({ limit: 2 });
    s.record([row('A', 1), row('B', 1)]);
    s.record([row('A', 2)]); // A is now the most recent
    s.record([row('C', 1)]);
    expect(s.take([key('B')], 0)).toBeNull();
    expect(s.take([key('A'), key('C')], 0)).toHaveLength(2);
  });

  it('sends a stale item through the lock until the backoff ends', () => {
    const s = new LevelSnapshots({ backoffMs: 1000 });
    s.record([row('A', 1)]);
    s.stale([key('A')], 5000);
    s.record([row('A', 2)]); // the locking path's commit
    expect(s.take([key('A')], 5999)).toBeNull();
    expect(s.take([key('A')], 6000)).toEqual([row('A', 2)]);
  });

  it('says busy while a batch writes an item, until it is released', async () => {
    const s = new LevelSnapshots();
    s.record([row('A', 1), row('B', 1)]);
    const release = s.holdForSnapshot([key('A')]);
    expect(s.take([key('A'), key('B')], 0)).toBe('busy');
    expect(s.take([key('B')], 0)).toEqual([row('B', 1)]);
    let idle = false;
    const waiting = s.whenIdle([key('A')]).then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    release();
    release(); // a second call changes nothing
    await waiting;
    expect(s.take([key('A')], 0)).toEqual([row('A', 1)]);
  });

  it('lets a locking transaction in only after the snapshot batch on its items', async () => {
    const s = new LevelSnapshots();
    s.record([row('A', 1)]);
    const order: string[] = [];
    const snapshot = s.holdForSnapshot([key('A')]);
    const locking = s.holdForLock([key('A')]).then((release) => {
      order.push('locked');
      return release;
    });
    await Promise.resolve();
    order.push('snapshot written');
    snapshot();
    const releaseLock = await locking;
    expect(order).toEqual(['snapshot written', 'locked']);
    // While it holds the lock, snapshot batches wait for it.
    expect(s.take([key('A')], 0)).toBe('busy');
    releaseLock();
    await s.whenIdle([key('A')]);
    expect(s.take([key('A')], 0)).toEqual([row('A', 1)]);
  });
});
