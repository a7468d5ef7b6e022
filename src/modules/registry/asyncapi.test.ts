import { describe, expect, it } from 'vitest';
import { EVENT_DATA_SCHEMAS, type EventType } from '../../model/events.js';
import { EventEnvelope } from '../../model/schemas/event.js';
import { eventSubject } from '../../platform/bus/bus.js';
import { buildEnvelope } from '../../platform/events/outbox.js';
import { createAjv } from '../../platform/validation.js';
import { buildAsyncApi, componentKey, type AsyncApiDocument } from './asyncapi.js';

const KEY_PATTERN = /^[a-zA-Z0-9.\-_]+$/;
const TYPES = Object.keys(EVENT_DATA_SCHEMAS) as EventType[];

function build(natsUrl?: string): AsyncApiDocument {
  const events = Object.fromEntries(
    TYPES.map((type, i) => [
      type,
      { schema: EVENT_DATA_SCHEMAS[type], schemaId: 100 + i, subjectVersion: 1 },
    ]),
  );
  return buildAsyncApi({
    version: '1.2.3',
    events,
    envelope: EventEnvelope,
    ...(natsUrl === undefined ? {} : { natsUrl }),
  });
}

// --- a small JSON Pointer resolver --------------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Resolves a local `$ref` (`#/a/b~1c`) inside `doc`; throws when it leads nowhere. */
function resolveRef(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) throw new Error(`not a local $ref: ${ref}`);
  const fragment = decodeURIComponent(ref.slice(1));
  if (fragment === '') return doc;
  if (!fragment.startsWith('/')) throw new Error(`not a JSON Pointer: ${ref}`);
  let node: unknown = doc;
  for (const raw of fragment.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, token)) {
      throw new Error(`$ref ${ref} does not resolve (no '${token}')`);
    }
    node = (node as Record<string, unknown>)[token];
  }
  return node;
}

/** Resolves `ref`, then any reference the target is itself, until a real object. */
function follow(doc: unknown, ref: string, seen: readonly string[] = []): unknown {
  if (seen.includes(ref)) throw new Error(`$ref cycle through ${ref}`);
  const target = resolveRef(doc, ref);
  return isObject(target) && typeof target.$ref === 'string'
    ? follow(doc, target.$ref, [...seen, ref])
    : target;
}

/** Every `$ref` string anywhere in `node`. */
function refsIn(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) refsIn(item, out);
  else if (isObject(node)) {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') out.push(value);
      else refsIn(value, out);
    }
  }
  return out;
}

/** A copy of `node` with every local `$ref` replaced by its (dereferenced) target. */
function deref(node: unknown, doc: unknown, seen: readonly string[] = []): unknown {
  if (Array.isArray(node)) return node.map((item) => deref(item, doc, seen));
  if (!isObject(node)) return node;
  const { $ref, ...rest } = node;
  if (typeof $ref === 'string') {
    if (seen.includes($ref)) throw new Error(`$ref cycle through ${$ref}`);
    const target = deref(resolveRef(doc, $ref), doc, [...seen, $ref]);
    return Object.keys(rest).length === 0
      ? target
      : { ...(deref(rest, doc, seen) as object), allOf: [target] };
  }
  return Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, deref(v, doc, seen)]));
}

// --- sample events --------------------------------------------------------------------------

const META = {
  version: 3,
  createdAt: '2024-05-01T08:00:00.000Z',
  updatedAt: '2024-05-02T09:30:00.000Z',
};

const MARKET = {
  code: 'DE',
  name: 'Germany',
  country: 'DE',
  currency: 'EUR',
  defaultLocale: 'de-DE',
  locales: ['de-DE', 'en-GB'],
  timeZone: 'Europe/Berlin',
  channels: ['web', 'pos'],
  status: 'active',
  ...META,
};

const LOCATION = {
  id: 'DE-BER-001',
  name: 'Berlin Kurfürstendamm',
  type: 'store',
  marketCode: 'DE',
  geo: { lat: 52.5035, lon: 13.3319 },
  address: { line1: 'Kurfürstendamm 21', postalCode: '10719', city: 'Berlin', country: 'DE' },
  timeZone: 'Europe/Berlin',
  openingHours: [{ day: 'mon', opens: '09:00', closes: '20:00' }],
  capabilities: ['pickup', 'returns'],
  capacity: { ordersPerHour: 40 },
  status: 'active',
  ...META,
};

const PRODUCT = {
  id: 'P-1000',
  name: { 'de-DE': 'Laufschuh', 'en-GB': 'Running shoe' },
  brand: 'Stride',
  skus: [
    {
      sku: 'P-1000-42',
      gtin: '4006381333931',
      attributes: { size: '42', colour: 'blue' },
      prices: [{ marketCode: 'DE', price: { currency: 'EUR', amount: '119.95' } }],
      status: 'active',
    },
  ],
  status: 'active',
  ...META,
};

const ORDER = {
  id: 'O-1',
  marketCode: 'DE',
  channel: 'web',
  currency: 'EUR',
  placedAt: '2026-11-28T10:00:00.000Z',
  status: 'placed',
  lines: [
    {
      lineId: '1',
      sku: 'P-1000-42',
      quantity: 1,
      unitPrice: { currency: 'EUR', amount: '119.95' },
      lineTotal: { currency: 'EUR', amount: '119.95' },
      delivery: { mode: 'pickup-in-store', locationId: 'DE-BER-001' },
    },
    {
      lineId: '2',
      sku: 'P-1000-43',
      quantity: 1,
      unitPrice: { currency: 'EUR', amount: '0.00' },
      lineTotal: { currency: 'EUR', amount: '0.00' },
      // Personal data travels as tokens: the address is one vault token.
      delivery: { mode: 'ship-to-address', address: 'tok_v1_address_3q2-7wAAgZ1yT0kLmN8pQrS4' },
    },
  ],
  totals: {
    subtotal: { currency: 'EUR', amount: '119.95' },
    shipping: { currency: 'EUR', amount: '0.00' },
    tax: { currency: 'EUR', amount: '19.15' },
    grandTotal: { currency: 'EUR', amount: '119.95' },
  },
  externalReferences: [{ system: 'shop-de', id: 'W-1001' }],
};

/** A customer in token form: every personal data field is a token. */
const CUSTOMER = {
  id: 'C-1001',
  channelIds: [{ channel: 'web', externalId: 'shop-4711' }],
  contactPoints: [
    {
      type: 'email',
      value: 'tok_c1_email_fnyDYq0tDpeaV_8uY4I_YRN8JvG-JUz0',
      verified: true,
      primary: true,
    },
    {
      type: 'phone',
      value: 'tok_c1_phone_L18Seu-YwQQV9FeIulUffh-QXpvWeACU',
      verified: false,
      primary: true,
    },
    {
      type: 'address',
      address: 'tok_v1_address_Zm9vYmFyYmF6cXV4cXV1eDEy',
      verified: true,
      primary: true,
    },
  ],
  names: { given: 'tok_v1_name_aGVsbG8td29ybGQtMTIzNDU2', family: 'D***' },
  birthDate: 'tok_v1_birthdate_YmlydGhkYXRlLXRva2VuLTEy',
  marketCode: 'DE',
  consents: [
    { purpose: 'marketing-email', granted: true, at: '2026-01-02T10:00:00.000Z', channel: 'web' },
  ],
};

const RESERVATION = {
  id: 'R-1',
  sku: 'P-1000-42',
  locationId: 'DE-BER-001',
  quantity: 1,
  channel: 'web',
  marketCode: 'DE',
  reference: { type: 'cart', id: 'cart-77' },
  status: 'active',
  expiresAt: '2026-11-28T10:15:00.000Z',
  createdAt: '2026-11-28T10:00:00.000Z',
  updatedAt: '2026-11-28T10:00:00.000Z',
};

/** One valid event per type: the draft a service would hand to the unit of work. */
const SAMPLES: Record<EventType, { subject: string; market?: string; data: unknown }> = {
  'market.created.v1': { subject: 'market/DE', market: 'DE', data: MARKET },
  'market.updated.v1': { subject: 'market/DE', market: 'DE', data: MARKET },
  'market.deleted.v1': { subject: 'market/DE', market: 'DE', data: { code: 'DE', version: 4 } },
  'location.created.v1': { subject: 'location/DE-BER-001', market: 'DE', data: LOCATION },
  'location.updated.v1': { subject: 'location/DE-BER-001', market: 'DE', data: LOCATION },
  'location.deleted.v1': {
    subject: 'location/DE-BER-001',
    market: 'DE',
    data: { id: 'DE-BER-001', version: 4 },
  },
  'product.created.v1': { subject: 'product/P-1000', data: PRODUCT },
  'product.updated.v1': { subject: 'product/P-1000', data: PRODUCT },
  'product.deleted.v1': { subject: 'product/P-1000', data: { id: 'P-1000', version: 4 } },
  'inventory.level.changed.v1': {
    subject: 'inventory/P-1000-42@DE-BER-001',
    market: 'DE',
    data: {
      sku: 'P-1000-42',
      locationId: 'DE-BER-001',
      marketCode: 'DE',
      before: { onHand: 5, reserved: 1, safetyStock: 0, available: 4 },
      after: { onHand: 5, reserved: 2, safetyStock: 0, available: 3 },
      version: 7,
      changedAt: '2026-11-28T10:00:00.000Z',
      causes: [{ kind: 'reservation', reason: 'active', quantity: 1, id: 'R-1' }],
    },
  },
  'inventory.reservation.created.v1': {
    subject: 'reservation/R-1',
    market: 'DE',
    data: RESERVATION,
  },
  'inventory.reservation.committed.v1': {
    subject: 'reservation/R-1',
    market: 'DE',
    data: { ...RESERVATION, status: 'committed' },
  },
  'inventory.reservation.released.v1': {
    subject: 'reservation/R-1',
    market: 'DE',
    data: { ...RESERVATION, status: 'released', statusReason: 'cancelled' },
  },
  'pos.sale.recorded.v1': {
    subject: 'pos-sale/DE-BER-001/T1/4711',
    market: 'DE',
    data: {
      locationId: 'DE-BER-001',
      terminalId: 'T1',
      transactionNumber: '4711',
      businessDate: '2026-11-28',
      occurredAt: '2026-11-28T10:00:00.000Z',
      currency: 'EUR',
      lines: [{ sku: 'P-1000-42', quantity: 1, unitPrice: { currency: 'EUR', amount: '119.95' } }],
      total: { currency: 'EUR', amount: '119.95' },
    },
  },
  'order.placed.v1': { subject: 'order/O-1', market: 'DE', data: ORDER },
  'customer.registered.v1': { subject: 'customer/C-1001', market: 'DE', data: CUSTOMER },
  'customer.updated.v1': { subject: 'customer/C-1001', market: 'DE', data: CUSTOMER },
  'customer.erased.v1': {
    subject: 'customer/C-1001',
    data: { customerId: 'C-1001', erasedAt: '2026-12-01T08:00:00.000Z', tokenCount: 6 },
  },
  'inventory.reservation.expired.v1': {
    subject: 'reservation/R-1',
    market: 'DE',
    data: { ...RESERVATION, status: 'expired', statusReason: 'lapsed' },
  },
};

function sampleEnvelope(type: EventType, data: unknown = SAMPLES[type].data) {
  const { subject, market } = SAMPLES[type];
  return buildEnvelope(
    { type, subject, ...(market === undefined ? {} : { market }), data: structuredClone(data) },
    {
      source: '/nexus/hub-1',
      dataschema: `/registry/subjects/${type}/versions/1`,
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      channel: 'web',
      now: new Date('2024-05-02T09:30:00.000Z'),
    },
  );
}

// --- tests ----------------------------------------------------------------------------------

describe('buildAsyncApi', () => {
  const doc = build();

  it('is an AsyncAPI 3.0.0 document, plain JSON', () => {
    expect(doc.asyncapi).toBe('3.0.0');
    expect(doc.info).toMatchObject({ title: 'Nexus events', version: '1.2.3' });
    expect(doc.defaultContentType).toBe('application/cloudevents+json');
    expect(JSON.stringify(JSON.parse(JSON.stringify(doc)))).toBe(JSON.stringify(doc));
  });

  it('has a channel, a message and a receive operation for every event type', () => {
    expect(Object.keys(doc.channels)).toHaveLength(TYPES.length);
    expect(Object.keys(doc.operations)).toHaveLength(TYPES.length);
    for (const [i, type] of TYPES.entries()) {
      const key = componentKey(type);
      const channel = doc.channels[key];
      expect(channel?.address).toBe(`nexus.evt.{market}.${type}`);
      expect(resolveRef(doc, refOf(channel?.parameters?.market))).toMatchObject({
        description: expect.stringContaining('global') as string,
      });

      const operations = Object.values(doc.operations).filter(
        (op) => op.channel.$ref === `#/channels/${key}`,
      );
      expect(operations).toHaveLength(1);
      const operation = operations[0]!;
      expect(operation.action).toBe('receive');
      // An operation's messages must be a subset of its channel's messages.
      for (const message of operation.messages) {
        expect(message.$ref.startsWith(`#/channels/${key}/messages/`)).toBe(true);
      }

      const message = follow(doc, operation.messages[0]!.$ref);
      expect(message).toBe(doc.components.messages[key]);
      expect(message).toMatchObject({
        name: type,
        title: expect.any(String) as string,
        summary: expect.any(String) as string,
        contentType: 'application/cloudevents+json',
        'x-nexus-registry': { subject: type, schemaId: 100 + i, version: 1 },
      });
    }
  });

  it('addresses each channel exactly as the bus names the subject', () => {
    for (const type of TYPES) {
      const envelope = sampleEnvelope(type);
      const address = doc.channels[componentKey(type)]!.address;
      expect(address.replace('{market}', envelope.market ?? 'global')).toBe(eventSubject(envelope));
    }
    const global = { type: 'product.created.v1' };
    expect(doc.channels[componentKey(global.type)]!.address.replace('{market}', 'global')).toBe(
      eventSubject(global),
    );
  });

  it('resolves every $ref inside the document', () => {
    const refs = refsIn(doc);
    // channels -> messages, parameters; operations -> channels, channel messages; payload -> data
    expect(refs.length).toBeGreaterThanOrEqual(TYPES.length * 5);
    for (const ref of refs) {
      expect(ref.startsWith('#/')).toBe(true);
      expect(() => resolveRef(doc, ref)).not.toThrow();
    }
  });

  it('uses component keys that match AsyncAPI’s pattern', () => {
    for (const section of Object.values(doc.components)) {
      for (const key of Object.keys(section)) expect(key).toMatch(KEY_PATTERN);
    }
    for (const key of Object.keys(doc.servers)) expect(key).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(componentKey('weird type/with:chars.v1')).toMatch(KEY_PATTERN);
  });

  it('puts each data schema in components.schemas without its own $id', () => {
    for (const type of TYPES) {
      const schema = doc.components.schemas[componentKey(type)];
      const original = JSON.parse(JSON.stringify(EVENT_DATA_SCHEMAS[type])) as Record<
        string,
        unknown
      >;
      expect(original.$id).toEqual(expect.any(String));
      delete original.$id;
      expect(schema).toEqual(original);
      expect(doc.components.messages[componentKey(type)]?.payload).toMatchObject({
        properties: { data: { $ref: `#/components/schemas/${componentKey(type)}` } },
      });
    }
  });

  describe('message payloads validate envelopes (createAjv on the dereferenced payload)', () => {
    const validatorFor = (type: EventType) => {
      const payload = deref(doc.components.messages[componentKey(type)]!.payload, doc);
      expect(refsIn(payload)).toEqual([]);
      return createAjv().compile(payload as object);
    };

    it.each(TYPES)('%s: accepts a real envelope', (type) => {
      // The sample itself is valid against the hub's own data schema.
      const own = createAjv().compile(EVENT_DATA_SCHEMAS[type]);
      expect(own(structuredClone(SAMPLES[type].data)), JSON.stringify(own.errors)).toBe(true);

      const validate = validatorFor(type);
      const envelope = sampleEnvelope(type);
      expect(validate(envelope), JSON.stringify(validate.errors)).toBe(true);
    });

    it.each(TYPES)('%s: refuses an envelope whose data breaks the schema', (type) => {
      const validate = validatorFor(type);
      const data = SAMPLES[type].data as Record<string, unknown>;

      expect(validate(sampleEnvelope(type, { ...data, unknownField: true }))).toBe(false);
      expect(validate.errors?.some((e) => e.instancePath === '/data')).toBe(true);

      // A field every sample has, set to a value its schema refuses.
      const [field, bad] =
        'version' in data
          ? ['version', 0]
          : 'quantity' in data
            ? ['quantity', 0]
            : 'tokenCount' in data
              ? ['tokenCount', -1]
              : 'contactPoints' in data
                ? ['birthDate', '1987-04-23'] // a clear value where a token belongs
                : ['lines', []];
      expect(validate(sampleEnvelope(type, { ...data, [field]: bad }))).toBe(false);
      expect(validate.errors?.some((e) => e.instancePath === `/data/${field}`)).toBe(true);

      expect(validate(sampleEnvelope(type, 'not an object'))).toBe(false);
    });

    it('refuses a market whose code is not a market code, and an envelope of another type', () => {
      const validate = validatorFor('market.created.v1');
      expect(validate(sampleEnvelope('market.created.v1', { ...MARKET, code: 'germany' }))).toBe(
        false,
      );
      expect(validate.errors?.[0]?.instancePath).toBe('/data/code');

      const other = { ...sampleEnvelope('market.created.v1'), type: 'market.updated.v1' };
      expect(validate(other)).toBe(false);
      expect(validate.errors?.[0]?.instancePath).toBe('/type');
    });
  });

  describe('servers', () => {
    it('has a nats server (default localhost:4222) and the embedded bus', () => {
      expect(doc.servers.nats).toMatchObject({ host: 'localhost:4222', protocol: 'nats' });
      expect(doc.servers.embedded?.description).toMatch(/in-process bus of the embedded shape/);
      expect(Object.keys(doc.servers)).toEqual(['nats', 'embedded']);
    });

    it('takes the NATS host from natsUrl, without credentials, one server per URL', () => {
      const servers = build('nats://nexus:s3cret@nats-1.internal:4223, nats-2.internal').servers;
      expect(servers.nats?.host).toBe('nats-1.internal:4223');
      expect(servers['nats-2']?.host).toBe('nats-2.internal:4222');
      expect(JSON.stringify(servers)).not.toContain('s3cret');
    });

    it('refuses a natsUrl that is not a URL without echoing it', () => {
      expect(() => build('nats://user:s3cret@[bad')).toThrow(/NATS server 1 of natsUrl/);
      expect(() => build('nats://user:s3cret@[bad')).not.toThrow(/s3cret/);
    });
  });

  describe('generic inputs', () => {
    it('rebases local $refs of a data schema and omits registry ids it was not given', () => {
      const schema = {
        $id: 'https://example.test/thing.json',
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: { sku: { $ref: '#/$defs/sku' } },
        $defs: { sku: { type: 'string', minLength: 1 } },
        additionalProperties: false,
      };
      const built = buildAsyncApi({
        version: '0',
        events: {
          'thing.happened.v1': { schema },
          'odd/type.v1': { schema: { type: 'object', properties: { parent: { $ref: '#' } } } },
        },
        envelope: EventEnvelope,
      });
      const stored = built.components.schemas['thing.happened.v1']!;
      expect(stored.$id).toBeUndefined();
      expect(stored.$schema).toBeUndefined();
      expect(stored.properties).toEqual({
        sku: { $ref: '#/components/schemas/thing.happened.v1/$defs/sku' },
      });
      expect(built.components.schemas['odd_type.v1']?.properties).toEqual({
        parent: { $ref: '#/components/schemas/odd_type.v1' },
      });
      for (const ref of refsIn(built)) expect(() => resolveRef(built, ref)).not.toThrow();
      expect(built.components.messages['thing.happened.v1']?.['x-nexus-registry']).toEqual({
        subject: 'thing.happened.v1',
      });
      expect(Object.keys(built.channels)).toEqual(['thing.happened.v1', 'odd_type.v1']);
      expect(built.channels['odd_type.v1']?.address).toBe('nexus.evt.{market}.odd/type.v1');

      const validate = createAjv().compile(
        deref(built.components.schemas['thing.happened.v1'], built) as object,
      );
      expect(validate({ sku: 'A' })).toBe(true);
      expect(validate({ sku: '' })).toBe(false);
    });

    it('refuses an envelope schema without a data property', () => {
      expect(() =>
        buildAsyncApi({ version: '0', events: {}, envelope: { type: 'object', properties: {} } }),
      ).toThrow(/no `data` property/);
    });
  });
});

function refOf(value: unknown): string {
  if (isObject(value) && typeof value.$ref === 'string') return value.$ref;
  throw new Error('not a reference');
}
