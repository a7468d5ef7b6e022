import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isNexusError } from '../../model/errors.js';
import '../../platform/http/types.js';
import { RegistryError, registryErrors } from './errors.js';
import { parseVersion, type RegistryService, type SchemaInput } from './service.js';

const CONTENT_TYPES = [
  'application/vnd.schemaregistry.v1+json',
  'application/vnd.schemaregistry+json',
];
const READ = { scope: 'registry:read' };
const WRITE = { scope: 'registry:write' };

type Params = { subject?: string; version?: string; id?: string };
type Query = { deleted?: string; permanent?: string; verbose?: string; defaultToGlobal?: string };

const flag = (value: string | undefined) => value === 'true';

function schemaInput(body: unknown): SchemaInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw registryErrors.invalidSchema('the request body must be an object with a "schema" string');
  }
  const { schema, schemaType, references } = body as Record<string, unknown>;
  if (typeof schema !== 'string')
    throw registryErrors.invalidSchema('"schema" must be a string holding the schema');
  if (schemaType !== undefined && typeof schemaType !== 'string')
    throw registryErrors.invalidSchema('"schemaType" must be a string');
  if (references !== undefined) {
    const ok =
      Array.isArray(references) &&
      references.every(
        (r: unknown) =>
          typeof r === 'object' &&
          r !== null &&
          typeof (r as Record<string, unknown>).name === 'string' &&
          typeof (r as Record<string, unknown>).subject === 'string' &&
          Number.isInteger((r as Record<string, unknown>).version),
      );
    if (!ok)
      throw registryErrors.invalidSchema('"references" must be a list of {name, subject, version}');
  }
  return {
    schema,
    ...(schemaType === undefined ? {} : { schemaType }),
    ...(references === undefined ? {} : { references: references as SchemaInput['references'] }),
  };
}

function stringField(body: unknown, field: string): string {
  const value =
    body !== null && typeof body === 'object'
      ? (body as Record<string, unknown>)[field]
      : undefined;
  if (typeof value !== 'string')
    throw registryErrors.badRequest(`the request body must be {"${field}": "..."}`);
  return value;
}

function toRegistryError(error: unknown): RegistryError {
  if (error instanceof RegistryError) return error;
  if (isNexusError(error)) {
    switch (error.code) {
      case 'UNAUTHENTICATED':
        return registryErrors.unauthorized(error.message);
      case 'FORBIDDEN_SCOPE':
        return registryErrors.forbidden(error.message);
      case 'SERVICE_UNAVAILABLE':
        return registryErrors.unavailable(error.message);
      case 'MALFORMED_JSON':
      case 'UNSUPPORTED_MEDIA_TYPE':
      case 'VALIDATION_FAILED':
      case 'PAYLOAD_TOO_LARGE':
        return new RegistryError(error.status === 413 ? 413 : 400, error.status, error.message);
      default:
        return registryErrors.internal(error.message);
    }
  }
  const e = error as { statusCode?: number; code?: string; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new RegistryError(413, 413, e.message ?? 'body too large');
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    return registryErrors.badRequest(e.message ?? 'bad request');
  }
  return registryErrors.internal('internal error');
}

/**
 * The Confluent Schema Registry REST API (JSON Schema), under /registry. Own content types and
 * error shape ({error_code, message}); authentication is the hub's API key, sent as a Bearer
 * token or as the password of HTTP Basic auth (which Confluent clients speak).
 */
export function registryRoutes(
  app: FastifyInstance,
  service: RegistryService,
  dependencyFailure: () => Promise<Error | null>,
): void {
  void app.register(
    (registry, _options, done) => {
      registry.addContentTypeParser(
        CONTENT_TYPES,
        { parseAs: 'string' },
        registry.getDefaultJsonParser('error', 'error'),
      );
      registry.addHook('onSend', async (_request, reply, payload) => {
        if (String(reply.getHeader('content-type') ?? '').startsWith('application/json')) {
          reply.header('content-type', 'application/vnd.schemaregistry.v1+json');
        }
        return payload;
      });
      registry.setErrorHandler(async (error, request, reply) => {
        let mapped = toRegistryError(error);
        if (mapped.errorCode === 50001) {
          const down = await dependencyFailure();
          if (down) mapped = registryErrors.unavailable(down.message);
          else request.log.error({ err: error }, 'registry: unhandled error');
        }
        return send(reply, mapped);
      });
      registry.setNotFoundHandler(async (request, reply) =>
        send(
          reply,
          registryErrors.routeNotFound(`no route ${request.method} ${request.url.split('?')[0]}`),
        ),
      );

      const p = (request: FastifyRequest) => request.params as Params;
      const q = (request: FastifyRequest) => request.query as Query;
      const tags = ['schema registry'];

      registry.get(
        '/subjects',
        { config: READ, schema: { tags, summary: 'List subjects' } },
        async (r) => service.subjects(flag(q(r).deleted)),
      );
      registry.get(
        '/subjects/:subject/versions',
        { config: READ, schema: { tags, summary: 'List versions of a subject' } },
        async (r) => service.versions(p(r).subject!, flag(q(r).deleted)),
      );
      registry.post(
        '/subjects/:subject/versions',
        {
          config: WRITE,
          schema: { tags, summary: 'Register a schema under a subject (idempotent)' },
        },
        async (r) => service.register(p(r).subject!, schemaInput(r.body)),
      );
      registry.get(
        '/subjects/:subject/versions/:version',
        { config: READ, schema: { tags, summary: 'Get a version' } },
        async (r) => service.getVersion(p(r).subject!, p(r).version!, flag(q(r).deleted)),
      );
      registry.get(
        '/subjects/:subject/versions/:version/schema',
        { config: READ, schema: { tags, summary: 'Get the schema of a version, unwrapped' } },
        async (r, reply) => {
          const found = await service.getVersion(p(r).subject!, p(r).version!, flag(q(r).deleted));
          return reply.type('application/vnd.schemaregistry.v1+json').send(found.schema);
        },
      );
      registry.post(
        '/subjects/:subject',
        { config: READ, schema: { tags, summary: 'Look up a schema under a subject' } },
        async (r) => service.lookup(p(r).subject!, schemaInput(r.body), flag(q(r).deleted)),
      );
      registry.delete(
        '/subjects/:subject',
        { config: WRITE, schema: { tags, summary: 'Delete a subject (soft, or ?permanent=true)' } },
        async (r) => service.deleteSubject(p(r).subject!, flag(q(r).permanent)),
      );
      registry.delete(
        '/subjects/:subject/versions/:version',
        { config: WRITE, schema: { tags, summary: 'Delete a version (soft, or ?permanent=true)' } },
        async (r) => service.deleteVersion(p(r).subject!, p(r).version!, flag(q(r).permanent)),
      );

      const schemaId = (r: FastifyRequest) => {
        const id = p(r).id!;
        if (!/^[0-9]{1,10}$/.test(id))
          throw registryErrors.schemaNotFound(`Schema ${id} not found`);
        return Number(id);
      };
      registry.get(
        '/schemas/ids/:id',
        { config: READ, schema: { tags, summary: 'Get a schema by its global id' } },
        async (r) => {
          const found = await service.schemaById(schemaId(r));
          return {
            schemaType: found.schemaType,
            schema: found.schema,
            ...(found.references.length > 0 ? { references: found.references } : {}),
          };
        },
      );
      registry.get(
        '/schemas/ids/:id/schema',
        { config: READ, schema: { tags, summary: 'Get a schema by id, unwrapped' } },
        async (r, reply) =>
          reply
            .type('application/vnd.schemaregistry.v1+json')
            .send((await service.schemaById(schemaId(r))).schema),
      );
      registry.get(
        '/schemas/ids/:id/versions',
        { config: READ, schema: { tags, summary: 'Subjects and versions that use a schema' } },
        async (r) => service.subjectVersionsOfSchema(schemaId(r)),
      );
      registry.get(
        '/schemas/types',
        { config: READ, schema: { tags, summary: 'Schema types this registry accepts' } },
        () => ['JSON'],
      );

      registry.post(
        '/compatibility/subjects/:subject/versions/:version',
        {
          config: READ,
          schema: { tags, summary: 'Test a schema against a version (?verbose=true for reasons)' },
        },
        async (r) => {
          parseVersion(p(r).version!);
          const verdict = await service.testCompatibility(
            p(r).subject!,
            p(r).version!,
            schemaInput(r.body),
          );
          return flag(q(r).verbose)
            ? { is_compatible: verdict.compatible, messages: verdict.messages }
            : { is_compatible: verdict.compatible };
        },
      );

      registry.get(
        '/config',
        { config: READ, schema: { tags, summary: 'Global compatibility level' } },
        async () => ({
          compatibilityLevel: await service.compatibility(),
        }),
      );
      registry.put(
        '/config',
        { config: WRITE, schema: { tags, summary: 'Set the global compatibility level' } },
        async (r) => ({
          compatibility: await service.setCompatibility(
            undefined,
            stringField(r.body, 'compatibility'),
          ),
        }),
      );
      registry.delete(
        '/config',
        { config: WRITE, schema: { tags, summary: 'Reset the global level' } },
        async () => ({
          compatibilityLevel: await service.deleteCompatibility(undefined),
        }),
      );
      registry.get(
        '/config/:subject',
        { config: READ, schema: { tags, summary: "A subject's own compatibility level" } },
        async (r) => ({
          compatibilityLevel: await service.subjectCompatibility(
            p(r).subject!,
            flag(q(r).defaultToGlobal),
          ),
        }),
      );
      registry.put(
        '/config/:subject',
        { config: WRITE, schema: { tags, summary: "Set a subject's level" } },
        async (r) => ({
          compatibility: await service.setCompatibility(
            p(r).subject,
            stringField(r.body, 'compatibility'),
          ),
        }),
      );
      registry.delete(
        '/config/:subject',
        { config: WRITE, schema: { tags, summary: "Remove a subject's own level" } },
        async (r) => ({
          compatibilityLevel: await service.deleteCompatibility(p(r).subject),
        }),
      );

      registry.get(
        '/mode',
        { config: READ, schema: { tags, summary: 'Global mode' } },
        async () => ({ mode: await service.mode() }),
      );
      registry.put(
        '/mode',
        { config: WRITE, schema: { tags, summary: 'Set the global mode' } },
        async (r) => ({
          mode: await service.setMode(undefined, stringField(r.body, 'mode')),
        }),
      );
      registry.get(
        '/mode/:subject',
        { config: READ, schema: { tags, summary: "A subject's mode" } },
        async (r) => ({
          mode: await service.mode(p(r).subject),
        }),
      );
      registry.put(
        '/mode/:subject',
        { config: WRITE, schema: { tags, summary: "Set a subject's mode" } },
        async (r) => ({
          mode: await service.setMode(p(r).subject, stringField(r.body, 'mode')),
        }),
      );
      done();
    },
    { prefix: '/registry' },
  );
}

function send(reply: FastifyReply, error: RegistryError): FastifyReply {
  if (error.httpStatus === 401) reply.header('www-authenticate', 'Basic realm="nexus registry"');
  return reply
    .code(error.httpStatus)
    .type('application/vnd.schemaregistry.v1+json')
    .send({ error_code: error.errorCode, message: error.message });
}

/** The event catalogue: an AsyncAPI 3 document of every channel, message and schema. */
export function eventCatalogRoute(app: FastifyInstance, document: object): void {
  app.get('/v1/asyncapi.json', { schema: { hide: true } }, () => document);
}
