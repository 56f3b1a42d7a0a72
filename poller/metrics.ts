/** What an operator watches on the poller, in Prometheus format (one registry per poller). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { UntrustedCheck } from './messages';

export const DEAD_LETTER_REASONS = ['poison', 'untrusted', 'hand-off-failed'] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];
/** Every check, so that a new one cannot be left out of the series created at zero. */
const UNTRUSTED_CHECKS = Object.keys({ format: true, topic: true, signature: true } satisfies Record<
  UntrustedCheck,
  true
>) as UntrustedCheck[];

export function createPollerMetrics(options: { processMetrics?: boolean } = {}) {
  const registry = new Registry();
  const registers = [registry];
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'marketplace_poller_' });
  const metrics = {
    registry,
    received: new Counter({
      name: 'marketplace_notifications_received_total',
      help: 'Queue messages received, by format (unknown: unreadable)',
      labelNames: ['format'] as const,
      registers,
    }),
    handedOff: new Counter({
      name: 'marketplace_notifications_handed_off_total',
      help: 'Notifications handed to the workflows (or recorded for a customer not yet known) and deleted, by action',
      labelNames: ['action'] as const,
      registers,
    }),
    duplicates: new Counter({
      name: 'marketplace_notifications_duplicate_total',
      help: 'Redeliveries of notifications already handed off: acknowledged with no second effect',
      registers,
    }),
    ignored: new Counter({
      name: 'marketplace_notifications_ignored_total',
      help: 'Notifications recorded and acknowledged with no effect (unknown action or detail type)',
      registers,
    }),
    deadLettered: new Counter({
      name: 'marketplace_notifications_dead_lettered_total',
      help: 'Messages moved to the dead-letter queue by the poller, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    verificationFailed: new Counter({
      name: 'marketplace_notifications_verification_failed_total',
      help: 'Messages refused as untrusted, by check (format: not a format this queue carries; topic; signature)',
      labelNames: ['check'] as const,
      registers,
    }),
    handOffFailures: new Counter({
      name: 'marketplace_notification_hand_off_failures_total',
      help: 'Failed hand-off attempts (store, Temporal or certificate fetch unavailable); each is retried with backoff',
      registers,
    }),
    deadLetterRefused: new Counter({
      name: 'marketplace_notifications_dead_letter_refused_total',
      help: 'Dead-letter copies SQS refused for good (the message is left to the queue redrive policy, without a reason attached)',
      registers,
    }),
    intakePauses: new Counter({
      name: 'marketplace_notification_intake_pauses_total',
      help: 'Times intake paused (no new receives) because a hand-off was failing: an outage of Temporal or the store',
      registers,
    }),
    handOffSeconds: new Histogram({
      name: 'marketplace_notification_hand_off_seconds',
      help: 'From receiving a message to its hand-off being durable',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    inFlight: new Gauge({
      name: 'marketplace_notifications_in_flight',
      help: 'Messages received and not yet settled',
      registers,
    }),
  };
  // The alerts' series exist at zero from the start: a series born at 1 hides the first dead letter from increase().
  for (const reason of DEAD_LETTER_REASONS) metrics.deadLettered.inc({ reason }, 0);
  for (const check of UNTRUSTED_CHECKS) metrics.verificationFailed.inc({ check }, 0);
  return metrics;
}

export type PollerMetrics = ReturnType<typeof createPollerMetrics>;

/** The sum of every series of metric `name` in Prometheus text output (what a scraper would add up). */
export function sumOfSeries(exposition: string, name: string): number {
  return exposition
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}
