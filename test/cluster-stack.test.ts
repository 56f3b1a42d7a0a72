/**
 * The README's cluster command, for real (`infra/start.sh --cluster`, on free
 * ports): the Temporal server built from its module runs on PostgreSQL with SQL
 * visibility and our search attributes; two replicas each of the API (behind
 * the load balancer), the worker and the poller serve a buyer's whole journey;
 * a replica of each, and the Temporal server, killed with SIGKILL, are started
 * again while the load balancer keeps answering; a client's own X-Forwarded-For
 * does not get it past the per-client limits; SIGINT stops everything.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection, Client } from '@temporalio/client';
import { customSearchAttributes } from '../domain/search-attributes';
import { waitFor } from '../infra/processes';
import { freeStackPorts, stackPortsEnv } from '../infra/stack-ports';
import { supervisedPid } from '../infra/supervisor';
import { connectMongo } from '../lib/mongo';
import { linkNewBuyer, registerNewBuyer } from './helpers/buyer';
import { sandboxControl } from './helpers/sandbox';
import { eventually } from './helpers/time-skipping';

const root = join(__dirname, '..');
const stackScript = join(root, 'dist', 'infra', 'stack.js');
const serverVersion = /go\.temporal\.io\/server v(\S+)/.exec(
  readFileSync(join(root, 'infra', 'temporal-server', 'go.mod'), 'utf8'),
)![1];

describe('cluster mode (infra/start.sh --cluster)', () => {
  jest.setTimeout(600_000);

  it('runs the journey on the Temporal server on PostgreSQL with two replicas of each process, and restarts what dies', async () => {
    if (!existsSync(stackScript)) throw new Error('dist/ is missing: infra/test.sh builds before running the tests');
    const localDir = mkdtempSync(join(tmpdir(), 'cluster-'));
    const ports = await freeStackPorts({ cluster: true });
    const { temporal, ui, mongo, sandbox, api } = ports;
    const { postgres, apiReplicas } = ports.cluster!;
    const env = {
      ...process.env,
      STACK_DIR: localDir,
      ...stackPortsEnv(ports),
      SANDBOX_REGISTRATION_URL: `http://localhost:${api}/marketplace/register`,
      // The address the test's browser uses, which the API's Origin check compares with.
      PUBLIC_BASE_URL: `http://127.0.0.1:${api}`,
      // A line for each request: which replica answered.
      LOG_LEVEL: 'info',
    };
    const child = spawn(join(root, 'node_modules', '.bin', 'node'), [stackScript, '--cluster'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const alive = () => child.exitCode === null;
    const lb = `http://127.0.0.1:${api}`;
    const readyThroughBalancer = async () => (await fetch(`${lb}/ready`)).status;
    const pidOf = (name: string) => Number(supervisedPid(output, name));
    let temporalClient: Client | undefined;
    let failed = false;
    const mongoHandle = await connectMongo(`mongodb://127.0.0.1:${mongo}/`, 'marketplace_billing');
    const stack = {
      mongo: mongoHandle,
      sandbox: { control: sandboxControl(`http://127.0.0.1:${sandbox}`) },
      api: { url: lb },
    };
    try {
      await waitFor('the cluster', async () => output.includes('The stack is up in cluster mode'), 300_000, alive);

      // The production server and visibility path: the server version compose runs, on PostgreSQL, SQL visibility.
      const connection = await Connection.connect({ address: `127.0.0.1:${temporal}` });
      temporalClient = new Client({ connection, namespace: 'marketplace' });
      const info = await connection.workflowService.getClusterInfo({});
      expect(info).toMatchObject({ serverVersion, persistenceStore: 'postgres12', visibilityStore: 'postgres12' });
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'marketplace' });
      expect(Object.keys(customAttributes ?? {}).sort()).toEqual(customSearchAttributes.map((key) => key.name).sort());
      expect((await fetch(`http://127.0.0.1:${ui}/`)).status).toBe(200);

      // One address for the API, answered by both replicas.
      for (let i = 0; i < 10; i++) expect(await readyThroughBalancer()).toBe(200);
      const answeredBy = (replica: string) =>
        output.split('\n').filter((line) => line.startsWith(`[${replica}]`) && line.includes('"url":"/ready"')).length;
      expect(answeredBy('api-1')).toBeGreaterThan(0);
      expect(answeredBy('api-2')).toBeGreaterThan(0);

      // A buyer's whole journey through the balancer: registration, sign-in, link, AWS's subscribe-success
      // through a poller, the workflow on the cluster; the operator finds it by AWS account in SQL visibility.
      const first = await linkNewBuyer(stack);
      await eventually(
        async () => (await temporalClient!.workflow.count(`AwsAccountId="${first.awsAccountId}"`)).count,
        (found) => found > 0,
      );

      // kill -9 a replica of each, and the Temporal server: each is started again, the others keep serving.
      for (const name of ['api-1', 'worker-2', 'poller-1', 'temporal']) {
        const pid = pidOf(name);
        expect(pid).toBeGreaterThan(0);
        process.kill(pid, 'SIGKILL');
        // While api-1 is down, the balancer sends its share to api-2.
        if (name === 'api-1') for (let i = 0; i < 10; i++) expect(await readyThroughBalancer()).toBe(200);
        await waitFor(
          `${name} to be restarted`,
          async () => output.includes(`[stack] ${name} restarted (restart 1, pid `),
          180_000,
          alive,
        );
        expect(output).toContain(`[stack] ${name} exited (SIGKILL); restarting in 1 s`);
      }
      await eventually(readyThroughBalancer, (status) => status === 200);
      // The restarted cluster serves a new buyer's journey end to end. Until the new server has taken over the
      // dead one's shards, a link request is answered 503 with "retry in a few seconds", as a browser then does.
      const restarted = Date.now();
      const buyer = await registerNewBuyer(stack);
      let linked = await buyer.requestLink();
      while (linked.status === 503 && Date.now() - restarted < 120_000) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        linked = await buyer.requestLink();
      }
      expect(linked.status).toBe(202);
      console.log(`after the Temporal server's restart, links were refused for ${Date.now() - restarted} ms`);
      await stack.sandbox.control('POST', `/control/customers/${buyer.sandboxCustomerId}/notifications`, {
        action: 'subscribe-success',
      });
      // A poller killed while it long-polled leaves its receive open on the queue's side: the next message can go
      // to that dead receive, and comes back only after the queue's visibility timeout (60 s here), as with SQS.
      const notified = Date.now();
      await waitFor(
        'the second buyer linked',
        async () =>
          (await buyer.browser.get('/api/links/current').then((r) => r.json<{ phase?: string }>().phase)) === 'linked',
        90_000,
        alive,
      );
      console.log(`after the kills, AWS's subscribe-success took ${Date.now() - notified} ms to link the buyer`);

      // A client cannot pass for others by writing X-Forwarded-For: the replicas take the address the balancer
      // appended, and together keep the sign-in limit (10 a minute per client, 5 on each of the two replicas).
      const attempts = await Promise.all(
        Array.from({ length: 14 }, (_, i) =>
          fetch(`${lb}/signin`, {
            method: 'POST',
            headers: {
              origin: lb,
              'content-type': 'application/x-www-form-urlencoded',
              'x-forwarded-for': `203.0.113.${i + 1}`,
            },
            body: 'email=nobody%40example.com&password=wrong',
            redirect: 'manual',
          }).then((response) => response.status),
        ),
      );
      expect(attempts.filter((status) => status === 429).length).toBeGreaterThanOrEqual(2);
      expect(attempts.every((status) => status === 429 || status === 401)).toBe(true);
      expect(child.exitCode).toBeNull();
    } catch (error) {
      // The whole output is long (a line for each request): kept in a file, its end shown here.
      const kept = join(root, '.local', 'cluster-stack-output.log');
      writeFileSync(kept, output);
      failed = true;
      throw new Error(
        `${(error as Error).message}\n--- stack output (all of it in ${kept}, logs in ${localDir}; the last 200 lines) ---\n${output.split('\n').slice(-200).join('\n')}`,
        { cause: error },
      );
    } finally {
      await temporalClient?.connection.close();
      await mongoHandle.close();
      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      // A failed run keeps the stack's logs and data.
      if (!failed) rmSync(localDir, { recursive: true, force: true });
    }
    for (const port of [
      temporal,
      ui,
      mongo,
      ports.moto,
      sandbox,
      api,
      postgres,
      ...apiReplicas,
      ...ports.workerMetrics,
      ...ports.pollerMetrics,
    ]) {
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    }
  });
});
