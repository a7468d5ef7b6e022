import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHub, type Hub } from '../src/app.js';
import type { Delivery, Subscription } from '../src/platform/bus/bus.js';
import { systemContext } from '../src/platform/context.js';
import { createLogger } from '../src/platform/logging.js';
import { fixtures, startTestHub, type TestHub } from './support/hub.js';
import { NATS_URL, PG_URL, waitFor } from './support/targets.js';

// Two hub instances with their own pools, database sessions and NATS connections, sharing one
// PostgreSQL database and one JetStream stream: what several hub processes see of each other.
describe.runIf(PG_URL && NATS_URL)('several hubs on one PostgreSQL and one NATS', () => {
  let first: TestHub;
  let second: Hub;
  let observer: Subscription;
  const seen: Delivery[] = [];

  const put = (hub: Hub, key: string, brand: string) =>
    hub.server.inject({
      method: 'PUT',
      url: '/v1/products/SHARED',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      payload: JSON.stringify(fixtures.product('SHARED', [{ sku: 'SHARED-1' }], { brand })),
    });

  beforeAll(async () => {
    first = await startTestHub('postgres+nats');
    second = await createHub(first.hub.config, { logger: createLogger({ level: 'silent' }) });
    second.relay.start();
    observer = await second.bus.subscribe(
      { name: 'multi-observer', filter: 'nexus.evt.>' },
      (d) => {
        seen.push(d);
        return Promise.resolve();
      },
    );
  });
  afterAll(async () => {
    await observer.stop();
    await second.close();
    await first.dispose();
  });

  it('has exactly one active relay, and every write from either hub arrives once, in order', async () => {
    await waitFor(() => first.hub.relay.status.leader || second.relay.status.leader);
    expect(
      [first.hub.relay.status.leader, second.relay.status.leader].filter(Boolean),
    ).toHaveLength(1);

    for (let v = 1; v <= 30; v++) {
      const response = await put(v % 2 ? first.hub : second, first.adminKey, `b${v}`);
      expect(response.statusCode).toBeLessThan(300);
    }
    await waitFor(() => seen.length === 30);
    expect(seen.map((d) => (d.envelope.data as { version: number }).version)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    expect(new Set(seen.map((d) => d.eventId)).size).toBe(30);
  });

  it('hands the relay over when the leading hub goes away', async () => {
    const leader = first.hub.relay.status.leader ? first.hub.relay : second.relay;
    const standby = leader === first.hub.relay ? second.relay : first.hub.relay;
    const writeThrough = leader === first.hub.relay ? second : first.hub;
    await leader.stop();
    await waitFor(() => standby.status.leader, { timeoutMs: 5000 });
    const response = await put(writeThrough, first.adminKey, 'after-handover');
    expect(response.statusCode).toBe(200);
    await waitFor(() => seen.length === 31);
    expect((seen[30]!.envelope.data as { version: number }).version).toBe(31);
  });

  /** A registered customer with one email and a name: three personal values. */
  const customerWith = (email: string, given: string, family: string) => (id: string) => ({
    id,
    channelIds: [],
    contactPoints: [{ type: 'email', value: email, verified: true, primary: true }],
    names: { given, family },
    consents: [],
  });

  it('retires tokens an erasure in one hub made unresolvable, though the other hub knew them', async () => {
    const ctx = systemContext('test');
    const customer = customerWith('shared.person@example.com', 'Sam', 'Shared');
    type Tokenized = { contactPoints: Array<{ value: string }> };
    const emailOf = async (hub: Hub, id: string) =>
      (
        (await hub.services.tokenization.prepareInbound(
          'customer.registered.v1',
          customer(id),
        )) as Tokenized
      ).contactPoints[0]!.value;
    // The second hub stores the email's token (and remembers it); the first erases the customer.
    const erased = await emailOf(second, 'C-MULTI-1');
    expect(await emailOf(second, 'C-MULTI-1')).toBe(erased);
    await first.hub.services.tokenization.erase(ctx, 'C-MULTI-1', 'GDPR request 22');
    // A new customer with that email at the second hub gets a new token, which resolves; the
    // erased one stays erased, seen from either hub.
    const renewed = await emailOf(second, 'C-MULTI-2');
    expect(renewed).not.toBe(erased);
    expect(await emailOf(first.hub, 'C-MULTI-3')).toBe(renewed);
    for (const hub of [first.hub, second]) {
      const results = await hub.services.tokenization.detokenize(ctx, [erased, renewed], 'check');
      expect(results.map((r) => (r.ok ? r.value : r.code))).toEqual([
        'TOKEN_ERASED',
        'shared.person@example.com',
      ]);
    }
  });

  it('counts a value issued again after meeting an erased token once', async () => {
    const ctx = systemContext('test');
    const customer = customerWith('counted.once@example.com', 'Cody', 'Counted');
    const counted = async (hub: Hub) => {
      const res = await hub.server.inject({ method: 'GET', url: '/metrics' });
      return [...res.body.matchAll(/^nexus_tokenization_values_total\{[^}]*\} (\d+)$/gm)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    };
    const start = await counted(second);
    await second.services.tokenization.prepareInbound(
      'customer.registered.v1',
      customer('C-CNT-1'),
    );
    const perCustomer = (await counted(second)) - start;
    expect(perCustomer).toBeGreaterThan(0);
    await first.hub.services.tokenization.erase(ctx, 'C-CNT-1', 'GDPR request 24');
    // The second hub's first write meets the erased email token and issues the next epoch's:
    // the customer's values still count once each.
    const before = await counted(second);
    const renewed = (await second.services.tokenization.prepareInbound(
      'customer.registered.v1',
      customer('C-CNT-2'),
    )) as { contactPoints: Array<{ value: string }> };
    expect((await counted(second)) - before).toBe(perCustomer);
    const [check] = await second.services.tokenization.detokenize(
      ctx,
      [renewed.contactPoints[0]!.value],
      'check',
    );
    expect(check?.ok && check.value).toBe('counted.once@example.com');
  });

  it('stops handing out an erased token at once, even where a call names no customer', async () => {
    const value = 'quick.erasure@example.com';
    const registered = customerWith(value, 'Quinn', 'Quick')('C-MULTI-Q');
    const ctx = systemContext('test');
    // The second hub stores the email for the customer and then hands the token out to a call
    // without a customer from memory: within a second of its last look at the database it
    // does not ask again (D26).
    await second.services.tokenization.prepareInbound('customer.registered.v1', registered);
    const erased = await second.services.tokenization.tokenize(value, 'email');
    expect(await second.services.tokenization.tokenize(value, 'email')).toBe(erased);
    await first.hub.services.tokenization.erase(ctx, 'C-MULTI-Q', 'GDPR request 23');
    const erasedAt = Date.now();
    // The erasure's signal reaches the second hub in milliseconds, well inside that second.
    let token = await second.services.tokenization.tokenize(value, 'email');
    while (token === erased && Date.now() - erasedAt < 300) {
      await new Promise((r) => setTimeout(r, 5));
      token = await second.services.tokenization.tokenize(value, 'email');
    }
    expect(token).not.toBe(erased);
    const [check] = await second.services.tokenization.detokenize(ctx, [token], 'check');
    expect(check?.ok && check.value).toBe(value);
  });
});
