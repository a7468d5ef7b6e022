import { NexusError } from '../model/errors.js';
import { uuidv7 } from '../model/ids.js';
import type { Channel } from '../model/schemas/common.js';

/** Who is acting: a channel client's API key, the CLI, or the hub itself. */
export interface Actor {
  kind: 'api-key' | 'cli' | 'system';
  id: string;
  channel?: Channel;
}

/**
 * Passed first to every service method (context first, as Vendure does): who acts, for which
 * market and channel, with which scopes, under which request id and trace.
 */
export interface Context {
  readonly requestId: string;
  readonly actor: Actor;
  readonly scopes: ReadonlySet<string>;
  readonly market?: string;
  /** Markets the caller may act for; absent means every market. */
  readonly markets?: readonly string[];
  readonly channel?: Channel;
  readonly traceparent?: string;
}

export function systemContext(name: string, overrides: Partial<Context> = {}): Context {
  return {
    requestId: uuidv7(),
    actor: { kind: 'system', id: name },
    scopes: new Set(['*']),
    ...overrides,
  };
}

/** Whether the caller may act for (or read) a market. */
export const mayActFor = (ctx: Context, marketCode: string): boolean =>
  ctx.markets === undefined || ctx.markets.includes(marketCode);

/** The refusal (403) of a caller limited to markets that named `what`, in another one. */
export const outsideMarkets = (ctx: Context, marketCode: string, what: string): NexusError =>
  new NexusError(
    'FORBIDDEN_SCOPE',
    `this key may act only for ${(ctx.markets ?? []).join(', ')}: ${what} is in ${marketCode}`,
  );

/** Refuses a caller limited to markets that names another one, saying which and why. */
export function assertMayActFor(ctx: Context, marketCode: string, what: string): void {
  if (!mayActFor(ctx, marketCode)) throw outsideMarkets(ctx, marketCode, what);
}
