import type { Generated } from 'kysely';
import type { Executor } from '../../platform/db/storage.js';

// Type aliases, not interfaces: kysely's withTables wants indexable record types.
type SchemaRow = {
  id: number;
  schema_type: string;
  schema: string;
  references: string;
  fingerprint: string;
  created_at: number;
};
type VersionRow = {
  subject: string;
  version: number;
  schema_id: number;
  deleted: number;
  created_at: number;
};
type SettingRow = { subject: string; kind: 'compatibility' | 'mode'; value: string };
type RegistryTables = {
  registry_schemas: Omit<SchemaRow, 'id'> & { id: Generated<number> };
  registry_versions: VersionRow;
  registry_settings: SettingRow;
};

export type { SchemaRow };

const tables = (db: Executor) => db.withTables<RegistryTables>();

export interface SubjectVersion {
  subject: string;
  version: number;
  schemaId: number;
  deleted: boolean;
  schemaType: string;
  schema: string;
  references: string;
}

export function findSchemaByFingerprint(
  db: Executor,
  fingerprint: string,
): Promise<SchemaRow | undefined> {
  return tables(db)
    .selectFrom('registry_schemas')
    .selectAll()
    .where('fingerprint', '=', fingerprint)
    .executeTakeFirst();
}

/** Inserts the schema unless its fingerprint exists; either way answers its id. */
export async function ensureSchema(
  db: Executor,
  row: { schema_type: string; schema: string; references: string; fingerprint: string },
): Promise<number> {
  await tables(db)
    .insertInto('registry_schemas')
    .values({ ...row, created_at: Date.now() })
    .onConflict((oc) => oc.column('fingerprint').doNothing())
    .execute();
  const found = await findSchemaByFingerprint(db, row.fingerprint);
  if (!found) throw new Error(`schema ${row.fingerprint} vanished after insert`);
  return found.id;
}

export function getSchemaById(db: Executor, id: number): Promise<SchemaRow | undefined> {
  return tables(db)
    .selectFrom('registry_schemas')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst();
}

export async function listSubjects(db: Executor, includeDeleted: boolean): Promise<string[]> {
  let query = tables(db)
    .selectFrom('registry_versions')
    .select('subject')
    .distinct()
    .orderBy('subject');
  if (!includeDeleted) query = query.where('deleted', '=', 0);
  return (await query.execute()).map((r) => r.subject);
}

export async function listVersions(
  db: Executor,
  subject: string,
  includeDeleted: boolean,
): Promise<SubjectVersion[]> {
  let query = tables(db)
    .selectFrom('registry_versions as v')
    .innerJoin('registry_schemas as s', 's.id', 'v.schema_id')
    .select([
      'v.subject as subject',
      'v.version as version',
      'v.schema_id as schemaId',
      'v.deleted as deleted',
      's.schema_type as schemaType',
      's.schema as schema',
      's.references as references',
    ])
    .where('v.subject', '=', subject)
    .orderBy('v.version');
  if (!includeDeleted) query = query.where('v.deleted', '=', 0);
  return (await query.execute()).map((row) => ({ ...row, deleted: row.deleted === 1 }));
}

/**
 * One version of a subject (`latest`: the highest), without reading the others: the lookup on
 * every ingested event. Undefined when the subject has no such version.
 */
export async function findVersion(
  db: Executor,
  subject: string,
  version: number | 'latest',
  includeDeleted: boolean,
): Promise<SubjectVersion | undefined> {
  let query = tables(db)
    .selectFrom('registry_versions as v')
    .innerJoin('registry_schemas as s', 's.id', 'v.schema_id')
    .select([
      'v.subject as subject',
      'v.version as version',
      'v.schema_id as schemaId',
      'v.deleted as deleted',
      's.schema_type as schemaType',
      's.schema as schema',
      's.references as references',
    ])
    .where('v.subject', '=', subject);
  if (!includeDeleted) query = query.where('v.deleted', '=', 0);
  query =
    version === 'latest'
      ? query.orderBy('v.version', 'desc').limit(1)
      : query.where('v.version', '=', version);
  const row = await query.executeTakeFirst();
  return row && { ...row, deleted: row.deleted === 1 };
}

export function versionsOfSchema(
  db: Executor,
  schemaId: number,
): Promise<Array<{ subject: string; version: number }>> {
  return tables(db)
    .selectFrom('registry_versions')
    .select(['subject', 'version'])
    .where('schema_id', '=', schemaId)
    .where('deleted', '=', 0)
    .orderBy('subject')
    .orderBy('version')
    .execute();
}

/** Highest version number ever used in the subject, deleted ones included (numbers are never reused). */
export async function maxVersion(db: Executor, subject: string): Promise<number> {
  const row = await tables(db)
    .selectFrom('registry_versions')
    .select((eb) => eb.fn.max('version').as('max'))
    .where('subject', '=', subject)
    .executeTakeFirst();
  return Number(row?.max ?? 0);
}

export async function insertVersion(
  db: Executor,
  subject: string,
  version: number,
  schemaId: number,
): Promise<void> {
  await tables(db)
    .insertInto('registry_versions')
    .values({ subject, version, schema_id: schemaId, deleted: 0, created_at: Date.now() })
    .execute();
}

export async function markDeleted(
  db: Executor,
  subject: string,
  versions: readonly number[],
): Promise<void> {
  if (versions.length === 0) return;
  await tables(db)
    .updateTable('registry_versions')
    .set({ deleted: 1 })
    .where('subject', '=', subject)
    .where('version', 'in', versions)
    .execute();
}

export async function deletePermanently(
  db: Executor,
  subject: string,
  versions: readonly number[],
): Promise<void> {
  if (versions.length === 0) return;
  await tables(db)
    .deleteFrom('registry_versions')
    .where('subject', '=', subject)
    .where('version', 'in', versions)
    .execute();
}

export async function getSetting(
  db: Executor,
  subject: string,
  kind: SettingRow['kind'],
): Promise<string | undefined> {
  const row = await tables(db)
    .selectFrom('registry_settings')
    .select('value')
    .where('subject', '=', subject)
    .where('kind', '=', kind)
    .executeTakeFirst();
  return row?.value;
}

export async function putSetting(
  db: Executor,
  subject: string,
  kind: SettingRow['kind'],
  value: string,
): Promise<void> {
  await tables(db)
    .insertInto('registry_settings')
    .values({ subject, kind, value })
    .onConflict((oc) => oc.columns(['subject', 'kind']).doUpdateSet({ value }))
    .execute();
}

export async function deleteSetting(
  db: Executor,
  subject: string,
  kind: SettingRow['kind'],
): Promise<boolean> {
  const result = await tables(db)
    .deleteFrom('registry_settings')
    .where('subject', '=', subject)
    .where('kind', '=', kind)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
