/**
 * The subscription's state (workflows/subscription-state.ts) without a
 * workflow around it: events before and after the store is read, duplicates,
 * the bounded history, names learned from events, link requests and the
 * per-account link statuses the pages read, and the snapshot a later run
 * starts from.
 */
import { UNKNOWN } from '../../domain/aws-ordering';
import { linkMessage } from '../../domain/link-model';
import type { SubscriptionEvent, SubscriptionSnapshot } from '../../domain/subscription-model';
import { SubscriptionState } from '../../workflows/subscription/state';

const ref = { awsAccountId: '123456789012', productCode: 'prod-a' };
const at = (minute: number) => new Date(Date.UTC(2026, 10, 1, 0, minute)).toISOString();
const event = (
  id: string,
  action: SubscriptionEvent['action'],
  minute: number,
  extra: Partial<SubscriptionEvent> = {},
): SubscriptionEvent => ({
  id,
  action,
  sentAt: at(minute),
  ...extra,
});

/** A state that has read the store and found nothing: it applies events at once. */
function fresh(now = () => Date.UTC(2026, 10, 1, 1)): SubscriptionState {
  const state = new SubscriptionState({ ref }, now);
  state.restore(undefined, []);
  return state;
}

const savedState = (overrides: Partial<SubscriptionSnapshot> = {}): SubscriptionSnapshot => ({
  ref,
  phase: 'active',
  owner: 'acct-1',
  aws: { status: 'subscribed', latestAt: Date.parse(at(0)), periodStartedAt: Date.parse(at(0)) },
  seen: ['e-old'],
  handledPeriodAt: Date.parse(at(0)),
  history: [{ id: 'e-old', action: 'subscribe-success', sentAt: at(0), verdict: 'subscribed' }],
  ...overrides,
});

describe('SubscriptionState: AWS events', () => {
  it('holds events that arrive before the store is read, and applies them after what the store knew', () => {
    const state = new SubscriptionState({ ref }, Date.now);
    // The buyer cancels while the new run is still reading its saved state.
    state.receive(event('e-pending', 'unsubscribe-pending', 30));
    expect(state.aws).toEqual(UNKNOWN);
    expect(state.received).toBe(1);

    state.restore(savedState(), []);
    expect(state.aws.status).toBe('leaving');
    expect(state.snapshot().history.map((h) => [h.id, h.verdict])).toEqual([
      ['e-old', 'subscribed'],
      ['e-pending', 'leaving'],
    ]);
  });

  it('applies recorded events before early ones, and an event present in both only once', () => {
    const state = new SubscriptionState({ ref }, Date.now);
    state.receive(event('e2', 'unsubscribe-pending', 10));
    state.restore(undefined, [event('e1', 'subscribe-success', 0), event('e2', 'unsubscribe-pending', 10)]);
    expect(state.snapshot().history.map((h) => [h.id, h.verdict])).toEqual([
      ['e1', 'subscribed'],
      ['e2', 'leaving'],
    ]);
    expect(state.awsChanges).toBe(2);
  });

  it('a saved state never overwrites a newer event that arrived while it was read', () => {
    const state = new SubscriptionState({ ref }, Date.now);
    state.receive(event('e-new', 'unsubscribe-success', 90));
    state.restore(savedState({ aws: { status: 'subscribed', latestAt: Date.parse(at(0)) } }), []);
    expect(state.awsEnded).toBe(true);
  });

  it('a redelivery (same id) changes nothing and is not remembered twice, also after a restart from the snapshot', () => {
    const state = fresh();
    state.receive(event('e1', 'subscribe-success', 0));
    state.receive(event('e1', 'subscribe-success', 0));
    expect(state.received).toBe(2);
    expect(state.awsChanges).toBe(1);
    expect(state.snapshot().history).toHaveLength(1);

    const next = new SubscriptionState(state.snapshot(), Date.now);
    next.receive(event('e1', 'subscribe-success', 0));
    expect(next.awsChanges).toBe(0);
    expect(next.snapshot().history).toHaveLength(1);
  });

  it('records a stale event in the history without counting it as a change', () => {
    const state = fresh();
    state.receive(event('e1', 'unsubscribe-success', 60));
    state.receive(event('e0', 'subscribe-success', 0));
    expect(state.awsEnded).toBe(true);
    expect(state.awsChanges).toBe(1);
    expect(state.snapshot().history.at(-1)).toEqual({
      id: 'e0',
      action: 'subscribe-success',
      sentAt: at(0),
      verdict: 'stale',
    });
  });

  it('keeps the last 30 events for operators, oldest dropped first', () => {
    const state = fresh();
    for (let i = 0; i < 35; i++) state.receive(event(`e${i}`, i % 2 ? 'subscribe-fail' : 'subscribe-success', i));
    const history = state.snapshot().history;
    expect(history).toHaveLength(30);
    expect(history[0]!.id).toBe('e5');
    expect(history.at(-1)!.id).toBe('e34');
  });

  it('marks amendments in the history and never starts a period with one', () => {
    const state = fresh();
    state.receive(event('a1', 'subscribe-success', 0, { amendment: true }));
    expect(state.awsSubscribed).toBe(false);
    expect(state.snapshot().history).toEqual([
      { id: 'a1', action: 'subscribe-success', sentAt: at(0), amendment: true, verdict: 'stale' },
    ]);
  });

  it('reports a new period until billing has been (re)started for it', () => {
    const state = fresh();
    state.receive(event('e1', 'subscribe-success', 0));
    expect(state.newPeriod).toBe(true);
    state.handledPeriodAt = state.aws.periodStartedAt;
    expect(state.newPeriod).toBe(false);
    state.receive(event('e2', 'unsubscribe-pending', 10));
    expect([state.awsLeaving, state.newPeriod]).toEqual([true, false]);
    state.receive(event('e3', 'subscribe-success', 20));
    expect(state.newPeriod).toBe(true);
  });

  it("an operator's restore holds until AWS sends something strictly newer", () => {
    const state = fresh();
    state.receive(event('e1', 'unsubscribe-success', 10));
    state.overrideAwsStatus('subscribed');
    state.receive(event('e2', 'unsubscribe-success', 10));
    expect(state.awsSubscribed).toBe(true);
    state.receive(event('e3', 'unsubscribe-success', 11));
    expect(state.awsEnded).toBe(true);
  });
});

describe('SubscriptionState: names', () => {
  it('fills in the product and customer identifier from events, never overwriting them, and never changes the key', () => {
    const state = new SubscriptionState({ ref: { awsAccountId: '123456789012', productCode: '' } }, Date.now);
    state.restore(undefined, []);
    state.receive(
      event('e1', 'subscribe-success', 0, {
        productCode: 'prod-a',
        customerIdentifier: 'cust-1',
        licenseArn: 'arn:aws:license-manager::1:license/l-abc',
      }),
    );
    state.receive(event('e2', 'subscribe-success', 1, { productCode: 'prod-b', customerIdentifier: 'cust-2' }));
    expect(state.ref).toEqual({ awsAccountId: '123456789012', productCode: 'prod-a' });
    expect(state.customerIdentifier).toBe('cust-1');
  });

  it("on restore, the run's own names win and the saved ones fill the gaps", () => {
    const state = new SubscriptionState(
      {
        ref: { awsAccountId: '123456789012', productCode: '', licenseArn: 'arn:aws:license-manager::1:license/l-new' },
      },
      Date.now,
    );
    state.restore(
      savedState({
        ref: { ...ref, licenseArn: 'arn:aws:license-manager::1:license/l-old' },
        customerIdentifier: 'cust-saved',
      }),
      [],
    );
    expect(state.ref).toEqual({
      awsAccountId: '123456789012',
      productCode: 'prod-a',
      licenseArn: 'arn:aws:license-manager::1:license/l-new',
    });
    expect(state.customerIdentifier).toBe('cust-saved');
  });
});

describe('SubscriptionState: link requests and statuses', () => {
  it('answers requests first come, first served, and counts only those still waiting', () => {
    const state = fresh();
    const first = state.request('acct-1');
    const second = state.request('acct-2');
    expect(state.view().pendingRequests).toBe(2);
    expect(state.nextRequest()).toBe(first);
    state.answer(first, state.setLinkPhase('acct-1', 'refused', 'CreditCardOnFile'));
    expect(first.answer).toMatchObject({
      phase: 'refused',
      refusal: 'CreditCardOnFile',
      message: linkMessage('refused', { refusal: 'CreditCardOnFile' }),
    });
    expect(state.nextRequest()).toBe(second);
    expect(state.hasRequests).toBe(true);
    state.answer(second, state.setLinkPhase('acct-2', 'waiting-for-aws'));
    expect([state.hasRequests, state.nextRequest(), state.view().pendingRequests]).toEqual([false, undefined, 0]);
  });

  it('versions every status so a later write always sorts after an earlier one, within one instant too', () => {
    let now = Date.UTC(2026, 10, 1, 1);
    const state = fresh(() => now);
    const versions = [state.setLinkPhase('acct-1', 'checking'), state.setLinkPhase('acct-1', 'waiting-for-aws')].map(
      (s) => s.version,
    );
    now += 1;
    versions.push(state.setLinkPhase('acct-1', 'linked').version);
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
    expect(new Set(versions).size).toBe(3);
    expect(state.linkStatusOf('acct-1')).toMatchObject({
      phase: 'linked',
      updatedAt: new Date(now).toISOString(),
      ...ref,
    });
  });

  it("tells only the owner about AWS's payment problem", () => {
    const state = fresh();
    state.owner = 'acct-1';
    state.receive(event('e1', 'subscribe-fail', 0));
    expect(state.setLinkPhase('acct-1', 'waiting-for-aws')).toMatchObject({
      paymentProblem: true,
      message: 'AWS reported a payment problem; still waiting.',
    });
    expect(state.setLinkPhase('acct-2', 'waiting-for-aws')).toMatchObject({ paymentProblem: false });
  });

  it('hands each changed status out once for saving, the newest per account', () => {
    const state = fresh();
    state.setLinkPhase('acct-1', 'checking');
    state.setLinkPhase('acct-1', 'linked');
    state.setLinkPhase('acct-2', 'refused', 'AccountAlreadyLinked');
    expect(state.takeUnpublished().map((s) => [s.accountId, s.phase])).toEqual([
      ['acct-1', 'linked'],
      ['acct-2', 'refused'],
    ]);
    expect(state.takeUnpublished()).toEqual([]);
  });

  it('counts decisions as published only once the state that carried them was saved', () => {
    const state = fresh();
    state.phase = 'awaiting-aws';
    state.owner = 'acct-1';
    state.setLinkPhase('acct-1', 'waiting-for-aws');
    expect(state.effectsPublished).toBe(false);
    // The save takes the effects as they were when its snapshot was made…
    const taken = state.effects();
    state.takeUnpublished();
    // …so a change made while it was being written is not counted as saved.
    state.phase = 'active';
    state.markPublished(taken);
    expect(state.effectsPublished).toBe(false);
    state.markPublished(state.effects());
    expect(state.effectsPublished).toBe(true);
  });
});

describe('SubscriptionState: snapshot', () => {
  it('round-trips through a snapshot: a later run starts exactly where this one stopped', () => {
    const now = Date.UTC(2026, 10, 1, 1);
    const state = fresh(() => now);
    state.receive(event('e1', 'subscribe-success', 0, { customerIdentifier: 'cust-1' }));
    state.phase = 'grace-period';
    state.owner = 'acct-1';
    state.syncDeadline = now + 60_000;
    state.unsubscribeDeadline = now + 120_000;
    state.unsubscribeOverdue = true;
    state.handledPeriodAt = state.aws.periodStartedAt;
    state.failure = { phase: 'stopping', message: 'platform down', at: new Date(now).toISOString() };
    state.cancellation = { stoppedBy: 'cancel-1', stopped: [], keptRunning: [], deleted: [] };
    const snapshot = state.snapshot();
    expect(snapshot).toMatchObject({
      customerIdentifier: 'cust-1',
      seen: ['e1'],
      syncDeadline: new Date(now + 60_000).toISOString(),
      unsubscribeDeadline: new Date(now + 120_000).toISOString(),
      unsubscribeOverdue: true,
    });
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
    expect(new SubscriptionState(snapshot, () => now).snapshot()).toEqual(snapshot);
  });

  it('leaves out what is not set, so a new subscription saves a small document', () => {
    expect(fresh().snapshot()).toEqual({ ref, phase: 'registered', aws: UNKNOWN, seen: [], history: [] });
  });
});
