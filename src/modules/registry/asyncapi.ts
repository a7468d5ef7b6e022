/**
 * An AsyncAPI 3.0.0 description of the events the hub publishes
 * (https://www.asyncapi.com/docs/reference/specification/v3.0.0).
 *
 * The document is written from an integrator's side: every event type is a channel
 * `nexus.evt.{market}.<type>` (the bus subject, see `eventSubject`) with one message, and a
 * `receive` operation says that the integrator may subscribe to it. A message is a CloudEvents
 * envelope in structured JSON mode whose `data` is the schema registered under the event type
 * as subject; `x-nexus-registry` names that subject, its schema id and version, so a consumer
 * can fetch it from the registry or match it with an envelope's `dataschema`.
 *
 * Pure: builds a plain JSON-compatible object; serialise it with JSON.stringify or a YAML
 * library.
 */

import { SUBJECT_PREFIX } from '../../platform/bus/bus.js';

/** A JSON Schema (the AsyncAPI Schema Object is a superset of JSON Schema draft 07). */
export type JsonSchema = { [keyword: string]: unknown };

export interface AsyncApiReference {
  $ref: string;
}

export interface AsyncApiInfo {
  title: string;
  version: string;
  description?: string;
}

export interface AsyncApiServer {
  host: string;
  protocol: string;
  protocolVersion?: string;
  pathname?: string;
  title?: string;
  summary?: string;
  description?: string;
}

export interface AsyncApiParameter {
  description?: string;
  examples?: string[];
  enum?: string[];
  default?: string;
  location?: string;
}

export interface AsyncApiChannel {
  address: string;
  title?: string;
  summary?: string;
  description?: string;
  parameters?: Record<string, AsyncApiParameter | AsyncApiReference>;
  messages: Record<string, AsyncApiReference>;
}

/** `x-nexus-registry`: where the message's data schema lives in the hub's schema registry. */
export interface NexusRegistryExtension {
  subject: string;
  schemaId?: number;
  version?: number;
}

export interface AsyncApiMessage {
  name: string;
  title: string;
  summary: string;
  description?: string;
  contentType: string;
  payload: JsonSchema;
  'x-nexus-registry': NexusRegistryExtension;
}

export interface AsyncApiOperation {
  action: 'send' | 'receive';
  channel: AsyncApiReference;
  messages: AsyncApiReference[];
  title?: string;
  summary?: string;
  description?: string;
}

export interface AsyncApiDocument {
  asyncapi: '3.0.0';
  info: AsyncApiInfo;
  defaultContentType: string;
  servers: Record<string, AsyncApiServer>;
  channels: Record<string, AsyncApiChannel>;
  operations: Record<string, AsyncApiOperation>;
  components: {
    schemas: Record<string, JsonSchema>;
    messages: Record<string, AsyncApiMessage>;
    parameters: Record<string, AsyncApiParameter>;
  };
}

export interface AsyncApiEventInput {
  /** The data schema registered under the event type as subject. */
  schema: object;
  /** Registry schema id of that schema, when registered. */
  schemaId?: number;
  /** Version of the subject that holds it, when registered. */
  subjectVersion?: number;
}

export interface AsyncApiInput {
  /** The hub's version: `info.version`. */
  version: string;
  /** Event type -> its data schema and registration. */
  events: Record<string, AsyncApiEventInput>;
  /** The CloudEvents envelope schema; its `data` property is replaced per event type. */
  envelope: object;
  /** NATS server URL(s) as the hub is configured, comma-separated; default `localhost:4222`. */
  natsUrl?: string;
  /** Wire subject prefix the hub's NATS bus publishes under; default `nexus.evt`. */
  subjectPrefix?: string;
}

export const CLOUDEVENTS_JSON = 'application/cloudevents+json';
const MARKET_PARAMETER = 'market';
const NATS_DEFAULT_PORT = 4222;

/**
 * A component key for an event type: characters outside AsyncAPI's key pattern for components,
 * `^[a-zA-Z0-9\.\-_]+$`, become `_`.
 */
export function componentKey(type: string): string {
  const key = type.replace(/[^a-zA-Z0-9.\-_]/g, '_');
  return key === '' ? '_' : key;
}

/** A JSON Pointer fragment (`#/a/b`) with each token escaped as RFC 6901 asks. */
function pointer(...tokens: string[]): string {
  return `#/${tokens.map((t) => t.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
}

const ref = (...tokens: string[]): AsyncApiReference => ({ $ref: pointer(...tokens) });

/** A plain JSON copy: drops TypeBox's symbol keys and anything else JSON cannot hold. */
function jsonCopy(schema: object): JsonSchema {
  const copy: unknown = JSON.parse(JSON.stringify(schema));
  if (copy === null || typeof copy !== 'object' || Array.isArray(copy)) {
    throw new Error('buildAsyncApi: a schema must be a JSON object');
  }
  return copy as JsonSchema;
}

/**
 * Moves a schema into the document at `base`: drops its own `$id` and `$schema` (a resource
 * identifier inside the document would make local `$ref`s resolve against it instead of the
 * document) and rewrites its local `$ref`s (`#/...`) to point below `base`. Subschemas with
 * their own `$id` are separate resources and are left as they are.
 */
function embed(schema: object, base: string): JsonSchema {
  const copy = jsonCopy(schema);
  delete copy.$id;
  delete copy.$schema;
  const rebase = (node: unknown, root: boolean): unknown => {
    if (Array.isArray(node)) return node.map((item) => rebase(item, false));
    if (node === null || typeof node !== 'object') return node;
    if (!root && '$id' in node) return node;
    const out: JsonSchema = {};
    for (const [key, value] of Object.entries(node)) {
      if (
        key === '$ref' &&
        typeof value === 'string' &&
        (value === '#' || value.startsWith('#/'))
      ) {
        out[key] = `${base}${value.slice(1)}`;
      } else {
        out[key] = rebase(value, false);
      }
    }
    return out;
  };
  return rebase(copy, true) as JsonSchema;
}

/** `market.created.v1` -> `Market created (v1)`. */
function titleOf(type: string): string {
  const tokens = type.split('.');
  const last = tokens[tokens.length - 1] ?? '';
  const version = tokens.length > 1 && /^v[0-9]+$/.test(last) ? tokens.pop() : undefined;
  const words = tokens.join(' ').replace(/[-_]/g, ' ').trim();
  const sentence = words.charAt(0).toUpperCase() + words.slice(1);
  return version === undefined ? sentence : `${sentence} (${version})`;
}

/** `host:port` of each configured NATS server, without scheme or credentials. */
function natsHosts(natsUrl: string | undefined): string[] {
  const entries = (natsUrl ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (entries.length === 0) return [`localhost:${NATS_DEFAULT_PORT}`];
  return entries.map((entry, index) => {
    const withScheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(entry) ? entry : `nats://${entry}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      // The entry itself may hold a password: leave it out of the message.
      throw new Error(`buildAsyncApi: NATS server ${index + 1} of natsUrl is not a valid URL`);
    }
    if (url.hostname === '') {
      throw new Error(`buildAsyncApi: NATS server ${index + 1} of natsUrl has no host`);
    }
    return `${url.hostname}:${url.port === '' ? NATS_DEFAULT_PORT : url.port}`;
  });
}

function servers(natsUrl: string | undefined): Record<string, AsyncApiServer> {
  const out: Record<string, AsyncApiServer> = {};
  natsHosts(natsUrl).forEach((host, index) => {
    out[index === 0 ? 'nats' : `nats-${index + 1}`] = {
      host,
      protocol: 'nats',
      title: 'NATS JetStream',
      description:
        'The bus of the server shape: NATS JetStream (stream `NEXUS_EVENTS` by default). Subscribe ' +
        'to a channel address, or a NATS wildcard over addresses such as `nexus.evt.DE.>` (one ' +
        'market) or `nexus.evt.*.product.>` (one entity). Each message carries the `Nats-Msg-Id` ' +
        '(the event id) and `Nexus-Partition-Key` headers.',
    };
  });
  out.embedded = {
    host: 'in-process',
    protocol: 'nexus-embedded',
    title: 'Embedded bus',
    description:
      "The in-process bus of the embedded shape: the stream is a table in the hub's own " +
      'database (SQLite, or PostgreSQL in the single-server shape) and consumers run inside a hub ' +
      'process, subscribing with the same addresses and wildcards. It is not reachable over the ' +
      'network.',
  };
  return out;
}

/** Builds the AsyncAPI 3.0.0 document for the given event types. */
export function buildAsyncApi(input: AsyncApiInput): AsyncApiDocument {
  const prefix = input.subjectPrefix ?? SUBJECT_PREFIX;
  const envelope = jsonCopy(input.envelope);
  const envelopeProperties = envelope.properties;
  if (
    envelopeProperties === null ||
    typeof envelopeProperties !== 'object' ||
    !('data' in envelopeProperties)
  ) {
    throw new Error('buildAsyncApi: the envelope schema has no `data` property');
  }

  const doc: AsyncApiDocument = {
    asyncapi: '3.0.0',
    info: {
      title: 'Nexus events',
      version: input.version,
      description:
        'Events published by the Nexus hub, as an integrator receives them. Each event type is a ' +
        `channel \`${prefix}.{market}.<event type>\`; \`{market}\` is the market code of the event or ` +
        '`global`. Every message is a CloudEvents 1.0 envelope in structured JSON mode; its ' +
        "`data` matches the schema registered in the hub's schema registry under the event type " +
        "as subject (see `x-nexus-registry`, and the envelope's `dataschema`). Events about one " +
        'entity (one `partitionkey`) arrive in order; delivery is at least once, so deduplicate ' +
        'by the envelope `id`.',
    },
    defaultContentType: CLOUDEVENTS_JSON,
    servers: servers(input.natsUrl),
    channels: {},
    operations: {},
    components: {
      schemas: {},
      messages: {},
      parameters: {
        [MARKET_PARAMETER]: {
          description:
            'Market code of the event (ISO 3166-1 alpha-2, optionally with a suffix: `DE`, ' +
            '`CH-FR`), or `global` for events that belong to no market.',
          examples: ['DE', 'SE', 'global'],
        },
      },
    },
  };

  const used = new Set<string>();
  for (const [type, event] of Object.entries(input.events)) {
    let key = componentKey(type);
    for (let n = 2; used.has(key); n++) key = `${componentKey(type)}_${n}`;
    used.add(key);

    const title = titleOf(type);
    const data = embed(event.schema, pointer('components', 'schemas', key));
    doc.components.schemas[key] = data;

    const payload = embed(envelope, pointer('components', 'messages', key, 'payload'));
    const properties = { ...(payload.properties as JsonSchema) };
    properties.type = {
      ...(properties.type as JsonSchema | undefined),
      const: type,
      description: `The event type: always \`${type}\` on this channel`,
    };
    properties.data = ref('components', 'schemas', key);
    payload.properties = properties;
    payload.title = `${type} envelope`;

    const registry: NexusRegistryExtension = { subject: type };
    if (event.schemaId !== undefined) registry.schemaId = event.schemaId;
    if (event.subjectVersion !== undefined) registry.version = event.subjectVersion;

    const dataTitle =
      typeof data.title === 'string' ? `the ${data.title} schema` : 'the registered data schema';
    doc.components.messages[key] = {
      name: type,
      title,
      summary: `CloudEvents envelope of type \`${type}\` whose \`data\` matches ${dataTitle}.`,
      contentType: CLOUDEVENTS_JSON,
      payload,
      'x-nexus-registry': registry,
    };

    doc.channels[key] = {
      address: `${prefix}.{${MARKET_PARAMETER}}.${type}`,
      title,
      description:
        `Every \`${type}\` event. Subscribe to one market with ` +
        `\`${prefix}.DE.${type}\`, to events without a market with ` +
        `\`${prefix}.global.${type}\`, or to all with \`${prefix}.*.${type}\`.`,
      parameters: { [MARKET_PARAMETER]: ref('components', 'parameters', MARKET_PARAMETER) },
      messages: { [key]: ref('components', 'messages', key) },
    };

    doc.operations[`receive.${key}`] = {
      action: 'receive',
      channel: ref('channels', key),
      messages: [ref('channels', key, 'messages', key)],
      title: `Receive ${title}`,
      summary: `Subscribe to \`${type}\` events, for one market or all of them.`,
    };
  }
  return doc;
}
