import { describe, it, expect } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Location } from '../model/schemas/location.js';
import { Market } from '../model/schemas/market.js';
import { Product } from '../model/schemas/product.js';
import { CURRENCY_DECIMALS, buildDemoRetailer, gtin13 } from './demo-data.js';

/** Rough bounding boxes (lat/lon) of the demo countries, mainland plus islands. */
const BOUNDS: Record<string, { lat: [number, number]; lon: [number, number] }> = {
  DE: { lat: [47.2, 55.1], lon: [5.8, 15.1] },
  SE: { lat: [55.3, 69.1], lon: [10.9, 24.2] },
  GB: { lat: [49.8, 60.9], lon: [-8.7, 1.8] },
};

/** Independent GTIN check: weights 3,1,3,... from the right, total divisible by 10. */
function validGtin(gtin: string): boolean {
  if (!/^[0-9]{13}$/.test(gtin)) return false;
  const sum = [...gtin]
    .reverse()
    .reduce((acc, digit, i) => acc + Number(digit) * (i % 2 === 0 ? 1 : 3), 0);
  return sum % 10 === 0;
}

function makeAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true });
  // ajv-formats is CommonJS; under NodeNext its plugin is typed as the `default` member (which
  // the package also sets at run time, pointing at itself).
  addFormats.default(ajv);
  ajv.addKeyword('x-pii');
  ajv.addFormat('iana-time-zone', true);
  ajv.addFormat('gtin', true);
  return ajv;
}

describe('buildDemoRetailer', () => {
  const demo = buildDemoRetailer();
  const skus = demo.products.flatMap((p) => p.skus);
  const stores = demo.locations.filter((l) => l.type === 'store');
  const warehouses = demo.locations.filter((l) => l.type === 'warehouse');

  it('has 3 markets with 3 distinct currencies', () => {
    expect(demo.markets).toHaveLength(3);
    expect(new Set(demo.markets.map((m) => m.currency))).toEqual(new Set(['EUR', 'SEK', 'GBP']));
    expect(new Set(demo.markets.map((m) => m.code)).size).toBe(3);
  });

  it('has about 60 stores and exactly 2 warehouses, with unique ids', () => {
    expect(stores.length).toBeGreaterThanOrEqual(55);
    expect(stores.length).toBeLessThanOrEqual(65);
    expect(warehouses).toHaveLength(2);
    expect(new Set(demo.locations.map((l) => l.id)).size).toBe(demo.locations.length);
    for (const store of stores) expect(store.id).toMatch(/^(DE|SE|GB)-[A-Z]{3}-\d{3}$/);
  });

  it('puts every location in a known market, inside that country', () => {
    const markets = new Map(demo.markets.map((m) => [m.code, m]));
    for (const location of demo.locations) {
      const market = markets.get(location.marketCode);
      expect(market, location.id).toBeDefined();
      expect(location.timeZone).toBe(market?.timeZone);
      const box = BOUNDS[market?.country ?? ''];
      expect(box, location.id).toBeDefined();
      if (!box) continue;
      expect(location.geo.lat).toBeGreaterThanOrEqual(box.lat[0]);
      expect(location.geo.lat).toBeLessThanOrEqual(box.lat[1]);
      expect(location.geo.lon).toBeGreaterThanOrEqual(box.lon[0]);
      expect(location.geo.lon).toBeLessThanOrEqual(box.lon[1]);
    }
  });

  it('gives stores in one city distinct coordinates', () => {
    const seen = new Set(demo.locations.map((l) => `${l.geo.lat},${l.geo.lon}`));
    expect(seen.size).toBe(demo.locations.length);
  });

  it('gives every store pickup and returns, and some of them ship and negative stock', () => {
    for (const store of stores) {
      expect(store.capabilities).toEqual(expect.arrayContaining(['pickup', 'returns']));
      expect(store.capacity.ordersPerHour).toBeGreaterThanOrEqual(10);
      expect(store.capacity.ordersPerHour).toBeLessThanOrEqual(60);
      expect(store.openingHours?.length).toBeGreaterThanOrEqual(6);
    }
    const shipping = stores.filter((s) => s.capabilities.includes('ship')).length;
    expect(shipping / stores.length).toBeCloseTo(0.5, 1);
    const offline = stores.filter((s) => s.allowNegativeStock === true).length;
    expect(offline / stores.length).toBeCloseTo(1 / 3, 1);
    const berlin = stores.find((s) => s.id === 'DE-BER-001');
    expect(berlin?.openingHours?.some((h) => h.day === 'sun')).toBe(false);
    for (const warehouse of warehouses) {
      expect(warehouse.capabilities).toContain('ship');
      expect(warehouse.capacity.ordersPerHour).toBeGreaterThanOrEqual(2000);
      expect(warehouse.capacity.ordersPerHour).toBeLessThanOrEqual(5000);
    }
  });

  it('produces about skuTarget SKUs with unique codes', () => {
    expect(skus.length).toBeGreaterThanOrEqual(1900);
    expect(skus.length).toBeLessThanOrEqual(2100);
    expect(new Set(skus.map((s) => s.sku)).size).toBe(skus.length);
    expect(new Set(demo.products.map((p) => p.id)).size).toBe(demo.products.length);
    for (const product of demo.products) {
      expect(product.id).toMatch(/^P-\d{6}$/);
      expect(product.skus.length).toBeGreaterThanOrEqual(2);
      expect(product.skus.length).toBeLessThanOrEqual(12);
      expect(Object.keys(product.name).sort()).toEqual(['de-DE', 'en-GB', 'sv-SE']);
      for (const sku of product.skus) expect(sku.sku.startsWith(`${product.id}-`)).toBe(true);
    }
  });

  it('honours other SKU targets', () => {
    for (const skuTarget of [50, 500, 5000]) {
      const count = buildDemoRetailer({ skuTarget }).products.flatMap((p) => p.skus).length;
      expect(Math.abs(count - skuTarget)).toBeLessThanOrEqual(skuTarget * 0.05);
    }
  });

  it('gives every SKU a unique GTIN-13 with a valid check digit', () => {
    const gtins = skus.map((s) => s.gtin ?? '');
    expect(new Set(gtins).size).toBe(skus.length);
    for (const gtin of gtins) expect(validGtin(gtin), gtin).toBe(true);
  });

  it('computes GTIN-13 check digits', () => {
    expect(gtin13(400638133393)).toBe('4006381333931');
    expect(gtin13(590123412345)).toBe('5901234123457');
    expect(gtin13(0)).toBe('0000000000000');
    expect(() => gtin13(1e12)).toThrow(RangeError);
    expect(() => gtin13(-1)).toThrow(RangeError);
  });

  it('prices every SKU in every market with the currency decimals', () => {
    const currencyOf = new Map(demo.markets.map((m) => [m.code, m.currency]));
    for (const sku of skus) {
      expect(sku.prices?.map((p) => p.marketCode).sort()).toEqual(['DE', 'GB', 'SE']);
      for (const { marketCode, price } of sku.prices ?? []) {
        expect(price.currency).toBe(currencyOf.get(marketCode));
        const decimals = CURRENCY_DECIMALS[price.currency] ?? -1;
        expect(price.amount).toMatch(new RegExp(`^[1-9][0-9]*\\.[0-9]{${decimals}}$`));
      }
    }
    const sample = skus[0]?.prices ?? [];
    expect(sample.find((p) => p.price.currency === 'EUR')?.price.amount).toMatch(/\.95$/);
    expect(sample.find((p) => p.price.currency === 'SEK')?.price.amount).toMatch(/9\.00$/);
    expect(sample.find((p) => p.price.currency === 'GBP')?.price.amount).toMatch(/\.99$/);
  });

  it('validates against the canonical schemas', () => {
    const ajv = makeAjv();
    const checks = [
      { validate: ajv.compile(Market), items: demo.markets },
      { validate: ajv.compile(Location), items: demo.locations },
      { validate: ajv.compile(Product), items: demo.products },
    ];
    for (const { validate, items } of checks) {
      for (const item of items) {
        if (!validate(item)) expect.fail(ajv.errorsText(validate.errors));
      }
    }
  });

  it('is deterministic for a seed and varies with the seed', () => {
    expect(buildDemoRetailer({ seed: 7 })).toEqual(buildDemoRetailer({ seed: 7 }));
    expect(JSON.stringify(buildDemoRetailer({ seed: 7 }))).toBe(
      JSON.stringify(buildDemoRetailer({ seed: 7 })),
    );
    expect(buildDemoRetailer({ seed: 8 })).not.toEqual(buildDemoRetailer({ seed: 7 }));
    expect(buildDemoRetailer()).toEqual(demo);
  });

  it('keeps the stores when only the SKU target changes', () => {
    expect(buildDemoRetailer({ skuTarget: 100 }).locations).toEqual(demo.locations);
  });
});
