/**
 * The sync-latency bench's baseline workflow: it waits for one signal and
 * completes with it. No activity and no store, so a signal's round trip through
 * it is what Temporal alone costs.
 */
import { condition, defineSignal, setHandler } from '@temporalio/workflow';

export const recordSignal = defineSignal<[string]>('record');

export async function signalRoundTrip(): Promise<string> {
  let recorded: string | undefined;
  setHandler(recordSignal, (id) => {
    recorded = id;
  });
  await condition(() => recorded !== undefined);
  return recorded!;
}
