import type { Context } from '../context.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the API's authentication hook before any route handler runs. */
    ctx: Context;
  }
  interface FastifyContextConfig {
    /** Scope an API key needs for this route; absent means the route is public. */
    scope?: string;
    /** Mutating routes accept Idempotency-Key unless this is false. */
    idempotent?: boolean;
  }
}

export {};
