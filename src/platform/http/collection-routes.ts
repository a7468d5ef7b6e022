import { Type, type TObject, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { NexusError } from '../../model/errors.js';
import type { Context } from '../context.js';
import { createAjv } from '../validation.js';
import type { Page, Resource, UpsertResult } from '../resources.js';
import './types.js';

/** What a reference-data module offers over HTTP; the same shape for markets, locations, products. */
export interface CollectionService<T> {
  list(ctx: Context, query: ListParams): Promise<Page<Resource<T>>>;
  get(ctx: Context, id: string): Promise<Resource<T>>;
  create(ctx: Context, item: T): Promise<Resource<T>>;
  put(ctx: Context, item: T): Promise<{ resource: Resource<T>; result: UpsertResult['result'] }>;
  bulkUpsert(ctx: Context, items: T[]): Promise<UpsertResult[]>;
  remove(ctx: Context, id: string): Promise<void>;
}

export interface ListParams {
  limit: number;
  cursor?: string;
  filters: Record<string, string | undefined>;
}

export interface CollectionRoutes<T> {
  /** e.g. '/v1/markets' */
  path: string;
  /** Name of the path parameter and of the id field in the body: 'code' or 'id'. */
  idField: string;
  tag: string;
  item: TSchema;
  resource: TSchema;
  /** Extra query parameters for filtering lists; all strings. */
  filters: TObject;
  scopes: { read: string; write: string };
  service: CollectionService<T>;
  maxBulkItems: number;
  /** Bulk bodies may be larger than the default body limit. */
  bulkBodyLimit: number;
}

const Problem = Type.Ref('Problem');

export function registerCollectionRoutes<T extends object>(
  app: FastifyInstance,
  spec: CollectionRoutes<T>,
): void {
  const { path, idField, tag, service, scopes } = spec;
  const IdParams = Type.Object({ [idField]: Type.String({ minLength: 1, maxLength: 64 }) });
  const ListQuery = Type.Composite([
    Type.Object({
      limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
      cursor: Type.Optional(Type.String({ maxLength: 200 })),
    }),
    spec.filters,
  ]);
  const PageSchema = Type.Object({
    items: Type.Array(spec.resource),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
  });
  const BulkBody = Type.Object(
    { items: Type.Array(spec.item, { minItems: 1, maxItems: spec.maxBulkItems }) },
    { additionalProperties: false },
  );
  const BulkResult = Type.Object({
    created: Type.Integer(),
    updated: Type.Integer(),
    unchanged: Type.Integer(),
    items: Type.Array(
      Type.Object({
        [idField]: Type.String(),
        version: Type.Integer({ description: '0 when unchanged' }),
        result: Type.Union([
          Type.Literal('created'),
          Type.Literal('updated'),
          Type.Literal('unchanged'),
        ]),
      }),
    ),
  });
  const bulkEnvelope = createAjv().compile(
    Type.Object(
      { items: Type.Array(Type.Object({}), { minItems: 1, maxItems: spec.maxBulkItems }) },
      { additionalProperties: false },
    ),
  );
  const errors = { 400: Problem, 401: Problem, 403: Problem, 422: Problem };
  const idOf = (params: unknown) => (params as Record<string, string>)[idField]!;

  app.get(path, {
    config: { scope: scopes.read },
    schema: {
      tags: [tag],
      summary: `List ${tag}`,
      querystring: ListQuery,
      response: { 200: PageSchema, ...errors },
    },
    handler: async (request) => {
      const { limit, cursor, ...filters } = request.query as {
        limit: number;
        cursor?: string;
      } & Record<string, string | undefined>;
      return service.list(request.ctx, {
        limit,
        filters,
        ...(cursor === undefined ? {} : { cursor }),
      });
    },
  });

  app.post(path, {
    config: { scope: scopes.write },
    schema: {
      tags: [tag],
      summary: `Create one of ${tag}`,
      body: spec.item,
      response: { 201: spec.resource, 409: Problem, ...errors },
    },
    handler: async (request, reply) => {
      const resource = await service.create(request.ctx, request.body as T);
      const id = (resource as Record<string, unknown>)[idField] as string;
      return reply
        .code(201)
        .header('location', `${path}/${encodeURIComponent(id)}`)
        .send(resource);
    },
  });

  app.post(`${path}/bulk`, {
    config: { scope: scopes.write },
    bodyLimit: spec.bulkBodyLimit,
    // The service validates every item against the canonical schema (with /items/<i> pointers)
    // for all callers; here only the envelope is checked, so a feed is not validated twice.
    // The full schema stays in `schema.body` for the OpenAPI document.
    validatorCompiler: ({ httpPart }) => (httpPart === 'body' ? bulkEnvelope : () => true),
    schema: {
      tags: [tag],
      summary: `Create or replace up to ${spec.maxBulkItems} ${tag} in one all-or-nothing call`,
      body: BulkBody,
      response: { 200: BulkResult, ...errors },
    },
    handler: async (request) => {
      const { items } = request.body as { items: T[] };
      const seen = new Map<string, number>();
      items.forEach((item, index) => {
        const id = (item as Record<string, unknown>)[idField] as string;
        const first = seen.get(id);
        if (first !== undefined) {
          throw new NexusError('VALIDATION_FAILED', `'${id}' appears twice in one bulk call`, {
            errors: [
              {
                pointer: `/items/${index}/${idField}`,
                detail: `duplicate of /items/${first}/${idField}`,
              },
            ],
          });
        }
        seen.set(id, index);
      });
      const results = await service.bulkUpsert(request.ctx, items);
      const count = (r: UpsertResult['result']) => results.filter((x) => x.result === r).length;
      return {
        created: count('created'),
        updated: count('updated'),
        unchanged: count('unchanged'),
        items: results.map((r) => ({ [idField]: r.id, version: r.version, result: r.result })),
      };
    },
  });

  app.get(`${path}/:${idField}`, {
    config: { scope: scopes.read },
    schema: {
      tags: [tag],
      summary: `Get one of ${tag}`,
      params: IdParams,
      response: { 200: spec.resource, 404: Problem },
    },
    handler: async (request) => service.get(request.ctx, idOf(request.params)),
  });

  app.put(`${path}/:${idField}`, {
    config: { scope: scopes.write },
    schema: {
      tags: [tag],
      summary: `Create or replace one of ${tag}`,
      params: IdParams,
      body: spec.item,
      response: { 200: spec.resource, 201: spec.resource, ...errors },
    },
    handler: async (request, reply) => {
      const id = idOf(request.params);
      const item = request.body as T;
      if ((item as Record<string, unknown>)[idField] !== id) {
        throw new NexusError('VALIDATION_FAILED', `${idField} in the body differs from the path`, {
          errors: [{ pointer: `/${idField}`, detail: `must equal '${id}' from the path` }],
        });
      }
      const { resource, result } = await service.put(request.ctx, item);
      return reply.code(result === 'created' ? 201 : 200).send(resource);
    },
  });

  app.delete(`${path}/:${idField}`, {
    config: { scope: scopes.write },
    schema: {
      tags: [tag],
      summary: `Delete one of ${tag}`,
      params: IdParams,
      response: { 204: Type.Null(), 404: Problem, 409: Problem },
    },
    handler: async (request, reply) => {
      await service.remove(request.ctx, idOf(request.params));
      return reply.code(204).send();
    },
  });
}
