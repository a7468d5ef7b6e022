import {
  Migrator,
  sql,
  type Kysely,
  type Migration,
  type MigrationResultSet,
  type RawBuilder,
} from 'kysely';
import type { Dialect, Storage } from './storage.js';

/**
 * One ordered list of migrations for both dialects. Each migration is written once with
 * kysely's schema builder; the few differences between SQLite and PostgreSQL (auto-increment
 * keys, 64-bit integers) go through the helpers below. Never edit a released migration: add one.
 */
type Step = (db: Kysely<unknown>, dialect: Dialect) => Promise<void>;

const serialKey = (dialect: Dialect) => (dialect === 'postgres' ? 'bigserial' : 'integer');
/** Epoch milliseconds and counters: 64-bit in PostgreSQL, SQLite integers are 64-bit anyway. */
const int64 = 'bigint';

const steps: Record<string, Step> = {
  '0001_event_backbone': async (db, dialect) => {
    await db.schema
      .createTable('outbox')
      .addColumn('seq', serialKey(dialect), (c) =>
        dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
      )
      .addColumn('event_id', 'text', (c) => c.notNull().unique())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('partition_key', 'text', (c) => c.notNull())
      .addColumn('envelope', 'text', (c) => c.notNull())
      .addColumn('created_at', int64, (c) => c.notNull())
      .addColumn('published_at', int64)
      .execute();
    // The relay only ever scans unpublished rows; a partial index keeps that scan tiny.
    await db.schema
      .createIndex('outbox_unpublished')
      .on('outbox')
      .column('seq')
      .where(sql.ref('published_at'), 'is', null)
      .execute();
    await db.schema
      .createIndex('outbox_published_at')
      .on('outbox')
      .column('published_at')
      .execute();

    await db.schema
      .createTable('inbox')
      .addColumn('consumer', 'text', (c) => c.notNull())
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('processed_at', int64, (c) => c.notNull())
      .addPrimaryKeyConstraint('inbox_pk', ['consumer', 'event_id'])
      .execute();
    await db.schema.createIndex('inbox_processed_at').on('inbox').column('processed_at').execute();

    await db.schema
      .createTable('bus_messages')
      .addColumn('seq', serialKey(dialect), (c) =>
        dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
      )
      .addColumn('event_id', 'text', (c) => c.notNull().unique())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('partition_key', 'text', (c) => c.notNull())
      .addColumn('envelope', 'text', (c) => c.notNull())
      .addColumn('published_at', int64, (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('bus_messages_published_at')
      .on('bus_messages')
      .column('published_at')
      .execute();

    await db.schema
      .createTable('bus_consumers')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('filter', 'text', (c) => c.notNull())
      .addColumn('position', int64, (c) => c.notNull())
      .addColumn('updated_at', int64, (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('dead_letters')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('consumer', 'text', (c) => c.notNull())
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('envelope', 'text', (c) => c.notNull())
      .addColumn('error', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', int64, (c) => c.notNull())
      .addColumn('updated_at', int64, (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('dead_letters_consumer_status')
      .on('dead_letters')
      .columns(['consumer', 'status'])
      .execute();
  },

  '0002_api': async (db) => {
    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('prefix', 'text', (c) => c.notNull())
      .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
      .addColumn('channel', 'text', (c) => c.notNull())
      .addColumn('markets', 'text')
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('created_at', int64, (c) => c.notNull())
      .addColumn('revoked_at', int64)
      .addColumn('last_used_at', int64)
      .execute();

    await db.schema
      .createTable('idempotency_keys')
      .addColumn('client_id', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('method', 'text', (c) => c.notNull())
      .addColumn('path', 'text', (c) => c.notNull())
      .addColumn('request_hash', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('status_code', 'integer')
      .addColumn('response_body', 'text')
      .addColumn('created_at', int64, (c) => c.notNull())
      .addColumn('expires_at', int64, (c) => c.notNull())
      .addColumn('locked_until', int64, (c) => c.notNull())
      .addPrimaryKeyConstraint('idempotency_keys_pk', ['client_id', 'key'])
      .execute();
    await db.schema
      .createIndex('idempotency_keys_expires_at')
      .on('idempotency_keys')
      .column('expires_at')
      .execute();
  },

  '0003_reference_data': async (db) => {
    await db.schema
      .createTable('markets')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('currency', 'text', (c) => c.notNull())
      .addColumn('doc', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('created_at', int64, (c) => c.notNull())
      .addColumn('updated_at', int64, (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('locations')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('market_code', 'text', (c) => c.notNull().references('markets.id'))
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('capabilities', 'text', (c) => c.notNull())
      .addColumn('lat', 'double precision', (c) => c.notNull())
      .addColumn('lon', 'double precision', (c) => c.notNull())
      .addColumn('doc', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('created_at', int64, (c) => c.notNull())
      .addColumn('updated_at', int64, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('locations_market').on('locations').column('market_code').execute();

    await db.schema
      .createTable('products')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('brand', 'text')
      .addColumn('category', 'text')
      .addColumn('doc', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('created_at', int64, (c) => c.notNull())
      .addColumn('updated_at', int64, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('products_category').on('products').column('category').execute();
    await db.schema.createIndex('products_brand').on('products').column('brand').execute();

    await db.schema
      .createTable('skus')
      .addColumn('sku', 'text', (c) => c.primaryKey())
      .addColumn('product_id', 'text', (c) =>
        c.notNull().references('products.id').onDelete('cascade'),
      )
      .addColumn('gtin', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('skus_product').on('skus').column('product_id').execute();
    await db.schema.createIndex('skus_gtin').on('skus').column('gtin').unique().execute();
  },

  '0004_outbox_notify': async (db, dialect) => {
    if (dialect !== 'postgres') return;
    // Wakes relays in every hub process when outbox rows commit, with no extra round trip per
    // write: NOTIFY is transactional, so it is delivered at commit and dropped on rollback.
    await sql`
      create function nexus_outbox_notify() returns trigger language plpgsql as $$
      begin
        perform pg_notify('nexus_outbox', '');
        return null;
      end $$`.execute(db);
    await sql`
      create trigger outbox_notify after insert on outbox
      for each statement execute function nexus_outbox_notify()`.execute(db);
  },

  '0005_schema_registry': async (db, dialect) => {
    await db.schema
      .createTable('registry_schemas')
      .addColumn('id', serialKey(dialect), (c) =>
        dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
      )
      .addColumn('schema_type', 'text', (c) => c.notNull())
      .addColumn('schema', 'text', (c) => c.notNull())
      .addColumn('references', 'text', (c) => c.notNull())
      // One id per distinct (type, canonical schema, references), across all subjects.
      .addColumn('fingerprint', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', int64, (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('registry_versions')
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('schema_id', 'integer', (c) => c.notNull().references('registry_schemas.id'))
      .addColumn('deleted', 'integer', (c) => c.notNull())
      .addColumn('created_at', int64, (c) => c.notNull())
      .addPrimaryKeyConstraint('registry_versions_pk', ['subject', 'version'])
      .execute();
    await db.schema
      .createIndex('registry_versions_schema')
      .on('registry_versions')
      .column('schema_id')
      .execute();
    await db.schema
      .createTable('registry_settings')
      // subject '' holds the global setting.
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('registry_settings_pk', ['subject', 'kind'])
      .execute();
  },

  '0006_inventory': async (db, dialect) => {
    // The authoritative stock record. The CHECK is the last line of defence of "never
    // oversell": whatever a bug in the service did, the database refuses reserved > on hand.
    await db.schema
      .createTable('inventory_levels')
      .addColumn('sku', 'text', (c) => c.notNull())
      .addColumn('location_id', 'text', (c) => c.notNull())
      .addColumn('on_hand', int64, (c) => c.notNull())
      .addColumn('reserved', int64, (c) => c.notNull())
      .addColumn('safety_stock', int64, (c) => c.notNull())
      .addColumn('version', int64, (c) => c.notNull())
      .addColumn('updated_at', int64, (c) => c.notNull())
      .addPrimaryKeyConstraint('inventory_levels_pk', ['sku', 'location_id'])
      .addCheckConstraint(
        'inventory_levels_never_oversold',
        sql`reserved >= 0 and safety_stock >= 0 and (reserved = 0 or reserved <= on_hand)`,
      )
      .execute();
    await db.schema
      .createIndex('inventory_levels_location')
      .on('inventory_levels')
      .columns(['location_id', 'sku'])
      .execute();

    // The movement ledger: append-only, one row per change of on-hand stock.
    await db.schema
      .createTable('inventory_movements')
      .addColumn('seq', serialKey(dialect), (c) =>
        dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
      )
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('sku', 'text', (c) => c.notNull())
      .addColumn('location_id', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('delta', int64, (c) => c.notNull())
      .addColumn('on_hand_after', int64, (c) => c.notNull())
      .addColumn('reserved_after', int64, (c) => c.notNull())
      // Cycle counts: what was counted and how far the book was off (inventory accuracy KPI).
      .addColumn('counted', int64)
      .addColumn('variance', int64)
      .addColumn('reference', 'text')
      .addColumn('note', 'text')
      // Set when the movement took on-hand stock below zero (allowed at some locations).
      .addColumn('flagged', 'text')
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('channel', 'text')
      .addColumn('occurred_at', int64, (c) => c.notNull())
      .addColumn('recorded_at', int64, (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('inventory_movements_item')
      .on('inventory_movements')
      .columns(['sku', 'location_id', 'seq'])
      .execute();
    await db.schema
      .createIndex('inventory_movements_reason')
      .on('inventory_movements')
      .columns(['reason', 'recorded_at'])
      .execute();

    await db.schema
      .createTable('inventory_reservations')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('sku', 'text', (c) => c.notNull())
      .addColumn('location_id', 'text', (c) => c.notNull())
      .addColumn('quantity', int64, (c) => c.notNull())
      .addColumn('channel', 'text', (c) => c.notNull())
      .addColumn('market_code', 'text')
      .addColumn('reference_type', 'text')
      .addColumn('reference_id', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('status_reason', 'text')
      .addColumn('expires_at', int64)
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('created_at', int64, (c) => c.notNull())
      .addColumn('updated_at', int64, (c) => c.notNull())
      .execute();
    // The expiry sweep reads only active reservations with an expiry, oldest first.
    await db.schema
      .createIndex('inventory_reservations_expiry')
      .on('inventory_reservations')
      .columns(['status', 'expires_at'])
      .execute();
    await db.schema
      .createIndex('inventory_reservations_item')
      .on('inventory_reservations')
      .columns(['sku', 'location_id', 'status'])
      .execute();

    await db.schema
      .createTable('inventory_transfers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('sku', 'text', (c) => c.notNull())
      .addColumn('from_location', 'text', (c) => c.notNull())
      .addColumn('to_location', 'text', (c) => c.notNull())
      .addColumn('quantity', int64, (c) => c.notNull())
      .addColumn('received_quantity', int64)
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('reference', 'text')
      .addColumn('shipped_at', int64, (c) => c.notNull())
      .addColumn('received_at', int64)
      .execute();
    await db.schema
      .createIndex('inventory_transfers_status')
      .on('inventory_transfers')
      .columns(['status', 'to_location'])
      .execute();

    // Sales a POS reported, by the POS's own sale id: replays of an offline batch apply once.
    await db.schema
      .createTable('inventory_pos_sales')
      .addColumn('location_id', 'text', (c) => c.notNull())
      .addColumn('sale_id', 'text', (c) => c.notNull())
      .addColumn('occurred_at', int64, (c) => c.notNull())
      .addColumn('received_at', int64, (c) => c.notNull())
      .addColumn('lines', 'integer', (c) => c.notNull())
      // applied, or rejected with its reason (kept: a corrected replay may apply it later).
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('doc', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('inventory_pos_sales_pk', ['location_id', 'sale_id'])
      .execute();

    // Per market and channel: which locations serve it and what each keeps back.
    await db.schema
      .createTable('inventory_channel_policies')
      .addColumn('market_code', 'text', (c) => c.notNull())
      .addColumn('channel', 'text', (c) => c.notNull())
      .addColumn('doc', 'text', (c) => c.notNull())
      .addColumn('updated_at', int64, (c) => c.notNull())
      .addPrimaryKeyConstraint('inventory_channel_policies_pk', ['market_code', 'channel'])
      .execute();
  },

  '0007_webhooks': async (db, dialect) => {
    await db.schema
      .createTable('webhook_subscriptions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('event_types', 'text')
      .addColumn('subject_filter', 'text')
      .addColumn('markets', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('status_reason', 'text')
      .addColumn('schema_versions', 'text')
      .addColumn('format', 'text', (c) => c.notNull())
      // Sealed by the webhooks module (AES-256-GCM, `sealed:v1:...`, D30); hubs from before
      // sealing wrote it in clear, and the first start since seals such rows.
      .addColumn('secret', 'text', (c) => c.notNull())
      .addColumn('previous_secret', 'text')
      .addColumn('previous_secret_expires_at', int64)
      // Dispatch lease: which dispatcher sends this subscription's deliveries, until when.
      .addColumn('lease_owner', 'text')
      .addColumn('lease_until', int64)
      .addColumn('created_at', int64, (c) => c.notNull())
      .addColumn('updated_at', int64, (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('webhook_deliveries')
      // seq orders one subscription's deliveries (fan-out order), whichever process inserted.
      .addColumn('seq', serialKey(dialect), (c) =>
        dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
      )
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('subscription_id', 'text', (c) =>
        c.notNull().references('webhook_subscriptions.id').onDelete('cascade'),
      )
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('event_type', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('envelope', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('retry_from', 'integer', (c) => c.notNull())
      .addColumn('next_attempt_at', int64, (c) => c.notNull())
      .addColumn('last_status_code', 'integer')
      .addColumn('last_error', 'text')
      .addColumn('created_at', int64, (c) => c.notNull())
      .addColumn('updated_at', int64, (c) => c.notNull())
      .addUniqueConstraint('webhook_deliveries_event', ['subscription_id', 'event_id'])
      .execute();
    // The dispatcher only reads the head (oldest open delivery) of each subscription's queue.
    await db.schema
      .createIndex('webhook_deliveries_open')
      .on('webhook_deliveries')
      .columns(['subscription_id', 'seq'])
      .where(sql.ref('status'), 'in', sql`('pending', 'failed')`)
      .execute();
    await db.schema
      .createIndex('webhook_deliveries_log')
      .on('webhook_deliveries')
      .columns(['subscription_id', 'status', 'seq'])
      .execute();
    await db.schema
      .createIndex('webhook_deliveries_finished')
      .on('webhook_deliveries')
      .columns(['status', 'updated_at'])
      .execute();

    await db.schema
      .createTable('webhook_attempts')
      .addColumn('delivery_id', 'text', (c) =>
        c.notNull().references('webhook_deliveries.id').onDelete('cascade'),
      )
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('at', int64, (c) => c.notNull())
      .addColumn('duration_ms', 'integer', (c) => c.notNull())
      .addColumn('status_code', 'integer')
      .addColumn('error', 'text')
      .addColumn('response_body', 'text')
      .addPrimaryKeyConstraint('webhook_attempts_pk', ['delivery_id', 'attempt'])
      .execute();
  },

  '0008_dedup': async (db) => {
    // One row per business fact a rule has seen (rule + hash of its key values): the first
    // event, every source it came from, and until when a repeat counts as a duplicate.
    await db.schema
      .createTable('dedup_keys')
      .addColumn('rule', 'text', (c) => c.notNull())
      .addColumn('key_hash', 'text', (c) => c.notNull())
      .addColumn('first_event_id', 'text', (c) => c.notNull())
      .addColumn('first_source', 'text', (c) => c.notNull())
      .addColumn('first_seen_at', int64, (c) => c.notNull())
      .addColumn('expires_at', int64, (c) => c.notNull())
      .addColumn('duplicates', 'integer', (c) => c.notNull())
      .addColumn('sources', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('dedup_keys_pk', ['rule', 'key_hash'])
      .execute();
    await db.schema
      .createIndex('dedup_keys_expiry')
      .on('dedup_keys')
      .column('expires_at')
      .execute();
    // Every decision that was not a plain accept, for people: what, why, which first event.
    await db.schema
      .createTable('dedup_log')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('at', int64, (c) => c.notNull())
      .addColumn('rule', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('event_type', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('first_event_id', 'text')
      .addColumn('key_values', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('dedup_log_rule').on('dedup_log').columns(['rule', 'at']).execute();
    // Flagged events wait here for a person: released (then published) or rejected.
    await db.schema
      .createTable('dedup_review')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('at', int64, (c) => c.notNull())
      .addColumn('rule', 'text', (c) => c.notNull())
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('first_event_id', 'text', (c) => c.notNull())
      .addColumn('envelope', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('decided_at', int64)
      .addColumn('decided_by', 'text')
      .addColumn('note', 'text')
      .execute();
    await db.schema
      .createIndex('dedup_review_status')
      .on('dedup_review')
      .columns(['status', 'at'])
      .execute();
  },

  '0009_tokenization': async (db, dialect) => {
    // Key versions: the keys themselves are derived from the master key, which never comes from
    // the database; each row keeps the master's key check value so a wrong master is refused.
    await db.schema
      .createTable('token_keys')
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('is_current', 'integer', (c) => c.notNull())
      .addColumn('key_check', 'text', (c) => c.notNull())
      .addColumn('created_at', int64, (c) => c.notNull())
      .execute();

    // One row per issued token. Vault tokens: the value encrypted (AES-256-GCM) and the customer
    // it belongs to; convergent tokens: the value encrypted too (shared by every customer with
    // that value, so subject is null and token_subjects links them); FF1 tokens: no ciphertext,
    // the row records that the hub issued the token.
    await db.schema
      .createTable('token_vault')
      .addColumn('token', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('field_class', 'text', (c) => c.notNull())
      .addColumn('key_version', 'integer', (c) => c.notNull())
      .addColumn('ciphertext', dialect === 'postgres' ? 'bytea' : 'blob')
      .addColumn('subject', 'text')
      .addColumn('created_at', int64, (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('token_vault_subject')
      .on('token_vault')
      .column('subject')
      .where(sql.ref('subject'), 'is not', null)
      .execute();
    await db.schema
      .createIndex('token_vault_key_version')
      .on('token_vault')
      .columns(['key_version', 'token'])
      .execute();

    await db.schema
      .createTable('token_subjects')
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('token', 'text', (c) => c.notNull())
      .addColumn('created_at', int64, (c) => c.notNull())
      .addPrimaryKeyConstraint('token_subjects_pk', ['subject', 'token'])
      .execute();

    // Tokens of erased customers: detokenization refuses them (TOKEN_ERASED).
    await db.schema
      .createTable('token_tombstones')
      .addColumn('token', 'text', (c) => c.primaryKey())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('erased_at', int64, (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('token_erasures')
      .addColumn('seq', serialKey(dialect), (c) =>
        dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
      )
      .addColumn('subject', 'text', (c) => c.notNull().unique())
      .addColumn('erased_at', int64, (c) => c.notNull())
      .addColumn('token_count', 'integer', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('token_audit')
      .addColumn('seq', serialKey(dialect), (c) =>
        dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
      )
      .addColumn('at', int64, (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('token', 'text')
      .addColumn('subject', 'text')
      .addColumn('field_class', 'text')
      .addColumn('reason', 'text')
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('code', 'text')
      .addColumn('count', 'integer')
      .addColumn('request_id', 'text')
      .execute();
    await db.schema.createIndex('token_audit_at').on('token_audit').column('at').execute();
    await db.schema
      .createIndex('token_audit_token')
      .on('token_audit')
      .column('token')
      .where(sql.ref('token'), 'is not', null)
      .execute();
    await db.schema
      .createIndex('token_audit_subject')
      .on('token_audit')
      .column('subject')
      .where(sql.ref('subject'), 'is not', null)
      .execute();
    // Append-only: the database itself refuses to change or remove an audit row.
    if (dialect === 'postgres') {
      await sql`create function token_audit_append_only() returns trigger language plpgsql as $$
        begin raise exception 'token_audit is append-only'; end $$`.execute(db);
      await sql`create trigger token_audit_append_only before update or delete or truncate
        on token_audit for each statement execute function token_audit_append_only()`.execute(db);
    } else {
      await sql`create trigger token_audit_no_update before update on token_audit
        begin select raise(abort, 'token_audit is append-only'); end`.execute(db);
      await sql`create trigger token_audit_no_delete before delete on token_audit
        begin select raise(abort, 'token_audit is append-only'); end`.execute(db);
    }
  },
  '0010_outbox_holds_pending_only': async (db) => {
    // The relay now deletes what it has handed to the bus (D29): the outbox holds only events
    // still on their way, so its scan needs no partial index and nothing is updated per event.
    await sql`delete from outbox where published_at is not null`.execute(db);
    await db.schema.dropIndex('outbox_unpublished').ifExists().execute();
    await db.schema.dropIndex('outbox_published_at').ifExists().execute();
    // Stream retention finds its cut by seq (rows arrive in published_at order), so the
    // stream's inserts no longer maintain an index for a once-a-minute sweep.
    await db.schema.dropIndex('bus_messages_published_at').ifExists().execute();
  },
  '0011_guarded_stock_writes': async (db, dialect) => {
    // Writes made without a lock (D31) are guarded by the version of the row they read. SQLite
    // has one writer and checks the counts in the hub; the rest is for PostgreSQL.
    if (dialect !== 'postgres') return;
    // Every change of a stock row moves its version, even one made by hand in SQL: a write
    // based on the old row then finds its version gone instead of overwriting the change.
    await sql`create function inventory_levels_next_version() returns trigger
      language plpgsql as $$
      begin
        if new.version = old.version then new.version := old.version + 1; end if;
        return new;
      end $$`.execute(db);
    await sql`create trigger inventory_levels_next_version before update on inventory_levels
      for each row execute function inventory_levels_next_version()`.execute(db);
    // A statement whose data-modifying parts must each touch every row they name calls this
    // on their counts. A shortfall means a row changed since it was read; a serialization
    // failure (40001) undoes the whole statement and tells the caller to read again.
    await sql`create function nexus_expect_rows(actual bigint, expected bigint) returns bigint
      language plpgsql as $$
      begin
        if actual <> expected then
          raise exception 'a row changed since it was read: % of % rows matched', actual, expected
            using errcode = '40001';
        end if;
        return actual;
      end $$`.execute(db);
  },
  '0012_stock_rows_leave_room': async (db, dialect) => {
    // Stock rows are the hub's most updated rows: every reservation, release, commit and sale
    // writes one. PostgreSQL can only update a row in place (a HOT update: no new index
    // entries) when its page has room for the new version; full pages (the default fill)
    // sent more than half of the benchmark's updates through both indexes (D32). Applies to
    // pages written from now on; `VACUUM FULL inventory_levels` repacks an existing table.
    if (dialect !== 'postgres') return;
    await sql`alter table inventory_levels set (fillfactor = 50)`.execute(db);
  },
  '0014_pos_sale_log': async (db, dialect) => {
    // The POS sale log (GET /v1/inventory/locations/{id}/pos-sales) shows each sale's terminal,
    // whether it took stock below zero, and the movements it produced. The service records them
    // when it settles a sale; rows settled before are filled in here from the doc and the ledger.
    for (const column of ['terminal', 'flagged', 'movement_ids']) {
      // SQLite adds one column per ALTER TABLE.
      await db.schema.alterTable('inventory_pos_sales').addColumn(column, 'text').execute();
    }
    if (dialect === 'postgres') {
      await sql`update inventory_pos_sales set terminal = doc::jsonb ->> 'terminal'`.execute(db);
    } else {
      await sql`update inventory_pos_sales set terminal = json_extract(doc, '$.terminal')`.execute(
        db,
      );
    }
    // A POS sale's movements carry reference 'pos:<sale id>' (channel pos, reason sale or return).
    const produced = (ids: RawBuilder<unknown>) => sql`(select location_id,
        substr(reference, 5) as sale_id, max(flagged) as flagged, ${ids} as ids
      from inventory_movements where channel = 'pos' and reason in ('sale', 'return')
        and substr(reference, 1, 4) = 'pos:'
      group by location_id, substr(reference, 5)) as m`;
    if (dialect === 'postgres') {
      await sql`update inventory_pos_sales as s set flagged = m.flagged, movement_ids = m.ids
        from ${produced(sql`json_agg(id order by seq)::text`)}
        where s.status = 'applied' and s.location_id = m.location_id
          and s.sale_id = m.sale_id`.execute(db);
    } else {
      await sql`update inventory_pos_sales set flagged = m.flagged, movement_ids = m.ids
        from ${produced(sql`json_group_array(id order by seq)`)}
        where inventory_pos_sales.status = 'applied'
          and inventory_pos_sales.location_id = m.location_id
          and inventory_pos_sales.sale_id = m.sale_id`.execute(db);
    }
    // The log lists one location's sales newest first, a page at a time (a store posts
    // thousands a day): without this each page would sort all of the location's sales.
    await db.schema
      .createIndex('inventory_pos_sales_time')
      .on('inventory_pos_sales')
      .columns(['location_id', 'occurred_at', 'sale_id'])
      .execute();
  },
  '0015_webhook_availability': async (db) => {
    // A subscription may ask for availability as one channel sees it (JSON: market, channel,
    // optional SKUs and locations). Its deliveries are shaped when they are matched, and the
    // body is kept so that every attempt and a redelivery send the same bytes.
    await db.schema.alterTable('webhook_subscriptions').addColumn('availability', 'text').execute();
    await db.schema.alterTable('webhook_deliveries').addColumn('payload', 'text').execute();
  },
  '0016_token_erasure_epochs': async (db) => {
    // A convergent or FF1 token that was erased is never issued again: the value then gets the
    // token of the next erasure epoch, under a key of its own (D26). An FF1 row records its
    // epoch, which names the key that reads it back; rows written before are epoch 0.
    await db.schema
      .alterTable('token_vault')
      .addColumn('epoch', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
  },
  '0017_outbox_without_event_id_index': async (db, dialect) => {
    // The outbox is a queue of events on their way (D29): each row is written once and read
    // once by seq. Its event ids are the hub's own (fresh UUIDs, or claimed in the inbox on
    // ingest), and the stream and JetStream deduplicate by id where events land. The unique
    // index cost every event an index insert on the hot write path (D37).
    if (dialect === 'postgres') {
      await sql`alter table outbox drop constraint if exists outbox_event_id_key`.execute(db);
      return;
    }
    // SQLite cannot drop a column's UNIQUE: the table is rebuilt (it is empty but for events
    // still on their way, which are copied in seq order).
    await sql`create table outbox_next (seq integer primary key autoincrement,
      event_id text not null, subject text not null, partition_key text not null,
      envelope text not null, created_at integer not null, published_at integer)`.execute(db);
    await sql`insert into outbox_next select seq, event_id, subject, partition_key, envelope,
      created_at, published_at from outbox order by seq`.execute(db);
    // Seqs go on from where they were, not from the highest row left.
    await sql`delete from sqlite_sequence where name = 'outbox_next'`.execute(db);
    await sql`insert into sqlite_sequence (name, seq)
      select 'outbox_next', seq from sqlite_sequence where name = 'outbox'`.execute(db);
    await sql`drop table outbox`.execute(db);
    await sql`alter table outbox_next rename to outbox`.execute(db);
  },
};

function migratorOf(storage: Storage): Migrator {
  const dialect = storage.dialect;
  // Migrations see the schema as untyped: they are what creates the types' tables.
  const db = storage.db as unknown as Kysely<unknown>;
  const migrations: Record<string, Migration> = Object.fromEntries(
    Object.entries(steps).map(([name, step]) => [
      name,
      { up: (d: Kysely<unknown>) => step(d, dialect) },
    ]),
  );
  return new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
  });
}

/** Runs every pending migration; safe to call from several processes at once (kysely locks). */
export async function migrateToLatest(storage: Storage): Promise<MigrationResultSet> {
  return migratorOf(storage).migrateToLatest();
}

/** Runs pending migrations up to and including `name`: tests of an upgrade from an older schema. */
export async function migrateTo(storage: Storage, name: string): Promise<MigrationResultSet> {
  return migratorOf(storage).migrateTo(name);
}

export const MIGRATION_NAMES = Object.keys(steps);
