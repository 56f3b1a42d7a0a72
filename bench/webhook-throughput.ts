/**
 * bench/webhook-throughput: requests per second on the registration webhook,
 * `POST /marketplace/register` with valid registration tokens, through the
 * real API process, against a bare Fastify route that makes the same
 * ResolveCustomer call, in the same run, on the same sandbox and store.
 *
 *   node dist/bench/webhook-throughput.js [REQUESTS=4000]
 *
 * REQUESTS a side: 4,000 by default. With 1,000, the bare route's rounds (125
 * requests at 650 a second) lasted 0.2 s, and three runs read 0.47 to 0.54.
 *
 * It starts FerretDB and a Temporal dev server (the API connects to it at
 * start), the Marketplace sandbox, the API, the bare route and the store route
 * (below) as their built processes. One load generator drives every side: CONCURRENCY clients with
 * keep-alive connections, one request in flight each, each from its own
 * loopback address (127.0.0.2, 127.0.0.3, …) as separate buyers' browsers
 * would be: the API gives each address one place in the ResolveCustomer
 * queue and turns a second concurrent registration from it away (503), which
 * is its flood protection, not its throughput. After a warm-up of each, the
 * sides take turns over ROUNDS rounds, in every order once, so that a
 * neighbour's load on the machine falls on all of them alike. Before each round the sandbox forgets its tokens and
 * mints one per request of the round for each side: every request of ours
 * redeems a new token and stores a new customer, and the sandbox's lookups
 * (see the store below) stay the size of a round.
 *
 * The API's deliberate limits are set so that they measure nothing they are
 * not meant to: the per-client limit (RATE_LIMIT_REGISTRATION_PER_MINUTE) far
 * above the run's requests, and the sandbox's quota out of reach. The global
 * ResolveCustomer ceiling (RESOLVE_CUSTOMER_MAX_PER_SECOND) is set to its cap
 * (1,000 a second per API process): the report says whether it bound. Target: ours / bare ≥ 0.5, every answer a 303 redirect, and every
 * request of ours leaving one redeemed token, one customer and one link code.
 *
 * Every side shares the sandbox and its store: its ResolveCustomer reads two
 * documents by _id. Ours then makes four store round trips on a first
 * registration (the redeemed token, the legacy customer key, the customer
 * upsert, then the redemption record and the link code together), each an
 * index lookup on the embedded store (infra/ferretdb/sqlite-pushdown.patch).
 *
 * A third side, "store", is the bare route making those same store calls
 * through the same functions (lib/store/registrations.ts) and nothing else: no
 * limits, cookies, headers, pages or logs. Its ratio to the bare route is the
 * most any route that keeps the webhook's guarantees can reach on this store;
 * ours over store is what the API adds on top. Its ratio is reported, not
 * judged; its answers and writes are checked like ours, so that a broken
 * yardstick fails the run instead of misleading it.
 */
import { randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REGISTRATION_PATH } from '../api/routes/linking/registration';
import { apiEnvSchema } from '../api/config';
import { repoRoot } from '../infra/paths';
import { freePort, portOpen, startProcess, type ManagedProcess } from '../infra/processes';
import { startBenchServers } from './bench-servers';
import { stopWhenInterrupted } from './interrupted';
import { connectMongo } from '../lib/mongo';
import { marketplaceCustomersOf } from '../lib/store/marketplace';
import { linkCodesOf, redeemedTokensOf } from '../lib/store/registrations';
import { SandboxStore } from '../sandbox/store';
import { cpuMeter, peakRssMb } from './process-stats';

/** Each client has an address of its own, 127.0.0.2 to 127.0.0.251: at most 250. */
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const TARGET = 0.5;
const ORDERS = [
  [0, 1, 2],
  [1, 2, 0],
  [2, 0, 1],
  [0, 2, 1],
  [2, 1, 0],
  [1, 0, 2],
];
/** Every order of the three sides once: each side runs before and after each other side equally often. */
const ROUNDS = ORDERS.length;
/** The most RESOLVE_CUSTOMER_MAX_PER_SECOND accepts (api/config.ts): the bench sets it there. */
const CEILING_PER_SECOND = apiEnvSchema.properties.RESOLVE_CUSTOMER_MAX_PER_SECOND.maximum ?? 100;
const SERVICE_DB = 'bench_webhook';
const STORE_SIDE_DB = 'bench_webhook_store';
const SANDBOX_DB = 'bench_webhook_sandbox';
/** Set, the sandbox, the API and the bare route each write a V8 CPU profile there on exit: where their time went. */
const PROFILE_DIR = process.env.BENCH_CPU_PROFILE_DIR;

interface Load {
  requests: number;
  seconds: number;
  statuses: Record<string, number>;
  latenciesMs: number[];
}

function post(port: number, agent: Agent, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: REGISTRATION_PATH,
        agent,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
        },
      },
      (response) => {
        response.resume();
        response.once('end', () => resolve(response.statusCode ?? 0));
        response.once('error', reject);
      },
    );
    request.once('error', reject);
    request.end(body);
  });
}

/** Posts every token once, CONCURRENCY clients at a time, each client its own address and keep-alive connection. */
async function drive(port: number, tokens: string[]): Promise<Load> {
  const agents = Array.from(
    { length: CONCURRENCY },
    (_, i) => new Agent({ keepAlive: true, maxSockets: 1, localAddress: `127.0.0.${2 + i}` }),
  );
  const statuses: Record<string, number> = {};
  const latenciesMs: number[] = [];
  let next = 0;
  const client = async (agent: Agent) => {
    while (next < tokens.length) {
      const body = new URLSearchParams({ 'x-amzn-marketplace-token': tokens[next++]! }).toString();
      const sent = performance.now();
      const status = await post(port, agent, body).then(String, (error: Error) => error.message);
      latenciesMs.push(performance.now() - sent);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  const started = performance.now();
  await Promise.all(agents.map(client));
  const seconds = (performance.now() - started) / 1000;
  agents.forEach((agent) => agent.destroy());
  return { requests: tokens.length, seconds, statuses, latenciesMs };
}

function combine(loads: Load[]): Load {
  const statuses: Record<string, number> = {};
  for (const load of loads)
    for (const [status, n] of Object.entries(load.statuses)) statuses[status] = (statuses[status] ?? 0) + n;
  return {
    requests: loads.reduce((n, l) => n + l.requests, 0),
    seconds: loads.reduce((s, l) => s + l.seconds, 0),
    statuses,
    latenciesMs: loads.flatMap((l) => l.latenciesMs),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function summary(load: Load) {
  const sorted = [...load.latenciesMs].sort((a, b) => a - b);
  return {
    requests: load.requests,
    seconds: Number(load.seconds.toFixed(2)),
    requestsPerSecond: Math.round(load.requests / load.seconds),
    latencyMs: {
      median: Number(percentile(sorted, 50).toFixed(1)),
      p99: Number(percentile(sorted, 99).toFixed(1)),
    },
    statuses: load.statuses,
  };
}

/** Has the sandbox create `count` buyers through its control API, and returns their registration tokens. */
async function mintTokens(sandboxUrl: string, count: number): Promise<string[]> {
  const tokens: string[] = [];
  let asked = 0;
  const mint = async () => {
    while (asked < count) {
      asked += 1;
      const response = await fetch(`${sandboxUrl}/control/customers`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      if (!response.ok) throw new Error(`the sandbox minted no token: ${response.status} ${await response.text()}`);
      tokens.push(((await response.json()) as { token: string }).token);
    }
  };
  await Promise.all(Array.from({ length: 8 }, mint));
  return tokens;
}

async function main(): Promise<void> {
  const requests = Number(process.argv[2] ?? 4000);
  if (!(Number.isInteger(requests) && requests >= ROUNDS))
    throw new Error(`REQUESTS: a whole number, at least ${ROUNDS}`);
  if (!(Number.isInteger(CONCURRENCY) && CONCURRENCY >= 1 && CONCURRENCY <= 250))
    throw new Error('BENCH_CONCURRENCY: 1 to 250 clients, one loopback address each');
  const warmup = Math.min(200, Math.ceil(requests / 10));
  const roundSize = (round: number) =>
    Math.floor((requests * (round + 1)) / ROUNDS) - Math.floor((requests * round) / ROUNDS);
  // Per client, far above what any one client of the run sends.
  const perClientPerMinute = 10 * (requests + warmup);
  const runDir = mkdtempSync(join(tmpdir(), 'bench-webhook-'));
  const [sandboxPort, apiPort, barePort, storePort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  let mongoUri = '';
  const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
  const servers: ManagedProcess[] = [];
  let completed = false;
  const built = (name: string, script: string, port: number, env: Record<string, string>) =>
    startProcess({
      name,
      command: join(repoRoot, 'node_modules', '.bin', 'node'),
      args: [...(PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []), join(repoRoot, 'dist', script)],
      env: { LOG_LEVEL: 'warn', MONGODB_URI: mongoUri, ...env },
      logFile: join(runDir, `${name}.log`),
      ready: () => portOpen(port),
    }).then(stopWhenInterrupted);
  try {
    const started = await startBenchServers(runDir);
    servers.push(...started.servers);
    mongoUri = started.mongoUri;
    const sandbox = await built('sandbox', 'sandbox/server.js', sandboxPort, {
      SANDBOX_PORT: String(sandboxPort),
      SANDBOX_PUBLIC_URL: sandboxUrl,
      SANDBOX_MONGODB_DATABASE: SANDBOX_DB,
      SANDBOX_PRODUCT_CODE: 'bench-product',
      // Out of reach: the sandbox's token bucket is AWS's quota, not the service's throughput.
      SANDBOX_QUOTA_RPS: '1000000',
      SANDBOX_SNS_SIGNING: 'false',
    });
    servers.push(sandbox);
    const [api, bare, store] = await Promise.all([
      built('api', 'api/server.js', apiPort, {
        API_PORT: String(apiPort),
        // As deployed: a log line for each request and its answer.
        LOG_LEVEL: 'info',
        MONGODB_DATABASE: SERVICE_DB,
        TEMPORAL_ADDRESS: started.temporalAddress,
        TEMPORAL_NAMESPACE: 'bench',
        AWS_ENDPOINT_URL_MARKETPLACE_METERING: sandboxUrl,
        SESSION_SIGNING_KEY: randomBytes(48).toString('base64'),
        DEMO_ACCOUNTS: 'false',
        SIGN_IN_URL: 'https://platform.example/signin',
        RATE_LIMIT_REGISTRATION_PER_MINUTE: String(perClientPerMinute),
        RESOLVE_CUSTOMER_MAX_PER_SECOND: String(CEILING_PER_SECOND),
      }),
      built('bare', 'bench/bare-registration-route.js', barePort, {
        BARE_PORT: String(barePort),
        AWS_ENDPOINT_URL_MARKETPLACE_METERING: sandboxUrl,
      }),
      built('store', 'bench/bare-registration-route.js', storePort, {
        BARE_PORT: String(storePort),
        AWS_ENDPOINT_URL_MARKETPLACE_METERING: sandboxUrl,
        BARE_MONGODB_URI: mongoUri,
        BARE_MONGODB_DATABASE: STORE_SIDE_DB,
      }),
    ]);
    servers.push(api, bare, store);

    const sandboxMongo = await connectMongo(mongoUri, SANDBOX_DB);
    const sandboxStore = new SandboxStore(sandboxMongo.db);
    let resolveCustomerCalls = 0;
    /**
     * The sandbox forgets the tokens it has redeemed and mints `count` new ones for each side: AWS's
     * ResolveCustomer does not slow down as a seller's registrations accumulate, and on the embedded
     * store the sandbox's own lookups would (see the top of this file).
     */
    const freshTokens = async (count: number) => {
      resolveCustomerCalls += await sandboxStore.calls.countDocuments({ operation: 'ResolveCustomer', outcome: 'ok' });
      const reset = await fetch(`${sandboxUrl}/control/reset`, { method: 'POST' });
      if (!reset.ok) throw new Error(`the sandbox did not reset: ${reset.status}`);
      const tokens = await mintTokens(sandboxUrl, 3 * count);
      return { bare: tokens.slice(0, count), ours: tokens.slice(count, 2 * count), store: tokens.slice(2 * count) };
    };

    console.log(
      `${requests} registrations a side after ${warmup} of warm-up, ${CONCURRENCY} clients, ${ROUNDS} rounds`,
    );
    // Warm-up: JIT, connection pools and the store's first writes, on every side.
    const warmupTokens = await freshTokens(warmup);
    await drive(barePort, warmupTokens.bare);
    await drive(apiPort, warmupTokens.ours);
    await drive(storePort, warmupTokens.store);

    const shared = { ferretdb: servers[0]!.child.pid, sandbox: sandbox.child.pid };
    const side = (name: 'bare' | 'ours' | 'store', port: number, pids: Record<string, number | undefined>) => ({
      name,
      port,
      pids: { ...shared, ...pids },
      loads: [] as Load[],
      cpuSeconds: {} as Record<string, number>,
    });
    const bareSide = side('bare', barePort, { route: bare.child.pid });
    const oursSide = side('ours', apiPort, { api: api.child.pid });
    const storeSide = side('store', storePort, { route: store.child.pid });
    const sides = [bareSide, oursSide, storeSide];
    for (let round = 0; round < ROUNDS; round++) {
      const tokens = await freshTokens(roundSize(round));
      for (const s of ORDERS[round]!.map((i) => sides[i]!)) {
        const spent = cpuMeter(s.pids);
        s.loads.push(await drive(s.port, tokens[s.name]));
        for (const [name, seconds] of Object.entries(spent())) s.cpuSeconds[name] = (s.cpuSeconds[name] ?? 0) + seconds;
      }
      console.log(`round ${round + 1}/${ROUNDS} done`);
    }
    resolveCustomerCalls += await sandboxStore.calls.countDocuments({ operation: 'ResolveCustomer', outcome: 'ok' });
    await sandboxMongo.close();
    /** Where each side's time went: CPU milliseconds per request, by process. */
    const cpuMsPerRequest = (s: typeof bareSide) =>
      Object.fromEntries(
        Object.entries(s.cpuSeconds).map(([name, seconds]) => [name, Number(((1000 * seconds) / requests).toFixed(1))]),
      );

    const bareTotal = combine(bareSide.loads);
    const oursTotal = combine(oursSide.loads);
    const bareLoad = summary(bareTotal);
    const oursLoad = summary(oursTotal);
    const storeTotal = combine(storeSide.loads);
    const storeLoad = summary(storeTotal);
    const storedIn = async (database: string) => {
      const mongo = await connectMongo(mongoUri, database);
      const counts = {
        redeemedTokens: await redeemedTokensOf(mongo.db).countDocuments(),
        linkCodes: await linkCodesOf(mongo.db).countDocuments(),
        customers: await marketplaceCustomersOf(mongo.db).countDocuments(),
      };
      await mongo.close();
      return counts;
    };
    const stored = await storedIn(SERVICE_DB);
    const storedByStoreSide = await storedIn(STORE_SIDE_DB);

    const rate = (load: Load) => load.requests / load.seconds;
    const ratio = rate(oursTotal) / rate(bareTotal);
    const oursRegistrations = oursTotal.requests + warmup;
    const report = {
      requestsPerSide: requests,
      warmupPerSide: warmup,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      ours: oursLoad,
      bare: bareLoad,
      store: storeLoad,
      ratio: Number(ratio.toFixed(3)),
      // Not judged: how far the store alone lets any route go, and what the API adds on top of it.
      storeOverBare: Number((rate(storeTotal) / rate(bareTotal)).toFixed(3)),
      oursOverStore: Number((rate(oursTotal) / rate(storeTotal)).toFixed(3)),
      limits: {
        registrationPerClientPerMinute: perClientPerMinute,
        sandboxQuotaPerSecond: 1_000_000,
        resolveCustomerCeilingPerSecond: CEILING_PER_SECOND,
        // Within 10% of the ceiling: ours was paced by it, and the ratio measures the ceiling, not the service.
        ceilingBound: oursLoad.requestsPerSecond >= 0.9 * CEILING_PER_SECOND,
      },
      stored,
      storedByStoreSide,
      resolveCustomerCalls: { ok: resolveCustomerCalls, expected: 3 * (requests + warmup) },
      cpuMsPerRequest: {
        bare: cpuMsPerRequest(bareSide),
        ours: cpuMsPerRequest(oursSide),
        store: cpuMsPerRequest(storeSide),
      },
      apiPeakRssMb: Math.round(peakRssMb(api.child.pid)),
    };
    console.log(JSON.stringify(report, null, 2));
    const all303 = (load: typeof oursLoad) => load.statuses['303'] === load.requests;
    const storedOnce = (counts: typeof stored, registrations: number) =>
      counts.redeemedTokens === registrations &&
      counts.linkCodes === registrations &&
      counts.customers === registrations;
    // The store side is a yardstick, but a broken one would mislead: its answers and writes are checked too.
    const storeSideSound = all303(storeLoad) && storedOnce(storedByStoreSide, storeTotal.requests + warmup);
    const ok =
      ratio >= TARGET &&
      all303(oursLoad) &&
      all303(bareLoad) &&
      storeSideSound &&
      storedOnce(stored, oursRegistrations) &&
      resolveCustomerCalls === report.resolveCustomerCalls.expected;
    console.log(
      ok
        ? `PASS: ours / bare = ${report.ratio} ≥ ${TARGET}, every answer a redirect, every registration stored once`
        : `FAIL: ours / bare = ${report.ratio} (target ≥ ${TARGET})${storeSideSound ? '' : ', and the store side failed'}; see the figures above`,
    );
    process.exitCode = ok ? 0 : 1;
    completed = true;
  } finally {
    for (const server of servers.reverse()) await server.stop();
    // The servers' logs stay when the run broke off: they say why.
    if (completed) rmSync(runDir, { recursive: true, force: true });
    else console.error(`logs kept in ${runDir}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
