import type { TSchema } from '@sinclair/typebox';
import { NexusError, notFound, type FieldError } from '../model/errors.js';
import type { EventType } from '../model/events.js';
import {
  canonicalJson,
  deleteDocument,
  getDocuments,
  insertDocument,
  listDocuments,
  upsertDocuments,
  type DocumentRow,
  type WriteResult,
  type ListQuery,
} from './db/documents.js';
import type { Executor } from './db/storage.js';
import type { UnitOfWork } from './events/unit-of-work.js';
import { SchemaValidator } from './validation.js';

export interface ResourceMeta {
  version: number;
  createdAt: string;
  updatedAt: string;
}
export type Resource<T> = T & ResourceMeta;

export type WriteOutcome = 'created' | 'updated' | 'unchanged';

export interface UpsertResult {
  id: string;
  version: number;
  result: WriteOutcome;
}

export interface Page<T> {
  items: T[];
  /** Opaque; pass as `cursor` to get the next page. Null on the last page. */
  nextCursor: string | null;
}

/** How one kind of reference data is stored and announced. */
export interface CollectionSpec<T> {
  table: string;
  /** The canonical schema every stored document must match. */
  schema: TSchema;
  /** For messages and event subjects: 'market' gives subject 'market/DE'. */
  kind: string;
  /** The field that holds the id in the document and in the deleted event ('code', 'id'). */
  idField: string;
  idOf(item: T): string;
  columns(item: T): Record<string, string | number | null>;
  marketOf(item: T): string | undefined;
  events: { created: EventType; updated: EventType; deleted: EventType };
}

export const encodeCursor = (id: string): string => Buffer.from(id, 'utf8').toString('base64url');

/**
 * One page from `limit + 1` rows read after the cursor: the extra row only says there is more.
 * `keyOf` is the value the next page starts after (an id, a sequence number).
 */
export function pageOf<R, T>(
  rows: readonly R[],
  limit: number,
  keyOf: (row: R) => string,
  shape: (row: R) => T,
): Page<T> {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map(shape),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null,
  };
}
export function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!id || encodeCursor(id) !== cursor) {
    throw new NexusError('VALIDATION_FAILED', 'cursor is not one this API handed out', {
      errors: [{ pointer: '/cursor', detail: 'invalid cursor', in: 'query' }],
    });
  }
  return id;
}

/**
 * Stores documents of one kind and emits created/updated/deleted events for every change,
 * inside the caller's unit of work (so state and events commit together).
 */
export class DocumentCollection<T extends object> {
  private readonly validator: SchemaValidator = new SchemaValidator();

  constructor(private readonly spec: CollectionSpec<T>) {}

  /**
   * Checks items against the canonical schema and fills in its defaults. Services call this
   * for every caller (API, CLI, other modules), so nothing unchecked reaches the store.
   * `bulk` prefixes pointers with /items/<index>.
   */
  validate(items: readonly T[], bulk: boolean): void {
    const errors: FieldError[] = [];
    items.forEach((item, index) => {
      try {
        this.validator.assert(
          this.spec.schema,
          item,
          'VALIDATION_FAILED',
          bulk ? `/items/${index}` : '',
        );
      } catch (error) {
        if (error instanceof NexusError) errors.push(...error.errors);
        else throw error;
      }
    });
    if (errors.length > 0) {
      throw new NexusError('VALIDATION_FAILED', `${errors[0]!.pointer} ${errors[0]!.detail}`, {
        errors,
      });
    }
  }

  toResource(row: DocumentRow): Resource<T> {
    return {
      ...(JSON.parse(row.doc) as T),
      version: row.version,
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString(),
    };
  }

  /** Creates or replaces each item; unchanged items keep their version and emit nothing. */
  async upsert(uow: UnitOfWork, items: readonly T[]): Promise<UpsertResult[]> {
    const byId = new Map(items.map((item) => [this.spec.idOf(item), item]));
    const written = await upsertDocuments(
      uow.trx,
      this.spec.table,
      items.map((item) => this.toWrite(item)),
      Date.now(),
    );
    const changed = new Map(written.map((w) => [w.id, w]));
    for (const w of written) this.announce(uow, byId.get(w.id)!, w);
    return items.map((item) => {
      const id = this.spec.idOf(item);
      const w = changed.get(id);
      return w
        ? { id, version: w.version, result: w.version === 1 ? 'created' : 'updated' }
        : { id, version: 0, result: 'unchanged' };
    });
  }

  /** Creates or replaces one item; answers the stored resource either way. */
  async put(uow: UnitOfWork, item: T): Promise<{ resource: Resource<T>; result: WriteOutcome }> {
    const [written] = await upsertDocuments(
      uow.trx,
      this.spec.table,
      [this.toWrite(item)],
      Date.now(),
    );
    if (!written)
      return { resource: await this.get(uow.trx, this.spec.idOf(item)), result: 'unchanged' };
    return {
      resource: this.announce(uow, item, written),
      result: written.version === 1 ? 'created' : 'updated',
    };
  }

  /** Creates one item; CONFLICT when its id exists. */
  async create(uow: UnitOfWork, item: T): Promise<Resource<T>> {
    const written = await insertDocument(uow.trx, this.spec.table, this.toWrite(item), Date.now());
    if (!written) {
      throw new NexusError(
        'CONFLICT',
        `${this.spec.kind} '${this.spec.idOf(item)}' already exists`,
        {
          errors: [
            { pointer: `/${this.spec.idField}`, detail: 'already exists; use PUT to replace it' },
          ],
        },
      );
    }
    return this.announce(uow, item, written);
  }

  async remove(uow: UnitOfWork, id: string): Promise<void> {
    const version = await deleteDocument(uow.trx, this.spec.table, id);
    if (version === null) throw notFound(this.spec.kind, id);
    uow.emit({
      type: this.spec.events.deleted,
      subject: `${this.spec.kind}/${id}`,
      data: { [this.spec.idField]: id, version },
    });
  }

  async get(db: Executor, id: string): Promise<Resource<T>> {
    const [row] = await getDocuments(db, this.spec.table, [id]);
    if (!row) throw notFound(this.spec.kind, id);
    return this.toResource(row);
  }

  async getMany(db: Executor, ids: readonly string[]): Promise<Map<string, Resource<T>>> {
    const rows = await getDocuments(db, this.spec.table, ids);
    return new Map(rows.map((row) => [row.id, this.toResource(row)]));
  }

  /** Ids among `ids` that do not exist. */
  async missing(db: Executor, ids: readonly string[]): Promise<string[]> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return [];
    const found = new Set((await getDocuments(db, this.spec.table, unique)).map((r) => r.id));
    return unique.filter((id) => !found.has(id));
  }

  async list(
    db: Executor,
    query: Omit<ListQuery, 'after'> & { cursor?: string },
  ): Promise<Page<Resource<T>>> {
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const { rows, more } = await listDocuments(db, this.spec.table, {
      where: query.where,
      limit: query.limit,
      ...(after === undefined ? {} : { after }),
    });
    const last = rows[rows.length - 1];
    return {
      items: rows.map((r) => this.toResource(r)),
      nextCursor: more && last ? encodeCursor(last.id) : null,
    };
  }

  private toWrite(item: T) {
    return { id: this.spec.idOf(item), doc: canonicalJson(item), columns: this.spec.columns(item) };
  }

  private announce(uow: UnitOfWork, item: T, written: WriteResult): Resource<T> {
    const resource: Resource<T> = {
      ...item,
      version: written.version,
      createdAt: new Date(written.created_at).toISOString(),
      updatedAt: new Date(written.updated_at).toISOString(),
    };
    const market = this.spec.marketOf(item);
    uow.emit({
      type: written.version === 1 ? this.spec.events.created : this.spec.events.updated,
      subject: `${this.spec.kind}/${written.id}`,
      ...(market === undefined ? {} : { market }),
      data: resource,
    });
    return resource;
  }
}
