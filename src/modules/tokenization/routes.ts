import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NexusError, isNexusError } from '../../model/errors.js';
import type { Context } from '../../platform/context.js';
import '../../platform/http/types.js';
import { FIELD_CLASSES, type FieldClass } from './crypto/index.js';
import { auditedErrors, MAX_DETOKENIZE, PII_SCOPES, type TokenizationService } from './service.js';
import type { PersonalValue } from './values.js';

const Problem = Type.Ref('Problem');
const tags = ['tokens'];
const FieldClassSchema = Type.Union(
  FIELD_CLASSES.map((c) => Type.Literal(c)),
  { description: 'Field class of personal data' },
);
const CustomerId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$' });
const Reason = Type.String({
  minLength: 1,
  maxLength: 500,
  description: 'Why the clear value is needed (kept in the audit log)',
});

/**
 * Who called. Refused by the authentication hook, the request has no context yet: the key id
 * is the one the presented secret names (`nx_<id>_...`), verified unless the refusal was
 * UNAUTHENTICATED.
 */
function callerOf(request: FastifyRequest, code: string): string {
  const ctx = (request as { ctx?: Context }).ctx;
  if (ctx !== undefined && ctx !== null) return `${ctx.actor.kind}:${ctx.actor.id}`;
  const header = request.headers.authorization ?? request.headers['x-api-key'];
  const match = typeof header === 'string' ? /nx_([a-z0-9]{8})_/.exec(header) : null;
  if (match === null) return 'unauthenticated';
  return code === 'UNAUTHENTICATED' ? `unauthenticated:api-key:${match[1]}` : `api-key:${match[1]}`;
}

export function tokenizationRoutes(app: FastifyInstance, service: TokenizationService): void {
  app.post('/v1/tokens/detokenize', {
    // The answer holds clear values: never kept by the idempotency store.
    config: { scope: PII_SCOPES.detokenize, idempotent: false },
    schema: {
      tags,
      summary: `Clear values of up to ${MAX_DETOKENIZE} tokens, for keys with pii:detokenize and pii:detokenize:<class>; audited and rate limited`,
      body: Type.Object(
        {
          tokens: Type.Array(Type.String({ maxLength: 400 }), {
            minItems: 1,
            maxItems: MAX_DETOKENIZE,
          }),
          reason: Reason,
        },
        { additionalProperties: false },
      ),
      response: { 403: Problem, 429: Problem },
    },
    // Refusals before the service runs (no key, no scope, an invalid body) are audited too.
    onError: async (request, _reply, error) => {
      if (auditedErrors.has(error)) return;
      const body = request.body as { tokens?: unknown; reason?: unknown } | undefined;
      const code = isNexusError(error)
        ? error.code
        : (error as { statusCode?: number }).statusCode === 400
          ? 'VALIDATION_FAILED'
          : 'INTERNAL';
      await service
        .auditRefusal(
          callerOf(request, code),
          code,
          Array.isArray(body?.tokens) ? (body.tokens as unknown[]) : [],
          body?.reason,
          request.id,
        )
        .catch((auditError: unknown) =>
          request.log.error({ err: auditError }, 'could not audit a refused detokenization'),
        );
    },
    handler: async (request, reply) => {
      const body = request.body as { tokens: string[]; reason: string };
      reply.header('cache-control', 'no-store');
      let results;
      try {
        results = await service.detokenize(request.ctx, body.tokens, body.reason);
      } catch (error) {
        if (isNexusError(error) && error.code === 'RATE_LIMITED') {
          const seconds = error.extensions.retryAfterSeconds;
          reply.header('retry-after', String(typeof seconds === 'number' ? seconds : 60));
        }
        throw error;
      }
      const refused = results.filter((r) => !r.ok);
      if (refused.length === results.length) {
        // Nothing revealed: the whole call is a problem, with each token's own code.
        const first = refused[0]!;
        const error = new NexusError(
          first.code,
          results.length === 1
            ? first.detail
            : `none of the ${results.length} tokens could be detokenized; see results`,
          {
            extensions: {
              results: refused.map((r) => ({
                token: r.token,
                ok: false,
                code: r.code,
                detail: r.detail,
              })),
            },
          },
        );
        auditedErrors.add(error);
        throw error;
      }
      return { results };
    },
  });

  app.post('/v1/tokens/tokenize', {
    config: { scope: PII_SCOPES.tokenize },
    schema: {
      tags,
      summary:
        'Tokens for clear values as the hub is configured per field class (e.g. to look a customer up by the convergent token of an email)',
      body: Type.Object(
        {
          items: Type.Array(
            Type.Object(
              {
                value: Type.Union([
                  Type.String({ minLength: 1, maxLength: 4000 }),
                  Type.Object({}, { additionalProperties: true }),
                ]),
                fieldClass: FieldClassSchema,
                customerId: Type.Optional(CustomerId),
              },
              { additionalProperties: false },
            ),
            { minItems: 1, maxItems: 1000 },
          ),
        },
        { additionalProperties: false },
      ),
    },
    handler: async (request) => {
      const body = request.body as {
        items: Array<{ value: PersonalValue; fieldClass: FieldClass; customerId?: string }>;
      };
      const tokens = await service.tokenizeRequest(
        request.ctx,
        body.items.map((item) => ({
          value: item.value,
          fieldClass: item.fieldClass,
          subject: item.customerId ?? null,
        })),
      );
      return { tokens };
    },
  });

  app.post('/v1/customers/:customerId/erasure', {
    config: { scope: PII_SCOPES.erase },
    schema: {
      tags,
      summary:
        "Right to erasure: crypto-shreds every token of the customer's personal data and emits customer.erased.v1",
      params: Type.Object({ customerId: CustomerId }),
      body: Type.Object({ reason: Reason }, { additionalProperties: false }),
    },
    handler: async (request) =>
      service.erase(
        request.ctx,
        (request.params as { customerId: string }).customerId,
        (request.body as { reason: string }).reason,
      ),
  });

  app.get('/v1/tokens/audit', {
    config: { scope: PII_SCOPES.audit },
    schema: {
      tags,
      summary: 'The tokenization audit log, newest first',
      querystring: Type.Object({
        action: Type.Optional(
          Type.Union(
            ['tokenize', 'detokenize', 'erase', 'rotate', 'reencrypt'].map((a) => Type.Literal(a)),
          ),
        ),
        actor: Type.Optional(Type.String({ maxLength: 200 })),
        token: Type.Optional(Type.String({ maxLength: 400 })),
        customerId: Type.Optional(CustomerId),
        since: Type.Optional(Type.String({ format: 'date-time' })),
        until: Type.Optional(Type.String({ format: 'date-time' })),
        cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
      }),
    },
    handler: async (request) => {
      const query = request.query as {
        action?: 'tokenize' | 'detokenize' | 'erase' | 'rotate' | 'reencrypt';
        actor?: string;
        token?: string;
        customerId?: string;
        since?: string;
        until?: string;
        cursor?: string;
        limit: number;
      };
      return service.audit({ ...query, subject: query.customerId });
    },
  });

  app.get('/v1/tokens/keys', {
    config: { scope: PII_SCOPES.audit },
    schema: {
      tags,
      summary:
        'Key versions: which is current, and how many vault ciphertexts each still holds (re-encryption progress)',
    },
    handler: async () => service.keyStatus(),
  });
}
