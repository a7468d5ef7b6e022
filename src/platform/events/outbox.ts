import { uuidv7 } from '../../model/ids.js';
import type { EventEnvelope } from '../../model/schemas/event.js';
import type { Channel } from '../../model/schemas/common.js';
import { eventSubject, type OutgoingMessage } from '../bus/bus.js';
import type { InsertBatch } from '../db/bulk.js';
import { isoTime } from '../../model/time.js';

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
    time: context.now === undefined ? isoTime(Date.now()) : context.now.toISOString(),
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

/** The bus's view of a committed event. */
export const toOutgoing = (e: EventEnvelope): OutgoingMessage => ({
  eventId: e.id,
  subject: eventSubject(e),
  partitionKey: e.partitionkey,
  envelope: JSON.stringify(e),
});

/** Rows per INSERT: 5 parameters a row stays under SQLite's 32,766 bound-parameter limit. */
const CHUNK = 1000;

/** Adds the outbox rows of `envelopes`, in the given order, to the transaction's inserts. */
export function addOutbox(inserts: InsertBatch, envelopes: readonly EventEnvelope[]): void {
  const now = Date.now();
  for (let i = 0; i < envelopes.length; i += CHUNK) {
    const rows = envelopes.slice(i, i + CHUNK).map((e) => {
      const m = toOutgoing(e);
      return [m.eventId, m.subject, m.partitionKey, m.envelope, now];
    });
    inserts.add(
      'insert into outbox (event_id, subject, partition_key, envelope, created_at)',
      5,
      rows,
    );
  }
}
