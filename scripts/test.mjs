#!/usr/bin/env node
// `npm test`: finds out which real services answer on this machine, runs every suite it can
// against them, and says plainly which suites it skipped and why. With
// NEXUS_REQUIRE_SERVICES=1 (CI) a missing service fails the run instead of skipping suites.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const required = process.env.NEXUS_REQUIRE_SERVICES === '1';
const pgUrl = process.env.NEXUS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const natsUrl = process.env.NEXUS_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

async function postgresAnswers() {
  const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function natsAnswers() {
  const { hostname, port } = new URL(natsUrl);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 4222) });
    const done = (reason) => {
      socket.destroy();
      resolve(reason);
    };
    socket.setTimeout(3000, () => done('no answer within 3 s'));
    socket.once('error', (error) => done(error.message));
    socket.once('data', (data) => {
      const info = data.toString();
      if (!info.startsWith('INFO ')) return done('not a NATS server');
      done(
        info.includes('"jetstream":true')
          ? null
          : 'NATS answers but JetStream is not enabled (-js)',
      );
    });
  });
}

const env = { ...process.env };
const skipped = [];
const pgProblem = await postgresAnswers();
if (pgProblem === null) env.NEXUS_TEST_DATABASE_URL = pgUrl;
else
  skipped.push(
    `PostgreSQL suites (storage, bus, outbox, API on postgres): ${pgUrl} — ${pgProblem}`,
  );
const natsProblem = await natsAnswers();
if (natsProblem === null) env.NEXUS_TEST_NATS_URL = natsUrl;
else skipped.push(`NATS JetStream suites (bus and outbox on nats): ${natsUrl} — ${natsProblem}`);

if (skipped.length > 0) {
  const say = required ? 'REQUIRED service missing' : 'Skipping';
  for (const line of skipped) console.error(`${say}: ${line}`);
  if (required) process.exit(1);
} else {
  console.error(`Services: PostgreSQL at ${pgUrl}, NATS JetStream at ${natsUrl}: all suites run.`);
}

const dir = mkdtempSync(join(tmpdir(), 'nexus-vitest-'));
const report = join(dir, 'report.json');
const result = spawnSync(
  'npx',
  [
    'vitest',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit', env },
);
if (existsSync(report)) {
  const summary = JSON.parse(readFileSync(report, 'utf8'));
  const skippedTests = summary.numPendingTests + summary.numTodoTests;
  // A file whose setup failed has no failed test of its own: count it as a failure too.
  const brokenFiles = summary.testResults.filter(
    (r) => r.status === 'failed' && r.assertionResults.every((a) => a.status !== 'failed'),
  );
  for (const file of brokenFiles) {
    console.error(`failed to run: ${file.name}: ${(file.message ?? '').split('\n')[0]}`);
  }
  const failed = summary.numFailedTests + brokenFiles.length;
  console.log(`tests: ${summary.numPassedTests} passed, ${failed} failed, ${skippedTests} skipped`);
}
for (const line of skipped) console.error(`(skipped) ${line}`);
rmSync(dir, { recursive: true, force: true });
process.exit(result.status ?? 1);
