import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHub, type Hub } from '../src/app.js';
import { seedDemo } from '../src/cli/demo.js';
import { buildDemoActivity } from '../src/cli/demo-customers.js';
import { buildDemoRetailer } from '../src/cli/demo-data.js';
import { loadConfig } from '../src/platform/config.js';
import { systemContext } from '../src/platform/context.js';
import { createLogger } from '../src/platform/logging.js';
import { waitFor } from './support/targets.js';

/**
 * Personal data never rests in clear: run the demo (customers and orders with names, e-mail
 * addresses, phone numbers and postal addresses go through the edge), add a broken customer
 * event that ends in the dead-letter store, then read every text column of every table, the
 * bus, every log line and /metrics, and look for each clear value the channels sent.
 */
describe('no personal data in clear after the demo', () => {
  let dir: string;
  let hub: Hub;
  const logLines: string[] = [];
  const personal = buildDemoActivity(
    buildDemoRetailer({ skuTarget: 60 }).products,
    buildDemoRetailer({ skuTarget: 60 }).locations,
  ).personalValues;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-pii-'));
    const config = loadConfig({
      env: { NEXUS_SQLITE_FILE: join(dir, 'nexus.db') },
      overrides: (raw) => {
        raw.http = { port: 0 };
      },
    });
    hub = await createHub(config, {
      logger: createLogger({
        level: 'trace',
        destination: { write: (line: string) => void logLines.push(line) },
      }),
    });
    hub.relay.start();
    await seedDemo(hub, systemContext('test'), () => undefined, { skuTarget: 60 });
    // A customer event that breaks its schema (birth date not a date) with clear values in it.
    const broken = {
      specversion: '1.0',
      id: 'broken-1',
      source: '//web/de',
      type: 'customer.registered.v1',
      subject: 'customer/C-BROKEN',
      time: '2026-11-28T10:00:00Z',
      datacontenttype: 'application/json',
      dataschema: '/registry/subjects/customer.registered.v1/versions/latest',
      partitionkey: 'customer/C-BROKEN',
      market: 'DE',
      data: {
        id: 'C-BROKEN',
        channelIds: [],
        contactPoints: [
          { type: 'email', value: 'secret.person@example.org', verified: true, primary: true },
        ],
        names: { given: 'Geheimnis', family: 'Person' },
        birthDate: 'yesterday',
        consents: [],
        nickname: 'Secret Nick',
      },
    };
    const report = await hub.services.ingest.ingestBatch(systemContext('test'), [broken]);
    expect(report.rejected).toHaveLength(1);
    personal.push('secret.person@example.org', 'Geheimnis', 'Secret Nick');
    await waitFor(async () => {
      const { rows } = await sql<{
        n: number;
      }>`select count(*) as n from outbox where published_at is null`.execute(hub.storage.db);
      return Number(rows[0]!.n) === 0;
    });
  }, 120_000);
  afterAll(async () => {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores and publishes only tokens', async () => {
    const db = hub.storage.db;
    const { rows: tables } = await sql<{ name: string }>`select name from sqlite_master
      where type = 'table' and name not like 'sqlite_%'`.execute(db);
    const found: string[] = [];
    let cells = 0;
    for (const { name } of tables) {
      const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(
        db,
      );
      for (const row of rows) {
        for (const [column, value] of Object.entries(row)) {
          if (typeof value !== 'string') continue;
          cells++;
          for (const clear of personal) {
            if (value.includes(clear)) found.push(`${name}.${column}: ${clear}`);
          }
        }
      }
    }
    expect(cells).toBeGreaterThan(10_000);
    expect(found).toEqual([]);
    // The demo did carry personal data, as tokens.
    const { rows } = await sql<{ envelope: string }>`select envelope from bus_messages
      where envelope like '%customer.registered.v1%' limit 1`.execute(db);
    expect(rows[0]!.envelope).toMatch(/tok_/);
  });

  it('logs and metrics hold none either', async () => {
    const metrics = await hub.server.inject({ method: 'GET', url: '/metrics' });
    const text = [...logLines, metrics.body].join('\n');
    expect(logLines.length).toBeGreaterThan(0);
    expect(personal.filter((clear) => text.includes(clear))).toEqual([]);
  });
});
