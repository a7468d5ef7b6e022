import type { Generated } from 'kysely';

/**
 * Tables owned by the platform (event backbone, API keys, idempotency). Domain modules declare
 * their own table types beside their store and reach them with `db.withTables<...>()`.
 * Times are epoch milliseconds in both dialects, so comparisons and ordering are the same.
 */
export interface OutboxTable {
  seq: Generated<number>;
  event_id: string;
  subject: string;
  partition_key: string;
  envelope: string;
  created_at: number;
  published_at: number | null;
}

export interface InboxTable {
  consumer: string;
  event_id: string;
  processed_at: number;
}

export interface BusMessageTable {
  seq: Generated<number>;
  event_id: string;
  subject: string;
  partition_key: string;
  envelope: string;
  published_at: number;
}

export interface BusConsumerTable {
  name: string;
  filter: string;
  position: number;
  updated_at: number;
}

export interface DeadLetterTable {
  id: string;
  consumer: string;
  event_id: string;
  subject: string;
  envelope: string;
  error: string;
  attempts: number;
  /** replay-requested: an operator asked the owning consumer group to apply it again. */
  status: 'open' | 'replay-requested' | 'replayed' | 'discarded';
  created_at: number;
  updated_at: number;
}

export interface ApiKeyTable {
  id: string;
  name: string;
  prefix: string;
  secret_hash: string;
  channel: string;
  markets: string | null;
  scopes: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
}

export interface IdempotencyKeyTable {
  client_id: string;
  key: string;
  method: string;
  path: string;
  request_hash: string;
  state: 'in-progress' | 'done';
  status_code: number | null;
  response_body: string | null;
  created_at: number;
  expires_at: number;
  locked_until: number;
}

export interface PlatformTables {
  outbox: OutboxTable;
  inbox: InboxTable;
  bus_messages: BusMessageTable;
  bus_consumers: BusConsumerTable;
  dead_letters: DeadLetterTable;
  api_keys: ApiKeyTable;
  idempotency_keys: IdempotencyKeyTable;
}
