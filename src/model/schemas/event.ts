import { Type, type Static } from '@sinclair/typebox';
import { Channel, MarketCode, Timestamp, schemaId } from './common.js';

/**
 * CloudEvents 1.0 envelope (structured JSON mode) with Nexus extensions. Extension attribute
 * names are lower-case alphanumerics, as the CloudEvents spec requires.
 */
export const EventEnvelope = Type.Object(
  {
    specversion: Type.Literal('1.0'),
    id: Type.String({ minLength: 1, maxLength: 128 }),
    source: Type.String({ minLength: 1, description: 'URI-reference of the producer' }),
    type: Type.String({
      pattern: '^[a-z][a-z0-9]*(\\.[a-z][a-z0-9-]*)+\\.v[0-9]+$',
      description: 'e.g. inventory.level.changed.v1',
    }),
    subject: Type.String({ minLength: 1, description: 'The entity the event is about' }),
    time: Timestamp,
    datacontenttype: Type.Literal('application/json'),
    dataschema: Type.String({ description: 'Registry subject and version of data' }),
    data: Type.Unknown(),
    market: Type.Optional(MarketCode),
    channel: Type.Optional(Channel),
    partitionkey: Type.String({ description: 'Events with one key are delivered in order' }),
    traceparent: Type.Optional(
      Type.String({ pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' }),
    ),
  },
  { $id: schemaId('event-envelope', 1), title: 'EventEnvelope', additionalProperties: false },
);
export type EventEnvelope<T = unknown> = Omit<Static<typeof EventEnvelope>, 'data'> & { data: T };
