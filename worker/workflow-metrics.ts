/**
 * Creates every series of the workflows' own counters at zero, with the tags the
 * workflows will add to. A series born at 1 has no earlier sample, so
 * Prometheus's increase() would not see the first sync timeout or missed hour;
 * and the alert rules' metrics exist before anything went wrong.
 */
import type { MetricMeter } from '@temporalio/common';
import { WORKFLOW_COUNTERS } from '../workflows/common/metrics';

export function registerWorkflowCounters(meter: MetricMeter, worker: { namespace: string; taskQueue: string }): void {
  for (const counter of Object.values(WORKFLOW_COUNTERS)) {
    const base = meter
      .createCounter(counter.name, counter.unit, counter.description)
      .withTags({ namespace: worker.namespace, taskQueue: worker.taskQueue, workflowType: counter.workflowType });
    const series =
      'tag' in counter ? counter.tag.values.map((value) => base.withTags({ [counter.tag.name]: value })) : [base];
    for (const each of series) each.add(0);
  }
}
