import type { Location } from '../model/schemas/location.js';
import type { Product } from '../model/schemas/product.js';

/**
 * What the demo's channel adapters send through `/v1/events`: customers registering in the web
 * shop and the app (clear personal data, which the hub tokenizes at the edge), orders placed
 * with pickup and delivery lines, and POS sales, some of which arrive twice (from the store
 * system and again from the nightly file, under other message ids) for the deduplication
 * service to catch. Deterministic: the same demo every time.
 */

const GIVEN = [
  'Anna',
  'Lukas',
  'Mia',
  'Elias',
  'Sofia',
  'Noah',
  'Emma',
  'Oskar',
  'Olivia',
  'Jonas',
];
const FAMILY = ['Müller', 'Schmidt', 'Andersson', 'Johansson', 'Smith', 'Jones', 'Weber', 'Berg'];
// Residential streets (the stores' business addresses are on others): personal, not public.
const STREETS = ['Lindenweg', 'Ekvägen', 'Rose Lane', 'Amselstieg', 'Björkstigen'];

const MARKETS = [
  { code: 'DE', country: 'DE', currency: 'EUR', phone: '+4930', locale: 'de-DE', city: 'Berlin' },
  { code: 'SE', country: 'SE', currency: 'SEK', phone: '+468', locale: 'sv-SE', city: 'Stockholm' },
  { code: 'GB', country: 'GB', currency: 'GBP', phone: '+4420', locale: 'en-GB', city: 'London' },
] as const;

export interface DemoEnvelope {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  dataschema: string;
  partitionkey: string;
  market: string;
  data: Record<string, unknown>;
}

export interface DemoActivity {
  customers: DemoEnvelope[];
  orders: DemoEnvelope[];
  posSales: DemoEnvelope[];
  /** Clear personal values the demo sent, for checks that none was stored or published. */
  personalValues: string[];
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

export function buildDemoActivity(
  products: readonly Product[],
  locations: readonly Location[],
  options: { customers?: number; orders?: number; sales?: number; now?: Date } = {},
): DemoActivity {
  const now = options.now ?? new Date('2026-11-28T10:00:00Z');
  const at = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000).toISOString();
  let seed = 4242;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const skus = products.flatMap((p) => p.skus.map((s) => s.sku));
  const envelope = (
    id: string,
    source: string,
    type: string,
    subject: string,
    market: string,
    minutesAgo: number,
    data: Record<string, unknown>,
  ): DemoEnvelope => ({
    specversion: '1.0',
    id,
    source,
    type,
    subject,
    time: at(minutesAgo),
    datacontenttype: 'application/json',
    dataschema: `/registry/subjects/${type}/versions/latest`,
    partitionkey: subject,
    market,
    data,
  });

  const personalValues: string[] = [];
  const customers: DemoEnvelope[] = [];
  const customerCount = options.customers ?? 120;
  for (let i = 0; i < customerCount; i++) {
    const market = MARKETS[i % MARKETS.length]!;
    const given = pick(GIVEN);
    const family = pick(FAMILY);
    const email = `${given}.${family}.${i}@example.com`.toLowerCase().replace('ü', 'ue');
    const phone = `${market.phone}${pad(1_000_000 + i * 7919, 7)}`;
    const street = `${pick(STREETS)} ${1 + (i % 120)}`;
    personalValues.push(email, phone, street, `${given} ${family}`);
    const channel = i % 2 === 0 ? 'web' : 'app';
    customers.push(
      envelope(
        `demo-customer-${pad(i, 5)}`,
        `//${channel}/${market.code.toLowerCase()}`,
        'customer.registered.v1',
        `customer/C-${pad(i, 6)}`,
        market.code,
        600 - i,
        {
          id: `C-${pad(i, 6)}`,
          channelIds: [{ channel, externalId: `${channel}-${pad(i, 6)}`, marketCode: market.code }],
          contactPoints: [
            { type: 'email', value: email, verified: true, primary: true },
            { type: 'phone', value: phone, verified: false, primary: true },
            {
              type: 'address',
              address: {
                line1: street,
                postalCode: pad(10000 + i, 5),
                city: market.city,
                country: market.country,
              },
              verified: false,
              primary: true,
            },
          ],
          names: { given, family },
          preferredLocale: market.locale,
          marketCode: market.code,
          consents: [{ purpose: 'terms', granted: true, at: at(600 - i), channel }],
        },
      ),
    );
  }

  const orders: DemoEnvelope[] = [];
  const orderCount = options.orders ?? 150;
  for (let i = 0; i < orderCount; i++) {
    const customer = i % customerCount;
    const market = MARKETS[customer % MARKETS.length]!;
    const stores = locations.filter((l) => l.marketCode === market.code && l.type === 'store');
    const sku = pick(skus);
    const price = `${20 + (i % 80)}.${pad(i % 100, 2)}`;
    const pickup = i % 3 === 0;
    const customerData = customers[customer]!.data as {
      contactPoints: Array<{ type: string; address?: Record<string, string> }>;
    };
    const address = customerData.contactPoints.find((c) => c.type === 'address')!.address!;
    const money = (amount: string) => ({ currency: market.currency, amount });
    orders.push(
      envelope(
        `demo-order-${pad(i, 5)}`,
        `//web/${market.code.toLowerCase()}`,
        'order.placed.v1',
        `order/O-${pad(i, 6)}`,
        market.code,
        300 - i,
        {
          id: `O-${pad(i, 6)}`,
          marketCode: market.code,
          channel: 'web',
          customerId: `C-${pad(customer, 6)}`,
          currency: market.currency,
          placedAt: at(300 - i),
          status: 'placed',
          lines: [
            {
              lineId: '1',
              sku,
              quantity: 1,
              unitPrice: money(price),
              lineTotal: money(price),
              delivery: pickup
                ? { mode: 'pickup-in-store', locationId: pick(stores).id }
                : { mode: 'ship-to-address', address },
            },
          ],
          totals: {
            subtotal: money(price),
            shipping: money('0.00'),
            tax: money('0.00'),
            grandTotal: money(price),
          },
          externalReferences: [
            { system: `shop-${market.code.toLowerCase()}`, id: `W-${pad(i, 6)}` },
          ],
        },
      ),
    );
  }

  const posSales: DemoEnvelope[] = [];
  const saleCount = options.sales ?? 200;
  for (let i = 0; i < saleCount; i++) {
    const store = locations.filter((l) => l.type === 'store')[i % 60]!;
    const market = MARKETS.find((m) => m.code === store.marketCode)!;
    const price = `${10 + (i % 50)}.00`;
    const data = {
      locationId: store.id,
      terminalId: `T${1 + (i % 3)}`,
      transactionNumber: pad(10_000 + i, 6),
      businessDate: now.toISOString().slice(0, 10),
      occurredAt: at(200 - i / 2),
      currency: market.currency,
      lines: [
        {
          sku: pick(skus),
          quantity: 1,
          unitPrice: { currency: market.currency, amount: price },
        },
      ],
      total: { currency: market.currency, amount: price },
    };
    const subject = `pos-sale/${store.id}/${data.terminalId}/${data.transactionNumber}`;
    posSales.push(
      envelope(
        `pos-${store.id}-${i}`,
        `//pos/${store.id}`,
        'pos.sale.recorded.v1',
        subject,
        market.code,
        200 - i / 2,
        data,
      ),
    );
    // Every tenth sale comes again from the nightly file: same sale, another message id.
    if (i % 10 === 0) {
      posSales.push(
        envelope(
          `nightly-${store.id}-${i}`,
          '//legacy/nightly-file',
          'pos.sale.recorded.v1',
          subject,
          market.code,
          1,
          data,
        ),
      );
    }
  }
  return { customers, orders, posSales, personalValues };
}
