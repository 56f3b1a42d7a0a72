/**
 * Two tiers. `unit`: pure modules, no servers, seconds (`npx jest --selectProjects unit`).
 * `integration`: everything else, against the real servers global-setup starts. `npx jest` runs both.
 */
const transformed = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2023' } }],
    // ESM-only packages (jose; the `cookie` that @fastify/cookie imports; parse5 and its entities, with which tests
    // read pages) are compiled to CommonJS for Jest's module system; in production Node loads them natively.
    '/node_modules/(jose|cookie|@fastify/cookie|parse5|entities)/.+\\.js$': [
      '@swc/jest',
      { jsc: { target: 'es2023' } },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!(jose|cookie|@fastify/cookie|parse5|entities)/)'],
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      ...transformed,
      displayName: 'unit',
      roots: ['<rootDir>/test/unit'],
      testMatch: ['**/*.test.ts'],
    },
    {
      ...transformed,
      displayName: 'integration',
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/unit/'],
      // Runs only when a test of this project is selected: the unit tier starts no server.
      globalSetup: '<rootDir>/test/global-setup.ts',
      globalTeardown: '<rootDir>/test/global-teardown.ts',
      setupFiles: ['<rootDir>/test/setup-runtime.ts'],
    },
  ],
  // Two cores: two workers keep the real servers responsive.
  maxWorkers: 2,
  testTimeout: 60_000,
  verbose: true,
  // The Temporal native runtime keeps a callback referenced for the life of each Jest worker;
  // every suite tears its own servers and workers down, so forcing exit loses nothing.
  forceExit: true,
};
