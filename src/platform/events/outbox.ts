import { uuidv7 } from '../../model/ids.js';
import type { EventEnvelope } from '../../model/schemas/event.js';
import type { Channel } from '../../model/schemas/common.js';
import { eventSubject } from '../bus/bus.js';
import { insertRows } from '../db/bulk.js';
import type { Tx } from '../db/storage.js';

/** What a service says happened; the unit of work turns it into a CloudEvents envelope. */
export interface EventDraft<T = unknown> {
  type: string;
  /** The entity: `market/DE`, `product/P-1`, `inventory/SKU-1@DE-BER-001`. */
  subject: string;
  /** Defaults to the subject: events about one entity stay in order. */
  partitionKey?: string;
  market?: string;
  channel?: Channel;
  data: T;
}

export interface EnvelopeContext {
  source: string;
  dataschema: string;
  traceparent?: string;
  channel?: Channel;
  now?: Date;
}

export function buildEnvelope(draft: EventDraft, context: EnvelopeContext): EventEnvelope {
  const envelope: EventEnvelope = {
    specversion: '1.0',
    id: uuidv7(),
    source: context.source,
    type: draft.type,
    subject: draft.subject,
    time: (context.now ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    dataschema: context.dataschema,
    partitionkey: draft.partitionKey ?? draft.subject,
    data: draft.data,
  };
  if (draft.market !== undefined) envelope.market = draft.market;
  const channel = draft.channel ?? context.channel;
  if (channel !== undefined) envelope.channel = channel;
  if (context.traceparent !== undefined) envelope.traceparent = context.traceparent;
  return envelope;
}

/** Rows per INSERT: 5 parameters a row stays under SQLite's 32,766 bound-parameter limit. */
const CHUNK = 1000;

/** Writes envelopes into the outbox inside the caller's transaction, in the given order. */
export async function insertOutbox(trx: Tx, envelopes: readonly EventEnvelope[]): Promise<void> {
  const now = Date.now();
  for (let i = 0; i < envelopes.length; i += CHUNK) {
    // Plain SQL: this runs in every write transaction (see the relay for why).
    const rows = envelopes
      .slice(i, i + CHUNK)
      .map((e) => [e.id, eventSubject(e), e.partitionkey, JSON.stringify(e), now]);
    await insertRows(
      trx,
      'insert into outbox (event_id, subject, partition_key, envelope, created_at)',
      5,
      rows,
    );
  }
}
