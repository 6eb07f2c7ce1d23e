import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    isolate: true,
    // Integration and end-to-end tests start real servers; a loaded 2-core machine needs room.
    testTimeout: 60_000,
    hookTimeout: 180_000,
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
