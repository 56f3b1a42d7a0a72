/** The built programs (dist/), started as the local stack starts them: for tests of what only a whole process does. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { portOpen, startProcess, type ManagedProcess } from '../../infra/processes';
import { testServers, TEST_ENV, uniqueName } from './test-env';

const root = join(__dirname, '..', '..');
const SCRIPTS = { api: 'api/server.js', worker: 'worker/main.js', poller: 'poller/main.js' } as const;

/** Ready once `port` accepts connections; its output goes to the run's log folder. */
export async function startBuilt(
  program: keyof typeof SCRIPTS,
  env: Record<string, string>,
  port: number,
): Promise<ManagedProcess> {
  const script = join(root, 'dist', SCRIPTS[program]);
  if (!existsSync(script))
    throw new Error(`dist/${SCRIPTS[program]} is missing: run \`npm run build\` (infra/test.sh does)`);
  const name = uniqueName(program);
  return startProcess({
    name,
    command: join(root, 'node_modules', '.bin', 'node'),
    args: [script],
    env: {
      MONGODB_URI: testServers.mongoUri(),
      TEMPORAL_ADDRESS: testServers.temporal().address,
      TEMPORAL_NAMESPACE: testServers.temporal().namespace,
      ...env,
    },
    logFile: join(process.env[TEST_ENV.runDir] ?? root, 'logs', `${name}.log`),
    ready: () => portOpen(port),
  });
}

/** The Prometheus text a metrics endpoint serves now. */
export async function scrape(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!response.ok) throw new Error(`GET /metrics on ${port} answered ${response.status}`);
  return response.text();
}

/** The value of the one series of `name` whose labels include all of `labels` (undefined: no such series). */
export function seriesValue(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const values = exposition
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .filter((line) => Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`)))
    .map((line) => Number(line.split(' ').pop()));
  if (values.length > 1) throw new Error(`${values.length} series of ${name} match ${JSON.stringify(labels)}`);
  return values[0];
}
