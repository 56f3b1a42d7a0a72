// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.local/', 'coverage/', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  // Type-aware rules (projectService below): unsafe `any`, misused promises, stringified objects.
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // Fastify plugins and handlers, fetch stand-ins and interface methods return promises without awaiting, by design.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Jest's asymmetric matchers (expect.any, expect.stringMatching, …) are typed `any`, and tests put them in objects.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    // Workflow code is replayed and must stay deterministic: no Node built-ins,
    // no I/O clients, and activities only as types.
    // The kernel in domain/ runs inside workflows too, so it obeys their determinism rules.
    files: ['workflows/**/*.ts', 'domain/**/*.ts', 'test/fixtures/workflows.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: builtinModules
            .flatMap((name) => [name, `node:${name}`])
            .map((name) => ({
              name,
              message: 'Workflows are deterministic sandboxes: do I/O in an activity.',
            })),
          patterns: [
            {
              group: ['**/activities', '**/activities/*'],
              allowTypeImports: true,
              message: 'Workflows may import activity types only (import type …).',
            },
            {
              group: [
                '@temporalio/worker',
                '@temporalio/client',
                '@temporalio/activity',
                'mongodb',
                '@aws-sdk/*',
                'fastify',
                '**/lib/mongo',
                '**/lib/aws',
                '**/lib/temporal',
                '**/lib/config',
                '**/lib/logger',
                '**/lib/telemetry/*',
                '**/lib/temporal-config',
                'pino',
                'prom-client',
                'handlebars',
                '@opentelemetry/*',
              ],
              message: 'Not available in workflow code: call an activity instead.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' },
        { name: 'setInterval', message: 'Use sleep() in a loop.' },
        { name: 'process', message: 'No process access in workflows.' },
      ],
    },
  },
);
