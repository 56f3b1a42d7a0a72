/**
 * The ordering rules of AWS notifications (workflows/aws-ordering.ts), as a
 * table: every order of subscribe-success, subscribe-fail, unsubscribe-pending
 * and unsubscribe-success that matters, with duplicates, redrives and
 * amendments. Each row lists events in *arrival* order with their AWS send
 * times (minutes), and the status and verdicts that must follow.
 */
import {
  applyAwsEvent,
  clampSentAt,
  SeenIds,
  UNKNOWN,
  type AwsAction,
  type AwsStatus,
  type AwsView,
  type Verdict,
} from '../../domain/aws-ordering';

type Row = [string, Array<[AwsAction | 'amended', number]>, AwsStatus, Verdict[]];
const at = (minute: number) => new Date(Date.UTC(2026, 10, 1, 0, minute)).toISOString();

function play(events: Row[1]): { view: AwsView; verdicts: Verdict[] } {
  let view = UNKNOWN;
  const verdicts: Verdict[] = [];
  events.forEach(([action, minute], i) => {
    const event =
      action === 'amended'
        ? { id: `e${i}`, action: 'subscribe-success' as const, sentAt: at(minute), amendment: true }
        : { id: `e${i}`, action, sentAt: at(minute) };
    const result = applyAwsEvent(view, event);
    view = result.view;
    verdicts.push(result.verdict);
  });
  return { view, verdicts };
}

const table: Row[] = [
  // In order.
  ['subscribe', [['subscribe-success', 0]], 'subscribed', ['subscribed']],
  [
    'the whole life in order',
    [
      ['subscribe-success', 0],
      ['unsubscribe-pending', 60],
      ['unsubscribe-success', 61],
    ],
    'unsubscribed',
    ['subscribed', 'leaving', 'unsubscribed'],
  ],
  [
    'payment fails, then succeeds',
    [
      ['subscribe-fail', 0],
      ['subscribe-success', 5],
    ],
    'subscribed',
    ['payment-failed', 'subscribed'],
  ],
  [
    'a late subscribe-fail after success changes nothing',
    [
      ['subscribe-success', 5],
      ['subscribe-fail', 6],
    ],
    'subscribed',
    ['subscribed', 'no-change'],
  ],
  [
    'resubscribe during unsubscribe-pending (AWS sends subscribe-success instead)',
    [
      ['subscribe-success', 0],
      ['unsubscribe-pending', 60],
      ['subscribe-success', 70],
    ],
    'subscribed',
    ['subscribed', 'leaving', 'resubscribed'],
  ],
  [
    'resubscribe after the end',
    [
      ['subscribe-success', 0],
      ['unsubscribe-success', 60],
      ['subscribe-success', 600],
    ],
    'subscribed',
    ['subscribed', 'unsubscribed', 'resubscribed'],
  ],
  // Reordered.
  [
    'unsubscribe-success before unsubscribe-pending: the pending one is stale',
    [
      ['subscribe-success', 0],
      ['unsubscribe-success', 61],
      ['unsubscribe-pending', 60],
    ],
    'unsubscribed',
    ['subscribed', 'unsubscribed', 'stale'],
  ],
  [
    'unsubscribe before subscribe arrives: the subscribe is stale',
    [
      ['unsubscribe-success', 61],
      ['subscribe-success', 0],
    ],
    'unsubscribed',
    ['unsubscribed', 'stale'],
  ],
  [
    'subscribe-fail arriving after the success it preceded',
    [
      ['subscribe-success', 5],
      ['subscribe-fail', 0],
    ],
    'subscribed',
    ['subscribed', 'stale'],
  ],
  [
    'resubscription arrives before the pending it cancels',
    [
      ['subscribe-success', 0],
      ['subscribe-success', 70],
      ['unsubscribe-pending', 60],
    ],
    'subscribed',
    ['subscribed', 'no-change', 'stale'],
  ],
  [
    'pending and success both before the subscribe',
    [
      ['unsubscribe-pending', 60],
      ['unsubscribe-success', 61],
      ['subscribe-success', 0],
    ],
    'unsubscribed',
    ['leaving', 'unsubscribed', 'stale'],
  ],
  // Redrives and replays of old messages.
  [
    'a redriven original subscribe-success after the cancellation (the bug of issue 11)',
    [
      ['subscribe-success', 0],
      ['unsubscribe-pending', 60],
      ['unsubscribe-success', 61],
      ['subscribe-success', 0],
    ],
    'unsubscribed',
    ['subscribed', 'leaving', 'unsubscribed', 'stale'],
  ],
  [
    'a redriven unsubscribe of an earlier cycle after a resubscription',
    [
      ['subscribe-success', 0],
      ['unsubscribe-success', 60],
      ['subscribe-success', 600],
      ['unsubscribe-success', 60],
    ],
    'subscribed',
    ['subscribed', 'unsubscribed', 'resubscribed', 'stale'],
  ],
  [
    'a redriven unsubscribe-pending of an earlier cycle while active',
    [
      ['subscribe-success', 0],
      ['unsubscribe-pending', 60],
      ['subscribe-success', 70],
      ['unsubscribe-pending', 60],
    ],
    'subscribed',
    ['subscribed', 'leaving', 'resubscribed', 'stale'],
  ],
  // Repeats of the same status.
  [
    'subscribe-success re-sent on an offer amendment',
    [
      ['subscribe-success', 0],
      ['subscribe-success', 30],
    ],
    'subscribed',
    ['subscribed', 'no-change'],
  ],
  [
    'unsubscribe-success twice',
    [
      ['subscribe-success', 0],
      ['unsubscribe-success', 60],
      ['unsubscribe-success', 62],
    ],
    'unsubscribed',
    ['subscribed', 'unsubscribed', 'no-change'],
  ],
  [
    'unsubscribe-pending after unsubscribe-success, sent later',
    [
      ['subscribe-success', 0],
      ['unsubscribe-success', 60],
      ['unsubscribe-pending', 62],
    ],
    'unsubscribed',
    ['subscribed', 'unsubscribed', 'stale'],
  ],
  // Amendments (EventBridge Purchase Agreement Amended).
  [
    'an amendment while subscribed',
    [
      ['subscribe-success', 0],
      ['amended', 30],
    ],
    'subscribed',
    ['subscribed', 'amended'],
  ],
  [
    'an amendment after the end revives nothing',
    [
      ['subscribe-success', 0],
      ['unsubscribe-success', 60],
      ['amended', 90],
    ],
    'unsubscribed',
    ['subscribed', 'unsubscribed', 'stale'],
  ],
  ['an amendment before any subscribe starts nothing', [['amended', 30]], 'unknown', ['stale']],
  // The same millisecond: the more final event wins, whatever the arrival order.
  [
    'a tie goes to the unsubscribe (arriving first)',
    [
      ['unsubscribe-success', 10],
      ['subscribe-success', 10],
    ],
    'unsubscribed',
    ['unsubscribed', 'stale'],
  ],
  [
    'a tie goes to the unsubscribe (arriving second)',
    [
      ['subscribe-success', 10],
      ['unsubscribe-success', 10],
    ],
    'unsubscribed',
    ['subscribed', 'unsubscribed'],
  ],
];

describe('AWS notification ordering', () => {
  it.each(table)('%s', (_name, events, status, verdicts) => {
    const result = play(events);
    expect(result.view.status).toBe(status);
    expect(result.verdicts).toEqual(verdicts);
  });

  it('remembers when the current period started: a resubscription starts a new one', () => {
    const { view } = play([
      ['subscribe-success', 0],
      ['unsubscribe-success', 60],
      ['subscribe-success', 600],
      ['subscribe-success', 700],
    ]);
    expect(view.periodStartedAt).toBe(Date.parse(at(600)));
  });

  it('every permutation of one life ends in the status of the newest event', () => {
    const life: Array<[AwsAction, number]> = [
      ['subscribe-fail', 0],
      ['subscribe-success', 5],
      ['unsubscribe-pending', 60],
      ['unsubscribe-success', 61],
    ];
    const permutations = (items: typeof life): Array<typeof life> =>
      items.length <= 1
        ? [items]
        : items.flatMap((item, i) =>
            permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
          );
    for (const order of permutations(life)) expect(play(order).view.status).toBe('unsubscribed');
    const resubscribed: Array<[AwsAction, number]> = [
      ['subscribe-success', 5],
      ['unsubscribe-pending', 60],
      ['subscribe-success', 70],
    ];
    for (const order of permutations(resubscribed)) expect(play(order).view.status).toBe('subscribed');
  });

  it('clamps a send time to no later than its receipt, and fills a missing one with the receipt', () => {
    const received = new Date(Date.UTC(2026, 10, 1, 12));
    expect(clampSentAt(new Date(Date.UTC(2099, 0, 1)), received)).toBe(received.toISOString());
    expect(clampSentAt(undefined, received)).toBe(received.toISOString());
    expect(clampSentAt(new Date('not a date'), received)).toBe(received.toISOString());
    expect(clampSentAt(new Date(Date.UTC(2026, 10, 1, 11)), received)).toBe(
      new Date(Date.UTC(2026, 10, 1, 11)).toISOString(),
    );
  });

  it('keeps a bounded memory of ids: a duplicate inside it is refused, the oldest fall out', () => {
    const seen = new SeenIds([], 3);
    expect(['a', 'b', 'a', 'c', 'd'].map((id) => seen.add(id))).toEqual([true, true, false, true, true]);
    expect(seen.toJSON()).toEqual(['b', 'c', 'd']);
    expect(new SeenIds(seen.toJSON(), 3).add('c')).toBe(false);
  });
});
