/**
 * The workflows' own counters, on the worker's Prometheus endpoint next to the
 * SDK's. ops/prometheus/alerts.yml alerts on each. Temporal tags every series
 * with namespace, taskQueue and workflowType; the worker creates each series at
 * zero when it starts (worker/workflow-metrics.ts), so the first event is an
 * increase Prometheus can see. Skipped during replay by the SDK.
 */
import { metricMeter } from '@temporalio/workflow';

export const ATTENTION_REASONS = [
  'sync-timed-out',
  'awaiting-unsubscribe-success',
  'step-failed',
  'final-metering-failed',
] as const;
export type AttentionReason = (typeof ATTENTION_REASONS)[number];

export interface WorkflowCounter {
  name: string;
  unit: string;
  description: string;
  /** The workflow that counts it (the workflowType tag). */
  workflowType: string;
  /** Every value of its one own tag, if it has one. */
  tag?: { name: string; values: readonly string[] };
}

export const WORKFLOW_COUNTERS = {
  attentionNeeded: {
    name: 'subscription_attention_needed',
    unit: 'subscriptions',
    description: 'A subscription needs an operator: a wait past its bound, or a step that failed beyond its retries',
    workflowType: 'subscription',
    tag: { name: 'reason', values: ATTENTION_REASONS },
  },
  meteringHoursCompleted: {
    name: 'metering_hours_completed',
    unit: 'hours',
    description: 'Hours metered completely (every linked customer sent or recorded), including re-runs',
    workflowType: 'hourlyMetering',
  },
  meteringHoursFailed: {
    name: 'metering_hours_failed',
    unit: 'hours',
    description:
      "Hours a metering run could not finish; the next run retries them while they are inside AWS's 6-hour window",
    workflowType: 'hourlyMetering',
  },
  meteringHoursMissed: {
    name: 'metering_hours_missed',
    unit: 'hours',
    description: "Hours that fell out of AWS's 6-hour window unmetered: usage that can no longer be billed",
    workflowType: 'hourlyMetering',
  },
} as const satisfies Record<string, WorkflowCounter>;

/** Workflow context only: the client imports the modules that call it for their types and definitions. */
export function count(counter: WorkflowCounter, by = 1, tagValue?: string): void {
  const created = metricMeter.createCounter(counter.name, counter.unit, counter.description);
  (counter.tag && tagValue ? created.withTags({ [counter.tag.name]: tagValue }) : created).add(by);
}
