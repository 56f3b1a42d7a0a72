/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2023' } }],
    // ESM-only packages (jose; the `cookie` that @fastify/cookie imports) are compiled to CommonJS for Jest's
    // module system; in production Node loads them natively.
    '/node_modules/(jose|cookie|@fastify/cookie)/.+\\.js$': ['@swc/jest', { jsc: { target: 'es2023' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(jose|cookie|@fastify/cookie)/)'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  setupFiles: ['<rootDir>/test/setup-runtime.ts'],
  // Two cores: two workers keep the real servers responsive.
  maxWorkers: 2,
  testTimeout: 60_000,
  verbose: true,
  // The Temporal native runtime keeps a callback referenced for the life of each Jest worker;
  // every suite tears its own servers and workers down, so forcing exit loses nothing.
  forceExit: true,
};
