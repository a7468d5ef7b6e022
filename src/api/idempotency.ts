import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NexusError } from '../model/errors.js';
import type { Executor } from '../platform/db/storage.js';
import { canonicalJson } from '../platform/db/documents.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** A request still marked in progress after this long is taken to have died with its process. */
const LOCK_MS = 60_000;
const KEY = /^[\x21-\x7e]{1,255}$/;
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

interface Claim {
  clientId: string;
  key: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    idempotency?: Claim;
  }
}

/**
 * Idempotency-Key on every mutating route (invariant 5): the first request under a key runs,
 * a retry with the same method, path and body gets the first response again, and the same key
 * with a different request is refused. Keys are per API key and expire after 24 hours.
 * Only completed responses below 500 are kept: a 5xx leaves the key free to retry.
 */
export function registerIdempotency(app: FastifyInstance, db: Executor): void {
  app.addHook('preHandler', async (request, reply) => {
    if (!MUTATING.has(request.method) || request.routeOptions.config.idempotent === false) return;
    const header = request.headers['idempotency-key'];
    if (header === undefined) return;
    const key = Array.isArray(header) ? header[0]! : header;
    if (!KEY.test(key)) {
      throw new NexusError(
        'IDEMPOTENCY_KEY_INVALID',
        'Idempotency-Key must be 1-255 visible ASCII characters',
        {
          errors: [{ pointer: '/Idempotency-Key', detail: 'invalid', in: 'header' }],
        },
      );
    }
    const clientId = request.ctx.actor.id;
    const hash = createHash('sha256')
      .update(`${request.method} ${request.url}\n${canonicalJson(request.body ?? null)}`)
      .digest('hex');
    await claim(db, request, reply, { clientId, key }, hash);
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const claimed = request.idempotency;
    if (!claimed) return payload;
    if (reply.statusCode >= 500) {
      await db
        .deleteFrom('idempotency_keys')
        .where('client_id', '=', claimed.clientId)
        .where('key', '=', claimed.key)
        .execute();
      return payload;
    }
    await db
      .updateTable('idempotency_keys')
      .set({
        state: 'done',
        status_code: reply.statusCode,
        response_body: typeof payload === 'string' ? payload : null,
      })
      .where('client_id', '=', claimed.clientId)
      .where('key', '=', claimed.key)
      .execute();
    return payload;
  });
}

async function claim(
  db: Executor,
  request: FastifyRequest,
  reply: FastifyReply,
  claimed: Claim,
  hash: string,
): Promise<void> {
  const now = Date.now();
  for (let attempt = 0; attempt < 3; attempt++) {
    const inserted = await db
      .insertInto('idempotency_keys')
      .values({
        client_id: claimed.clientId,
        key: claimed.key,
        method: request.method,
        path: request.url,
        request_hash: hash,
        state: 'in-progress',
        status_code: null,
        response_body: null,
        created_at: now,
        expires_at: now + DAY_MS,
        locked_until: now + LOCK_MS,
      })
      .onConflict((oc) => oc.columns(['client_id', 'key']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) {
      request.idempotency = claimed;
      return;
    }
    const existing = await db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('client_id', '=', claimed.clientId)
      .where('key', '=', claimed.key)
      .executeTakeFirst();
    if (!existing) continue; // expired and removed in between: claim again
    if (existing.expires_at <= now) {
      await db
        .deleteFrom('idempotency_keys')
        .where('client_id', '=', claimed.clientId)
        .where('key', '=', claimed.key)
        .where('expires_at', '=', existing.expires_at)
        .execute();
      continue;
    }
    if (existing.request_hash !== hash) {
      throw new NexusError(
        'IDEMPOTENCY_KEY_REUSED',
        `Idempotency-Key '${claimed.key}' was used for a different request (${existing.method} ${existing.path})`,
      );
    }
    if (existing.state === 'done') {
      await reply
        .code(existing.status_code ?? 200)
        .header('idempotent-replayed', 'true')
        .header(
          'content-type',
          existing.status_code === 204 ? undefined : 'application/json; charset=utf-8',
        )
        .send(existing.response_body ?? undefined);
      return;
    }
    if (existing.locked_until > now) {
      throw new NexusError(
        'IDEMPOTENCY_IN_PROGRESS',
        `a request with Idempotency-Key '${claimed.key}' is still running`,
      );
    }
    // The first attempt died mid-way (its process stopped): take the key over once.
    const taken = await db
      .updateTable('idempotency_keys')
      .set({ locked_until: now + LOCK_MS })
      .where('client_id', '=', claimed.clientId)
      .where('key', '=', claimed.key)
      .where('locked_until', '=', existing.locked_until)
      .executeTakeFirst();
    if (Number(taken.numUpdatedRows) > 0) {
      request.idempotency = claimed;
      return;
    }
  }
  throw new NexusError(
    'IDEMPOTENCY_IN_PROGRESS',
    `Idempotency-Key '${claimed.key}' is contended; retry`,
  );
}

/** Deletes expired keys; run by the hub's housekeeping. */
export async function purgeExpiredIdempotencyKeys(db: Executor, now = Date.now()): Promise<number> {
  const result = await db
    .deleteFrom('idempotency_keys')
    .where('expires_at', '<=', now)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
