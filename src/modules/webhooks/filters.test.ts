import { describe, expect, it } from 'vitest';
import { backoffDelay } from './dispatcher.js';
import { eventTypeMatches, matchesEvent, subjectFilterProblem } from './filters.js';

describe('webhook filters', () => {
  it('matches event types exactly or by * patterns', () => {
    expect(eventTypeMatches('inventory.level.changed.v1', 'inventory.level.changed.v1')).toBe(true);
    expect(eventTypeMatches('inventory.level.changed.v1', 'inventory.level.changed.v2')).toBe(
      false,
    );
    expect(eventTypeMatches('product.*', 'product.updated.v1')).toBe(true);
    expect(eventTypeMatches('product.*', 'productx.updated.v1')).toBe(false);
    expect(eventTypeMatches('product.*', 'inventory.level.changed.v1')).toBe(false);
    expect(eventTypeMatches('*.v2', 'market.created.v2')).toBe(true);
    expect(eventTypeMatches('*', 'anything.at.all.v1')).toBe(true);
    // '.' in a pattern is a dot, not any character.
    expect(eventTypeMatches('market.created.v1', 'marketXcreated.v1')).toBe(false);
  });

  it('combines types, subject and markets; events without a market pass a market list', () => {
    const de = { type: 'market.updated.v1', market: 'DE' };
    const global = { type: 'product.updated.v1' };
    const subject = (e: { type: string; market?: string }) =>
      `nexus.evt.${e.market ?? 'global'}.${e.type}`;
    const filter = { eventTypes: ['market.*', 'product.*'], subjectFilter: null, markets: ['DE'] };
    expect(matchesEvent(filter, de, subject(de))).toBe(true);
    expect(matchesEvent(filter, { ...de, market: 'SE' }, subject({ ...de, market: 'SE' }))).toBe(
      false,
    );
    expect(matchesEvent(filter, global, subject(global))).toBe(true);
    const bySubject = { eventTypes: null, subjectFilter: 'nexus.evt.DE.>', markets: null };
    expect(matchesEvent(bySubject, de, subject(de))).toBe(true);
    expect(matchesEvent(bySubject, global, subject(global))).toBe(false);
    const both = { eventTypes: ['product.*'], subjectFilter: 'nexus.evt.DE.>', markets: null };
    expect(matchesEvent(both, de, subject(de))).toBe(false);
  });

  it('lets an availability subscription see only stock changes of its market, SKUs and locations', () => {
    const filter = {
      eventTypes: null,
      subjectFilter: null,
      markets: null,
      availability: {
        marketCode: 'DE',
        skus: new Set(['A']),
        locationIds: new Set(['S1']),
      },
    };
    type Level = { type: string; market?: string; data: unknown };
    const level = (market: string | undefined, sku: string, locationId: string): Level => ({
      type: 'inventory.level.changed.v1',
      ...(market === undefined ? {} : { market }),
      data: { sku, locationId },
    });
    const judge = (e: Level) =>
      matchesEvent(filter, e, `nexus.evt.${e.market ?? 'global'}.${e.type}`);
    expect(judge(level('DE', 'A', 'S1'))).toBe(true);
    expect(judge(level('SE', 'A', 'S1'))).toBe(false);
    expect(judge(level(undefined, 'A', 'S1'))).toBe(false);
    expect(judge(level('DE', 'B', 'S1'))).toBe(false);
    expect(judge(level('DE', 'A', 'S2'))).toBe(false);
    expect(judge({ ...level('DE', 'A', 'S1'), type: 'inventory.reservation.created.v1' })).toBe(
      false,
    );
    const everything = { ...filter, availability: { ...filter.availability, skus: null } };
    expect(matchesEvent(everything, level('DE', 'Z', 'S1'), 'nexus.evt.DE.x')).toBe(true);
  });

  it('accepts only subject filters under nexus.evt with whole-token wildcards', () => {
    expect(subjectFilterProblem('nexus.evt.>')).toBeNull();
    expect(subjectFilterProblem('nexus.evt.*.inventory.>')).toBeNull();
    expect(subjectFilterProblem('nexus.evt.DE.market.created.v1')).toBeNull();
    expect(subjectFilterProblem('nexus.>')).not.toBeNull();
    expect(subjectFilterProblem('nexus.evt')).not.toBeNull();
    expect(subjectFilterProblem('nexus.evt.>.DE')).not.toBeNull();
    expect(subjectFilterProblem('nexus.evt.D*')).not.toBeNull();
    expect(subjectFilterProblem('nexus.evt..x')).not.toBeNull();
  });
});

describe('webhook retry backoff', () => {
  const options = { backoffBaseMs: 10_000, maxBackoffMs: 6 * 60 * 60 * 1000 };
  const exact = (n: number) => backoffDelay(n, options, () => 0.5);

  it('grows 10 s, 30 s, 2 min, 10 min, 1 h, then doubles up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9].map(exact)).toEqual([
      10_000, 30_000, 120_000, 600_000, 3_600_000, 7_200_000, 14_400_000, 21_600_000, 21_600_000,
    ]);
  });

  it('jitters by +-20 %', () => {
    expect(backoffDelay(2, options, () => 0)).toBe(24_000);
    expect(backoffDelay(2, options, () => 1)).toBe(36_000);
  });
});
