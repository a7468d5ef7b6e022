import { itemKey } from './stock-session.js';
import type { ItemKey, LevelRow } from './store.js';

export interface SnapshotOptions {
  /** Rows kept; the least recently written go first. */
  limit?: number;
  /** How long an item whose snapshot proved stale takes the locking path only. */
  backoffMs?: number;
}

/**
 * The last committed state of the stock rows this process wrote or read under lock, for
 * reservation batches that skip the lock (D31). An entry is a hint, never the truth: the
 * write made from it is guarded by the row's version, so a stale entry costs one failed
 * statement and never a wrong grant. An item that another process also writes (its snapshot
 * proved stale) takes the locking path for a while, where waiting on the lock is cheaper than
 * failing again.
 */
export class LevelSnapshots {
  private readonly rows = new Map<string, LevelRow>();
  private readonly contendedUntil = new Map<string, number>();
  /** Items a transaction of this process is writing now, by kind, and who waits for them. */
  private readonly busy = new Map<string, Busy>();
  private readonly limit: number;
  private readonly backoffMs: number;

  constructor(options: SnapshotOptions = {}) {
    this.limit = options.limit ?? 200_000;
    this.backoffMs = options.backoffMs ?? 5_000;
  }

  /**
   * The rows of these items, each once, if every one has a snapshot and is not contended;
   * else null (take the locking path). 'busy' while a transaction of this process writes one
   * of them: wait for it (whenIdle) and ask again, its commit leaves the next snapshot.
   */
  take(keys: readonly ItemKey[], now: number): LevelRow[] | 'busy' | null {
    const out = new Map<string, LevelRow>();
    let busy = false;
    for (const k of keys) {
      const id = itemKey(k.sku, k.locationId);
      if (out.has(id)) continue;
      const row = this.rows.get(id);
      if (!row) return null;
      if (this.busy.has(id)) busy = true;
      const until = this.contendedUntil.get(id);
      if (until !== undefined) {
        if (until > now) return null;
        this.contendedUntil.delete(id);
      }
      out.set(id, row);
    }
    return busy ? 'busy' : [...out.values()].map((row) => ({ ...row }));
  }

  /** Resolves once no transaction of this process is writing any of these items. */
  async whenIdle(keys: readonly ItemKey[]): Promise<void> {
    for (;;) {
      const busy = keys
        .map((k) => this.busy.get(itemKey(k.sku, k.locationId)))
        .find((b) => b !== undefined);
      if (!busy) return;
      await new Promise<void>((resolve) => busy.idle.push(resolve));
    }
  }

  /** Committed rows; an entry is replaced only by a later version of its row. */
  record(rows: readonly LevelRow[]): void {
    for (const row of rows) {
      const id = itemKey(row.sku, row.location_id);
      const known = this.rows.get(id);
      if (known && known.version > row.version) continue;
      this.rows.delete(id);
      this.rows.set(id, { ...row });
    }
    for (const id of this.rows.keys()) {
      if (this.rows.size <= this.limit) break;
      this.rows.delete(id);
    }
  }

  /** These items' snapshots proved stale (another process writes them): use the lock a while. */
  stale(keys: readonly ItemKey[], now: number): void {
    for (const k of keys) {
      const id = itemKey(k.sku, k.locationId);
      this.rows.delete(id);
      this.contendedUntil.set(id, now + this.backoffMs);
    }
    if (this.contendedUntil.size > this.limit) {
      for (const [id, until] of this.contendedUntil)
        if (until <= now) this.contendedUntil.delete(id);
    }
  }

  /** A snapshot batch writes these items (they came from take): returns the release. */
  holdForSnapshot(keys: readonly ItemKey[]): () => void {
    return this.hold(keys, 'snapshot');
  }

  /**
   * A locking transaction is about to lock these items: it first waits for snapshot batches of
   * this process on them (else it could take the lock between a batch's read and its write and
   * make it fail), then keeps new ones off until the returned release is called.
   */
  async holdForLock(keys: readonly ItemKey[]): Promise<() => void> {
    for (;;) {
      const writing = keys
        .map((k) => this.busy.get(itemKey(k.sku, k.locationId)))
        .find((b) => b !== undefined && b.snapshot > 0);
      if (!writing) break;
      await new Promise<void>((resolve) => writing.snapshotDone.push(resolve));
    }
    return this.hold(keys, 'lock');
  }

  private hold(keys: readonly ItemKey[], kind: 'snapshot' | 'lock'): () => void {
    const ids = [...new Set(keys.map((k) => itemKey(k.sku, k.locationId)))];
    for (const id of ids) {
      let b = this.busy.get(id);
      if (!b) this.busy.set(id, (b = { snapshot: 0, lock: 0, snapshotDone: [], idle: [] }));
      b[kind]++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const id of ids) {
        const b = this.busy.get(id);
        if (!b) continue;
        b[kind]--;
        if (b.snapshot > 0) continue;
        const waiting = b.snapshotDone.splice(0);
        if (b.lock === 0) {
          this.busy.delete(id);
          waiting.push(...b.idle.splice(0));
        }
        waiting.forEach((wake) => wake());
      }
    };
  }
}

interface Busy {
  snapshot: number;
  lock: number;
  /** Locking transactions waiting for the snapshot batches to finish. */
  snapshotDone: Array<() => void>;
  /** Snapshot batches waiting for every writer to finish. */
  idle: Array<() => void>;
}
