import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Suites share one PostgreSQL and one NATS server; each suite makes its own database
    // and stream names, so files may run in parallel.
    pool: 'forks',
    maxWorkers: 2,
  },
});
