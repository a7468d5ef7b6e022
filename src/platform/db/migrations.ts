import { Migrator, sql, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
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
};

/** Runs every pending migration; safe to call from several processes at once (kysely locks). */
export async function migrateToLatest(storage: Storage): Promise<MigrationResultSet> {
  const dialect = storage.dialect;
  // Migrations see the schema as untyped: they are what creates the types' tables.
  const db = storage.db as unknown as Kysely<unknown>;
  const migrations: Record<string, Migration> = Object.fromEntries(
    Object.entries(steps).map(([name, step]) => [
      name,
      { up: (d: Kysely<unknown>) => step(d, dialect) },
    ]),
  );
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
  });
  return migrator.migrateToLatest();
}

export const MIGRATION_NAMES = Object.keys(steps);
