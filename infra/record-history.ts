/**
 * Records a workflow's history for the replay tests:
 *   node dist/infra/record-history.js <workflowId> <name>
 * writes test/histories/<name>.json (protobuf's own JSON form, which the
 * replay test turns back into a History; worker identities and stack traces are blanked).
 * Reads TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE like the services.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { loadServiceConfig } from '../lib/config';
import { connectClient } from '../lib/temporal';
import { repoRoot } from './paths';

async function main(): Promise<void> {
  const [workflowId, name] = process.argv.slice(2);
  if (!workflowId || !name) throw new Error('usage: record-history <workflowId> <name>');
  const client = await connectClient(loadServiceConfig().temporal);
  try {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    const json = temporal.api.history.v1.History.toObject(temporal.api.history.v1.History.create(history), {
      longs: String,
      enums: String,
      bytes: String,
    });
    // Worker identities, sticky queue names and failure stack traces name the recording machine; replay needs neither.
    const text = JSON.stringify(json, null, 1)
      .replace(/"identity": "[^"]*"/g, '"identity": "recorded-worker"')
      .replace(/"name": "\d+@[^"]*"/g, '"name": "recorded-sticky-queue"')
      .replace(/"stackTrace": "(?:[^"\\]|\\.)*"/g, '"stackTrace": ""');
    const file = join(repoRoot, 'test', 'histories', `${name}.json`);
    writeFileSync(file, `${text}\n`);
    console.log(`wrote ${file} (${json.events?.length ?? 0} events)`);
  } finally {
    await client.connection.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
