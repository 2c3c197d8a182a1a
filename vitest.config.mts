import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real sockets and child processes: one fork per file, generous limits
    // for a loaded 2-core machine (tests still stop by themselves).
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
