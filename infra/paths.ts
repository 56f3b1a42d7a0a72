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
  temporalServer: join(localDir, 'bin', 'temporal-server'),
  temporalSqlTool: join(localDir, 'bin', 'temporal-sql-tool'),
  temporalUi: join(localDir, 'bin', 'temporal-ui'),
};

/** What infra/install.sh copies out of the Temporal server's and UI's modules: the SQL schema and the UI's config. */
export const temporalSchemaDir = join(localDir, 'share', 'temporal-schema');
export const temporalUiRoot = join(localDir, 'share', 'temporal-ui');

/** Where the local stack keeps its data and logs; STACK_DIR moves it (the stack's own test does). */
export const stackDir = process.env.STACK_DIR ?? localDir;
