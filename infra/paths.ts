import { join, resolve } from 'node:path';

/** Where the project's install script puts the real servers (git-ignored). */
export const repoRoot = resolve(__dirname, __dirname.includes(`${'/'}dist${'/'}`) ? '../..' : '..');
export const localDir = process.env.LOCAL_DIR ?? join(repoRoot, '.local');
export const venvBin = join(localDir, 'venv', 'bin');

export const binaries = {
  temporal: join(venvBin, 'temporal'),
  temporalTestServer: process.env.TEMPORAL_TEST_SERVER_PATH ?? join(venvBin, 'temporal-test-server'),
  python: join(venvBin, 'python'),
  motoServer: join(repoRoot, 'infra', 'moto_server.py'),
  ferretdb: join(localDir, 'bin', 'ferretdb'),
};

/** Where the local stack keeps its data and logs; STACK_DIR moves it (the stack's own test does). */
export const stackDir = process.env.STACK_DIR ?? localDir;
