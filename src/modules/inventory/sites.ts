import type { Channel } from '../../model/schemas/common.js';
import type { Location } from '../../model/schemas/location.js';
import type { Executor } from '../../platform/db/storage.js';
import type { ChannelPolicy } from './policy.js';
import { defaultPolicy } from './policy.js';
import { loadChannelPolicies, loadLocations, type LocationRow } from './store.js';

/** What the inventory needs to know about a location, kept in memory. */
export interface Site {
  id: string;
  name: string;
  marketCode: string;
  type: Location['type'];
  active: boolean;
  capabilities: ReadonlySet<string>;
  lat: number;
  lon: number;
  allowNegativeStock: boolean;
  timeZone: string;
  openingHours: NonNullable<Location['openingHours']>;
}

const toSite = (row: LocationRow): Site => {
  const doc = JSON.parse(row.doc) as Location;
  return {
    id: row.id,
    name: doc.name,
    marketCode: row.market_code,
    type: doc.type,
    active: row.status === 'active',
    capabilities: new Set(doc.capabilities),
    lat: Number(row.lat),
    lon: Number(row.lon),
    allowNegativeStock: doc.allowNegativeStock === true,
    timeZone: doc.timeZone,
    openingHours: doc.openingHours ?? [],
  };
};

/**
 * Locations and channel policies, cached: every reservation needs its location's market (for
 * the event subject) and the channel's safety stock, and reading them per request would double
 * the hot path's queries. Entries are at most `ttlMs` old; an unknown id refreshes at once, so
 * a location created a moment ago is found. Another hub process's policy change is seen within
 * the TTL (decision D17).
 */
export class SiteDirectory {
  private sites = new Map<string, Site>();
  private policies = new Map<string, ChannelPolicy>();
  private loadedAt = -Infinity;
  private loading: Promise<void> | null = null;

  constructor(
    private readonly db: Executor,
    private readonly ttlMs = 5000,
  ) {}

  /** Forget everything: the next read reloads (after this process changed a location or policy). */
  invalidate(): void {
    this.loadedAt = -Infinity;
  }

  async site(id: string): Promise<Site | undefined> {
    await this.fresh();
    const found = this.sites.get(id);
    if (found) return found;
    await this.reload();
    return this.sites.get(id);
  }

  /**
   * Sites by id; unknown ids are absent from the map. Inside a transaction pass its executor:
   * on SQLite the root connection is the transaction's, and waiting for it would deadlock.
   */
  async sitesOf(ids: Iterable<string>, db: Executor = this.db): Promise<Map<string, Site>> {
    await this.fresh(db);
    const wanted = [...new Set(ids)];
    if (wanted.some((id) => !this.sites.has(id))) await this.reload(db);
    const out = new Map<string, Site>();
    for (const id of wanted) {
      const site = this.sites.get(id);
      if (site) out.set(id, site);
    }
    return out;
  }

  async all(): Promise<Site[]> {
    await this.fresh();
    return [...this.sites.values()];
  }

  /** The policy that applies to a channel in a market (a default one when none is set). */
  async policy(marketCode: string, channel: Channel): Promise<ChannelPolicy> {
    await this.fresh();
    return this.policies.get(`${marketCode}/${channel}`) ?? defaultPolicy(marketCode, channel);
  }

  /** The policy as cached now; callers have awaited a lookup of its sites in this tick. */
  cachedPolicy(marketCode: string, channel: Channel): ChannelPolicy {
    return this.policies.get(`${marketCode}/${channel}`) ?? defaultPolicy(marketCode, channel);
  }

  async explicitPolicies(): Promise<ChannelPolicy[]> {
    await this.fresh();
    return [...this.policies.values()];
  }

  private async fresh(db: Executor = this.db): Promise<void> {
    if (Date.now() - this.loadedAt < this.ttlMs) return;
    await this.reload(db);
  }

  private reload(db: Executor = this.db): Promise<void> {
    // Inside a transaction, read on it and never join a reload on the root connection: on
    // SQLite that reload waits for this very transaction's connection, and both would wait for
    // ever (the webhooks fan-out shapes availability inside its transaction while the live
    // feed reads the same directory outside one).
    if (db !== this.db) return this.load(db);
    // One reload at a time; concurrent callers share it.
    this.loading ??= this.load(db).finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  private async load(db: Executor): Promise<void> {
    const [rows, policies] = await Promise.all([loadLocations(db), loadChannelPolicies(db)]);
    this.sites = new Map(rows.map((r) => [r.id, toSite(r)]));
    this.policies = new Map(
      policies.map((p) => [`${p.market_code}/${p.channel}`, JSON.parse(p.doc) as ChannelPolicy]),
    );
    this.loadedAt = Date.now();
  }
}
