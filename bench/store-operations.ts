/**
 * bench/store-operations: what each of the registration webhook's store calls
 * costs on the embedded store, in FerretDB's CPU and in the MongoDB driver's
 * (this process), per call, against a ping measured in the same run (one
 * round trip of the wire protocol, no storage). A diagnostic for
 * bench/webhook-throughput, whose store side shows that these calls alone
 * bound any registration route; it has no target.
 *
 *   node dist/bench/store-operations.js [CALLS=3000]
 *
 * CALLS of each kind, 16 in flight, through the same functions the route
 * uses (lib/store/registrations.ts, lib/store/marketplace.ts), on a database
 * with the API's indexes; each kind is measured twice and both are printed,
 * the second after the collections have grown by the first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../infra/processes';
import { startFerretDb } from '../infra/servers';
import { connectMongo } from '../lib/mongo';
import { randomSecret, sha256 } from '../lib/secrets';
import { ensureIndexes } from '../lib/store/indexes';
import { saveResolvedCustomer } from '../lib/store/marketplace';
import { insertOnce, issueLinkCode, redeemedTokensOf } from '../lib/store/registrations';
import { cpuSeconds } from './process-stats';
import { stopWhenInterrupted } from './interrupted';

const IN_FLIGHT = 16;

async function main(): Promise<void> {
  const calls = Number(process.argv[2] ?? 3000);
  if (!(Number.isInteger(calls) && calls >= IN_FLIGHT)) throw new Error(`CALLS: a whole number, at least ${IN_FLIGHT}`);
  const runDir = mkdtempSync(join(tmpdir(), 'bench-store-operations-'));
  const port = await freePort();
  const ferretdb = await startFerretDb({ port, dataDir: join(runDir, 'ferretdb'), logDir: runDir }).then(
    stopWhenInterrupted,
  );
  const mongo = await connectMongo(`mongodb://127.0.0.1:${port}/`, 'bench_store_operations');
  try {
    await ensureIndexes(mongo.db);
    const db = mongo.db;
    const customer = (i: number, pass: number) => ({
      awsAccountId: String(100000000000 + pass * calls + i),
      productCode: 'bench-product',
      customerIdentifier: `cust-${pass}-${i}`,
      licenseArn: `arn:aws:license-manager::123456789012:license:l-${pass}-${i}`,
      offerType: 'standard' as const,
    });
    const grant = () => ({
      codeHash: sha256(randomSecret()),
      bindingHash: sha256(randomSecret()),
      offerType: 'standard' as const,
      ttlSeconds: 900,
    });
    const kinds: Array<[string, (i: number, pass: number) => Promise<unknown>]> = [
      ['ping', () => db.command({ ping: 1 })],
      ['redeemed-token check (miss)', (i, pass) => redeemedTokensOf(db).findOne({ _id: `absent-${pass}-${i}` })],
      // Two calls: the legacy customer key's read, then the upsert.
      ['save customer (2 calls)', (i, pass) => saveResolvedCustomer(db, customer(i, pass))],
      [
        'redeemed-token insert',
        (i, pass) =>
          insertOnce(redeemedTokensOf(db), {
            _id: `token-${pass}-${i}`,
            awsAccountId: customer(i, pass).awsAccountId,
            productCode: 'bench-product',
            bindingHash: sha256(String(i)),
            redeemedAt: new Date(),
          }),
      ],
      ['link code insert', (i, pass) => issueLinkCode(db, customer(i, pass), grant())],
      ['redeemed-token check (hit)', (i, pass) => redeemedTokensOf(db).findOne({ _id: `token-${pass}-${i}` })],
    ];
    const rows: Array<Record<string, string | number>> = [];
    for (const pass of [0, 1]) {
      for (const [kind, call] of kinds) {
        let next = 0;
        const ferretCpu = cpuSeconds(ferretdb.child.pid);
        const driverCpu = process.cpuUsage();
        const started = performance.now();
        await Promise.all(
          Array.from({ length: IN_FLIGHT }, async () => {
            while (next < calls) await call(next++, pass);
          }),
        );
        const wallMs = performance.now() - started;
        const driver = process.cpuUsage(driverCpu);
        rows.push({
          pass: pass + 1,
          kind,
          ferretdbUsPerCall: Math.round(((cpuSeconds(ferretdb.child.pid) - ferretCpu) * 1e6) / calls),
          driverUsPerCall: Math.round((driver.user + driver.system) / calls),
          wallUsPerCall: Math.round((wallMs * 1000) / calls),
        });
      }
    }
    console.table(rows);
    const ping = (pass: number) => rows.find((r) => r.pass === pass && r.kind === 'ping')!;
    console.log(
      JSON.stringify(
        {
          calls,
          inFlight: IN_FLIGHT,
          // Against the ping of the same pass: how many protocol round trips' worth of CPU each call costs.
          ferretdbCpuOverPing: rows.map((r) => ({
            pass: r.pass,
            kind: r.kind,
            ratio: Number((Number(r.ferretdbUsPerCall) / Number(ping(Number(r.pass)).ferretdbUsPerCall)).toFixed(2)),
          })),
        },
        null,
        2,
      ),
    );
  } finally {
    await mongo.close();
    await ferretdb.stop();
    rmSync(runDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
