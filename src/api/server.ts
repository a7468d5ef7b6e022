import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Type, type TSchema } from '@sinclair/typebox';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { NexusError } from '../model/errors.js';
import { uuidv7 } from '../model/ids.js';
import type { Context } from '../platform/context.js';
import type { Executor } from '../platform/db/storage.js';
import type { Logger } from '../platform/logging.js';
import { createAjv } from '../platform/validation.js';
import '../platform/http/types.js';
import { hasScope, type AccessService } from '../modules/access/index.js';
import { registerIdempotency } from './idempotency.js';
import type { HubMetrics } from './metrics.js';
import { ProblemSchema, fromFastifyError, toProblem } from './problem.js';

export interface Readiness {
  /** Each dependency's state; the hub is ready when every one is ok. */
  check(): Promise<Record<string, { ok: boolean; detail?: string }>>;
}

export interface ServerDeps {
  logger: Logger;
  db: Executor;
  access: AccessService;
  metrics: HubMetrics;
  readiness: Readiness;
  /** Refuses writes (503) while the outbox backlog is over its limit. */
  writeGate: () => Promise<NexusError | null>;
  /** After an unexpected error: is a dependency (the database) down? Then the answer is 503. */
  dependencyFailure: () => Promise<NexusError | null>;
  version: string;
  bodyLimit?: number;
  /** Each module registers its routes here (app.ts passes them in). */
  routes: Array<(app: FastifyInstance) => void>;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const MARKET = /^[A-Z]{2}(-[A-Z0-9]{1,8})?$/;

/** The HTTP API: everything under /v1, problem+json errors, keys with scopes, idempotency. */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  // Typed as Fastify's logger so the instance has Fastify's default type parameters.
  const loggerInstance: FastifyBaseLogger = deps.logger;
  const app = Fastify({
    loggerInstance,
    bodyLimit: deps.bodyLimit ?? 1024 * 1024,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._:-]{8,128}$/.test(given) ? given : uuidv7();
    },
    // Per-request log lines cost more than the request on a hot path; metrics count requests.
    logController: new LogController({
      disableRequestLogging: true,
      requestIdLogLabel: 'requestId',
    }),
    routerOptions: { ignoreTrailingSlash: true },
  });

  // Bodies are validated strictly (no coercion, unknown fields refused); query, path and
  // headers arrive as strings, so they are coerced to the declared types.
  const strictAjv = createAjv();
  const coercingAjv = createAjv({ coerceTypes: true });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema as TSchema),
  );
  // Responses are our own objects: plain JSON.stringify, no second schema compiler.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.addSchema(ProblemSchema);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Nexus omnichannel retail hub',
        version: deps.version,
        description:
          'Versioned API for every touchpoint. Authenticate with `Authorization: Bearer <key>`; ' +
          'send `Idempotency-Key` on writes; errors are RFC 9457 problem+json with a stable `code`.',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'Channel API key (nx_...)' },
        },
      },
      security: [{ apiKey: [] }],
    },
    // Name shared components after their schema title (Market, Product, ...), not def-N.
    refResolver: {
      buildLocalReference: (json, _base, _fragment, i) =>
        typeof json.title === 'string' ? json.title.replace(/[^A-Za-z0-9]/g, '') : `def-${i}`,
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/v1/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true },
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    await authenticate(deps.access, request);
  });

  app.addHook('preHandler', async (request) => {
    if (request.method === 'GET' || request.method === 'HEAD' || !request.routeOptions.config.scope)
      return;
    const refusal = await deps.writeGate();
    if (refusal) throw refusal;
  });

  registerIdempotency(app, deps.db);

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics.httpRequests.inc({
      method: request.method,
      route,
      status: String(reply.statusCode),
    });
    deps.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler(async (error, request, reply) => {
    const nexusError = fromFastifyError(error);
    if (nexusError.code === 'INTERNAL') {
      // Unexpected: maybe a dependency went away mid-request. Say so rather than "internal".
      const down = await deps.dependencyFailure();
      if (down) return sendProblem(reply, request, down);
      request.log.error({ err: error }, 'unhandled error');
    }
    return sendProblem(reply, request, nexusError);
  });

  app.setNotFoundHandler(async (request, reply) =>
    sendProblem(
      reply,
      request,
      new NexusError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`),
    ),
  );

  app.get('/healthz', { schema: { hide: true } }, () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const checks = await deps.readiness.check();
    const ok = Object.values(checks).every((c) => c.ok);
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not-ready', checks });
  });
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .header('content-type', deps.metrics.registry.contentType)
      .send(await deps.metrics.registry.metrics()),
  );
  app.get('/v1/openapi.json', { schema: { hide: true } }, () => app.swagger());
  app.get(
    '/problems/:code',
    { schema: { hide: true, params: Type.Object({ code: Type.String() }) } },
    (request) => {
      const code = (request.params as { code: string }).code.toUpperCase().replace(/-/g, '_');
      return { code, description: 'See docs/errors.md for every problem type the API returns.' };
    },
  );

  for (const register of deps.routes) register(app);
  return app;
}

async function authenticate(access: AccessService, request: FastifyRequest): Promise<void> {
  const traceparent = request.headers.traceparent;
  const market = request.headers['x-nexus-market'];
  const base = {
    requestId: request.id,
    ...(typeof traceparent === 'string' && TRACEPARENT.test(traceparent) ? { traceparent } : {}),
  };
  const scope = request.routeOptions.config?.scope;
  if (!scope) {
    request.ctx = { ...base, actor: { kind: 'system', id: 'anonymous' }, scopes: new Set() };
    return;
  }
  const presented = presentedKey(request);
  if (!presented)
    throw new NexusError('UNAUTHENTICATED', 'send an API key: Authorization: Bearer <key>');
  const key = await access.authenticate(presented);
  if (!key) throw new NexusError('UNAUTHENTICATED', 'the API key is unknown or revoked');
  const scopes = new Set(key.scopes);
  if (!hasScope(scopes, scope)) {
    throw new NexusError(
      'FORBIDDEN_SCOPE',
      `this route needs scope '${scope}'; the key has ${key.scopes.join(', ')}`,
    );
  }
  let chosenMarket: string | undefined;
  if (typeof market === 'string') {
    if (!MARKET.test(market)) {
      throw new NexusError('VALIDATION_FAILED', 'X-Nexus-Market is not a market code', {
        errors: [
          { pointer: '/X-Nexus-Market', detail: 'must look like DE or CH-FR', in: 'header' },
        ],
      });
    }
    if (key.markets && !key.markets.includes(market)) {
      throw new NexusError('FORBIDDEN_SCOPE', `this key may not act for market '${market}'`);
    }
    chosenMarket = market;
  }
  const ctx: Context = {
    ...base,
    actor: { kind: 'api-key', id: key.id, channel: key.channel },
    channel: key.channel,
    scopes,
    ...(chosenMarket === undefined ? {} : { market: chosenMarket }),
    ...(key.markets ? { markets: key.markets } : {}),
  };
  request.ctx = ctx;
}

/**
 * The API key from `Authorization: Bearer <key>`, from HTTP Basic auth's password (what
 * Confluent schema-registry clients send; the user name is ignored), or from `X-API-Key`.
 */
function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string') {
    if (authorization.startsWith('Bearer ')) return authorization.slice(7).trim();
    if (authorization.startsWith('Basic ')) {
      const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon >= 0 ? decoded.slice(colon + 1) : undefined;
    }
  }
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

function sendProblem(
  reply: FastifyReply,
  request: FastifyRequest,
  error: NexusError,
): FastifyReply {
  if (error.code === 'UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer');
  return reply
    .code(error.status)
    .header('content-type', 'application/problem+json; charset=utf-8')
    .send(toProblem(error, request.id, request.url.split('?')[0]));
}
