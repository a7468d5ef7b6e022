import type { FieldError } from '../../model/errors.js';
import type { EventEnvelope } from '../../model/schemas/event.js';

/** How a subscription wants its events on the wire. */
export const WEBHOOK_FORMATS = ['json', 'confluent-wire'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

export interface ShapeOptions {
  /** Event type -> registered schema version the subscriber understands (may be empty). */
  schemaVersions: Readonly<Record<string, number>>;
  format: WebhookFormat;
}

/** One request body, ready to sign and send. */
export interface ShapedPayload {
  body: Buffer | string;
  contentType: string;
  /** Extra request headers (the Nexus-* headers are set by the dispatcher and win). */
  headers: Record<string, string>;
}

/**
 * Turns an event into what one subscriber receives. The dispatcher calls it at send time with
 * the subscription's current settings, so a changed format or version map applies to retries
 * too. The `confluent-wire` shaper (and downcasting to older schema versions) is supplied
 * from outside through this interface. A throw counts as a failed attempt and is retried; an
 * error with `permanent: true` (the event cannot be represented as the subscriber asked, which
 * no retry changes) gives the delivery up at once (`dead`, redeliverable by hand).
 */
export interface EventShaper {
  shape(envelope: EventEnvelope, options: ShapeOptions): ShapedPayload | Promise<ShapedPayload>;
}

/** The default: the CloudEvents envelope as JSON, structured content mode. */
export class JsonEventShaper implements EventShaper {
  shape(envelope: EventEnvelope): ShapedPayload {
    return {
      body: JSON.stringify(envelope),
      contentType: 'application/cloudevents+json',
      headers: {},
    };
  }
}

export type EventShapers = Partial<Record<WebhookFormat, EventShaper>>;

/**
 * Checks a subscription's declared schema versions (event type -> version) on create and
 * update, e.g. against a schema registry: one error (pointer `/schemaVersions/<type>`) per
 * version that does not exist. Supplied from outside, like the shapers.
 */
export type SchemaVersionsCheck = (
  versions: Readonly<Record<string, number>>,
) => FieldError[] | Promise<FieldError[]>;
