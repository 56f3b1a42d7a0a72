/**
 * Realistic platform usage for demos and benchmarks: running deployments
 * carry client sessions and traffic that follow the time of day, trials are
 * smaller, stopped deployments use nothing. Deterministic for a given
 * deployment and hour, so seeding twice writes the same numbers.
 */
import { createHash } from 'node:crypto';
import type { Db } from 'mongodb';
import { bulkWriteInChunks } from '../mongo';
import { deploymentsOf, type DeploymentDoc } from './accounts';
import { HOUR_MS, hourStart, usageOf, type UsageDoc } from './usage';

function unit(seed: string): number {
  return createHash('sha256').update(seed).digest().readUInt32BE(0) / 0xffffffff;
}

export function usageFor(
  deployment: Pick<DeploymentDoc, '_id' | 'accountId' | 'plan' | 'state'>,
  hour: Date,
): UsageDoc | undefined {
  if (deployment.state !== 'running') return undefined;
  // Busier in the (UTC) afternoon, quiet at night.
  const daily = 0.55 + 0.45 * Math.sin(((hour.getUTCHours() - 8) / 24) * 2 * Math.PI);
  const size = deployment.plan === 'trial' ? 5 : 40;
  const sessions = size * daily * (0.7 + 0.6 * unit(`${deployment._id}|${hour.toISOString()}|s`));
  const traffic = sessions * 0.08 * (0.5 + unit(`${deployment._id}|${hour.toISOString()}|t`));
  return {
    _id: `${deployment._id}|${hour.toISOString()}`,
    accountId: deployment.accountId,
    deploymentId: deployment._id,
    hour,
    quantities: { session_hours: Math.round(sessions * 100) / 100, traffic_gb: Math.round(traffic * 1000) / 1000 },
  };
}

/** Usage of every running deployment for the last `hours` closed hours and the current one; existing hours are kept. */
export async function seedUsage(db: Db, hours: number, now = Date.now()): Promise<number> {
  const deployments = await deploymentsOf(db).find({ state: 'running' }).toArray();
  const current = hourStart(now).getTime();
  const docs = deployments.flatMap((deployment) =>
    Array.from({ length: hours + 1 }, (_, i) => usageFor(deployment, new Date(current - i * HOUR_MS))).filter(
      (doc): doc is UsageDoc => Boolean(doc),
    ),
  );
  await bulkWriteInChunks(
    usageOf(db),
    docs.map((doc) => ({ updateOne: { filter: { _id: doc._id }, update: { $setOnInsert: doc }, upsert: true } })),
  );
  return docs.length;
}
