/** Whether a workflow history has nothing in flight: every workflow task and activity it scheduled has ended. */
import { temporal } from '@temporalio/proto';

const EventType = temporal.api.enums.v1.EventType;

export function historyIsQuiet(events: temporal.api.history.v1.IHistoryEvent[]): boolean {
  const count = (...types: number[]) => events.filter((e) => types.includes(e.eventType as number)).length;
  const openTasks =
    count(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) -
    count(
      EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
      EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
      EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    );
  const openActivities =
    count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) -
    count(
      EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
      EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
      EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
      EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    );
  return openTasks === 0 && openActivities === 0;
}
