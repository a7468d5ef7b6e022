// A process that claims leadership of one name on a shared database, says so, and waits to be
// killed: for the leadership handover tests (storage contract).
// Run as: node --import tsx test/support/leader-child.ts '<json>'
import { openPostgres } from '../../src/platform/db/postgres.js';
import { openSqlite } from '../../src/platform/db/sqlite.js';

const plan = JSON.parse(process.argv[2]!) as {
  kind: 'sqlite' | 'postgres';
  where: string;
  name: string;
};
const storage =
  plan.kind === 'sqlite' ? openSqlite({ file: plan.where }) : openPostgres({ url: plan.where });
const held = await storage.tryLeadership(plan.name);
process.stdout.write(held ? 'held\n' : 'refused\n');
// Stay alive holding it until the test kills this process.
setInterval(() => undefined, 1000);
