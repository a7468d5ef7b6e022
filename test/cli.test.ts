import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHub } from '../src/app.js';
import { runCli } from '../src/cli/main.js';
import { systemContext } from '../src/platform/context.js';
import { openQuietHub } from './support/hub.js';

/** Runs the CLI in-process with captured output and a given environment. */
async function cli(
  argv: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string[]; err: string[]; progress: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const progress: string[] = [];
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const code = await runCli(argv, createHub, {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      progress: (text) => progress.push(text),
    });
    return { code, out, err, progress };
  } finally {
    for (const key of Object.keys(env)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

describe('nexus CLI', () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-cli-'));
    env = { NEXUS_SQLITE_FILE: join(dir, 'nexus.db'), NEXUS_LOG_LEVEL: 'silent' };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints usage', async () => {
    const r = await cli(['--help'], env);
    expect(r.code).toBe(0);
    expect(r.out.join('\n')).toContain('nexus keys create');
  });

  it('stops on a bad configuration value with one line naming it', async () => {
    const r = await cli(['migrate'], { ...env, NEXUS_PORT: '70000' });
    expect(r.code).toBe(2);
    expect(r.err).toEqual([
      'nexus: invalid configuration: http.port must be <= 65535 (from NEXUS_PORT=70000)',
    ]);

    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'http:\n  port: nine\n');
    const fromFile = await cli(['migrate', '--config', file], env);
    expect(fromFile.code).toBe(2);
    expect(fromFile.err).toHaveLength(1);
    expect(fromFile.err[0]).toMatch(
      /^nexus: invalid configuration: http\.port must be integer \(in .*bad\.yaml\)$/,
    );

    writeFileSync(
      file,
      "bus:\n  kind: nats\n  url: nats://127.0.0.1:4222\n  subjectPrefix: 'a..b'\n",
    );
    const union = await cli(['migrate', '--config', file], env);
    expect(union.err[0]).toMatch(
      /^nexus: invalid configuration: bus\.subjectPrefix must match pattern/,
    );

    writeFileSync(file, 'http: [1, 2');
    const yaml = await cli(['migrate', '--config', file], env);
    expect(yaml.err[0]).toMatch(/^nexus: configuration file .* is not valid YAML/);
  });

  it('refuses unknown commands and options with one line', async () => {
    expect((await cli(['launch'], env)).err).toEqual([
      "nexus: unknown command 'launch' (see nexus --help)",
    ]);
    const r = await cli(['start', '--colour'], env);
    expect(r.code).toBe(2);
    expect(r.err[0]).toContain("Unknown option '--colour'");
  });

  it('migrates, seeds the demo with keys shown once, and manages keys', async () => {
    expect((await cli(['migrate'], env)).out[0]).toContain('migrated to the latest version');

    const demo = await cli(['demo', '--skus', '60'], env);
    expect(demo.code).toBe(0);
    expect(demo.out[0]).toMatch(
      /^Seeded 3 markets, 60 stores, 2 warehouses, \d+ products with 60 SKUs, opening stock on \d+ SKU-locations; \d+ customer, order and POS events ingested \(\d+ duplicates caught\)\.$/,
    );
    const secrets = demo.out.join('\n').match(/nx_[a-z0-9]{8}_[A-Za-z0-9_-]{43}/g) ?? [];
    expect(secrets).toHaveLength(5);

    const created = await cli(
      [
        'keys',
        'create',
        '--name',
        'dk web',
        '--channel',
        'web',
        '--scopes',
        'catalog:read',
        '--markets',
        'DE',
      ],
      env,
    );
    expect(created.code).toBe(0);
    const id = /Created key ([a-f0-9]{8})/.exec(created.out[0]!)![1]!;
    expect(created.out[1]).toMatch(/^Secret \(shown once\): nx_/);

    const listed = await cli(['keys', 'list'], env);
    expect(listed.out).toHaveLength(6);
    expect(listed.out.join('\n')).not.toMatch(/nx_[a-z0-9]{8}_[A-Za-z0-9_-]{43}/);

    expect((await cli(['keys', 'revoke', id], env)).out).toEqual([`Revoked key ${id}.`]);
    expect((await cli(['keys', 'list'], env)).out).toHaveLength(5);
    expect((await cli(['keys', 'list', '--all'], env)).out.join('\n')).toContain('revoked');
    const again = await cli(['keys', 'revoke', id], env);
    expect(again.code).toBe(1);
    expect(again.err[0]).toContain('does not exist');

    const badScope = await cli(
      ['keys', 'create', '--name', 'x', '--channel', 'web', '--scopes', 'everything'],
      env,
    );
    expect(badScope.code).toBe(2);
    expect(badScope.err[0]).toContain('unknown scope(s): everything');
  });
});

describe('nexus inventory import', () => {
  const ctx = systemContext('test');
  let dir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-cli-inv-'));
    env = { NEXUS_SQLITE_FILE: join(dir, 'nexus.db'), NEXUS_LOG_LEVEL: 'silent' };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reconciles a legacy snapshot as cycle counts and reports rejected rows with reasons', async () => {
    expect((await cli(['demo', '--skus', '60'], env)).code).toBe(0);
    // What the demo stocked at the first warehouse, from the record itself.
    const hub = await openQuietHub({ NEXUS_SQLITE_FILE: env.NEXUS_SQLITE_FILE! });
    const warehouse = (
      await hub.services.locations.list(ctx, { limit: 500, filters: { type: 'warehouse' } })
    ).items[0]!.id;
    const levels = (await hub.services.inventory.levelsAt(ctx, warehouse, 3)).items;
    await hub.close();
    const [a, b, c] = levels;
    const file = join(dir, 'snapshot.csv');
    writeFileSync(
      file,
      [
        'SKU;Store;Qty',
        `${a!.sku};${warehouse};${a!.onHand}`,
        `${b!.sku};${warehouse};${b!.onHand - 3}`,
        `${c!.sku};${warehouse};"${c!.onHand + 1}"`,
        `${a!.sku};${warehouse};5`,
        `NOPE-1;${warehouse};4`,
        `${a!.sku};NOWHERE;4`,
        `${b!.sku};${warehouse};-2`,
        `${b!.sku};${warehouse};two`,
        '',
      ].join('\n'),
    );
    const r = await cli(['inventory', 'import', file, '--reference', 'legacy-2026-11-28'], env);
    expect(r.code).toBe(3);
    expect(r.out[0]).toBe(
      `Imported ${file}: 8 rows; 1 matched the book, 2 corrected (4 units off in all), 5 rejected.`,
    );
    expect(r.err.slice(0, 5)).toEqual([
      `  line 5: ${a!.sku} at ${warehouse} is on line 2 already`,
      "  line 6: unknown SKU 'NOPE-1'",
      "  line 7: unknown location 'NOWHERE'",
      "  line 8: quantity '-2' is not a whole number of units (0 or more)",
      "  line 9: quantity 'two' is not a whole number of units (0 or more)",
    ]);
    const rejected = readFileSync(`${file}.rejected.csv`, 'utf8').trim().split('\n');
    expect(rejected).toHaveLength(6);
    expect(rejected[2]).toBe(`6,"unknown SKU 'NOPE-1'","NOPE-1;${warehouse};4"`);

    // A quoted field may span lines (a legacy export's free-text column): one record, and
    // the lines after it keep their own numbers.
    const multiline = join(dir, 'multiline.csv');
    writeFileSync(
      multiline,
      [
        'sku,location_id,quantity,note',
        `${a!.sku},${warehouse},${a!.onHand},"shelf 4,\nback ""left"" corner"`,
        `NOPE-2,${warehouse},1,`,
        '',
      ].join('\r\n'),
    );
    const m = await cli(['inventory', 'import', multiline], env);
    expect(m.out[0]).toBe(
      `Imported ${multiline}: 2 rows; 1 matched the book, 0 corrected (0 units off in all), 1 rejected.`,
    );
    expect(m.err[0]).toBe("  line 4: unknown SKU 'NOPE-2'");
    expect(m.progress.filter((p) => p.startsWith('['))).toEqual([
      '[..............................] 0/2 rows',
      '[##############################] 2/2 rows',
    ]);

    const noColumn = join(dir, 'bad.csv');
    writeFileSync(noColumn, 'sku,amount\nA,1\n');
    const bad = await cli(['inventory', 'import', noColumn], env);
    expect(bad.code).toBe(2);
    expect(bad.err).toHaveLength(1);
    expect(bad.err[0]).toContain('the header has no location column');
  });

  it('with --full counts what the record holds at the locations of the file but the file leaves out as none', async () => {
    const hub = await openQuietHub({ NEXUS_SQLITE_FILE: env.NEXUS_SQLITE_FILE! });
    const stores = (
      await hub.services.locations.list(ctx, { limit: 500, filters: { type: 'store' } })
    ).items.map((l) => l.id);
    const [store, other] = stores;
    const before = (await hub.services.inventory.levelsAt(ctx, store!, 1000)).items;
    const otherBefore = (await hub.services.inventory.levelsAt(ctx, other!, 1000)).items;
    await hub.close();
    const stocked = before.filter((l) => l.onHand !== 0);
    expect(stocked.length).toBeGreaterThan(3);
    const [listed, ...left] = stocked;

    const file = join(dir, 'full.csv');
    writeFileSync(file, `sku,location_id,quantity\n${listed!.sku},${store},${listed!.onHand}\n`);
    const r = await cli(['inventory', 'import', file, '--full'], env);
    expect(r.code).toBe(0);
    const units = left.reduce((n, l) => n + Math.abs(l.onHand), 0);
    expect(r.out[0]).toBe(
      `Imported ${file}: 1 rows; 1 matched the book, 0 corrected (${units} units off in all), 0 rejected; ` +
        `${left.length} items on the record but not in the file counted as none.`,
    );
    expect(r.progress.filter((p) => p.startsWith('[')).at(-1)).toBe(
      `[##############################] ${1 + left.length}/${1 + left.length} rows`,
    );

    const again = await openQuietHub({ NEXUS_SQLITE_FILE: env.NEXUS_SQLITE_FILE! });
    try {
      const levels = async (id: string) =>
        new Map(
          (await again.services.inventory.levelsAt(ctx, id, 1000)).items.map((l) => [
            l.sku,
            l.onHand,
          ]),
        );
      const after = await levels(store!);
      expect(after.get(listed!.sku)).toBe(listed!.onHand);
      for (const l of left) expect(after.get(l.sku)).toBe(0);
      // A location the file does not cover keeps its stock.
      expect(await levels(other!)).toEqual(new Map(otherBefore.map((l) => [l.sku, l.onHand])));
    } finally {
      await again.close();
    }
  });
});

describe('nexus schema', () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-cli-schema-'));
    env = { NEXUS_SQLITE_FILE: join(dir, 'nexus.db'), NEXUS_LOG_LEVEL: 'silent' };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('checks a proposed change, shows the reasons, and registers only what is compatible', async () => {
    const v1 = join(dir, 'v1.json');
    const v2bad = join(dir, 'v2-bad.json');
    const v2ok = join(dir, 'v2-ok.json');
    writeFileSync(
      v1,
      JSON.stringify({
        type: 'object',
        properties: { a: { type: 'string' } },
        additionalProperties: false,
      }),
    );
    writeFileSync(
      v2bad,
      JSON.stringify({ type: 'object', properties: {}, additionalProperties: false }),
    );
    writeFileSync(
      v2ok,
      JSON.stringify({
        type: 'object',
        properties: { a: { type: 'string' }, b: { type: 'integer' } },
        additionalProperties: false,
      }),
    );

    const first = await cli(
      ['schema', 'register', '--subject', 'pos-sale-value', '--file', v1],
      env,
    );
    expect(first.out).toHaveLength(1);
    expect(first.out[0]).toMatch(
      /^Registered pos-sale-value version 1 \(schema id \d+\) under BACKWARD_TRANSITIVE\.$/,
    );

    const bad = await cli(['schema', 'check', '--subject', 'pos-sale-value', '--file', v2bad], env);
    expect(bad.code).toBe(3);
    expect(bad.out[0]).toBe('INCOMPATIBLE with subject pos-sale-value under BACKWARD_TRANSITIVE');
    expect(bad.out[1]).toContain('PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL');
    const refused = await cli(
      ['schema', 'register', '--subject', 'pos-sale-value', '--file', v2bad],
      env,
    );
    expect(refused.code).toBe(1);
    expect(refused.err[0]).toMatch(/^nexus: Schema being registered is incompatible/);

    const ok = await cli(['schema', 'check', '--subject', 'pos-sale-value', '--file', v2ok], env);
    expect(ok).toMatchObject({
      code: 0,
      out: ['compatible with subject pos-sale-value under BACKWARD_TRANSITIVE'],
    });
    const registered = await cli(
      ['schema', 'register', '--subject', 'pos-sale-value', '--file', v2ok],
      env,
    );
    expect(registered.out[0]).toMatch(/^Registered pos-sale-value version 2 /);

    const missing = await cli(
      ['schema', 'check', '--subject', 'x', '--file', join(dir, 'nope.json')],
      env,
    );
    expect(missing.code).toBe(2);
    expect(missing.err[0]).toMatch(/^nexus: cannot read /);
  });
});

describe('nexus and deduplication rules', () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-cli-dedup-'));
    env = { NEXUS_SQLITE_FILE: join(dir, 'nexus.db'), NEXUS_LOG_LEVEL: 'silent' };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const config = (key: string) => {
    const file = join(dir, 'nexus.config.yaml');
    writeFileSync(
      file,
      [
        'dedup:',
        '  rules:',
        '    - name: legacy-sale',
        '      eventType: legacy.sale.recorded.v1',
        `      key: [/market, ${key}]`,
        '      window: 7d',
        '      action: drop',
        '',
      ].join('\n'),
    );
    return file;
  };

  it('stops on a rule that could never fire with one line; `schema register` mends an unknown type', async () => {
    const file = config('/data/store');
    const unknown = await cli(['migrate', '--config', file], env);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toEqual([
      "nexus: invalid configuration: dedup.rules.0.eventType: rule 'legacy-sale' is for " +
        "'legacy.sale.recorded.v1', which is neither a canonical event type nor registered in the " +
        "schema registry, so it would never apply (register the type's schema first)",
    ]);

    // Registering the type's schema is not refused for the rule that waits for it.
    const schema = join(dir, 'legacy-sale.json');
    writeFileSync(
      schema,
      JSON.stringify({
        type: 'object',
        properties: { store: { type: 'string' }, receipt: { type: 'integer' } },
        required: ['store', 'receipt'],
        additionalProperties: false,
      }),
    );
    const registered = await cli(
      [
        'schema',
        'register',
        '--config',
        file,
        '--subject',
        'legacy.sale.recorded.v1',
        '--file',
        schema,
      ],
      env,
    );
    expect(registered.code).toBe(0);
    expect((await cli(['migrate', '--config', file], env)).code).toBe(0);

    const typo = await cli(['migrate', '--config', config('/data/stor')], env);
    expect(typo.code).toBe(2);
    expect(typo.err).toEqual([
      "nexus: invalid configuration: dedup.rules.0.key.1: rule 'legacy-sale' keys on '/data/stor', " +
        "but no registered version of the legacy.sale.recorded.v1 data schema declares 'stor' under " +
        '/data, so no event would ever carry the key',
    ]);
  });
});
