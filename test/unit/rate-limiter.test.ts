/**
 * The pacing behind metering's BatchMeterUsage calls and the registration
 * ceiling on ResolveCustomer (lib/rate-limiter.ts), on Jest's fake clock: the
 * spacing is exact, and a process whose timers fire late resumes at the same
 * pace instead of in a burst.
 */
import { clientKeyOf, PerClientCeiling, RateLimiter } from '../../lib/rate-limiter';

const START = Date.UTC(2026, 10, 1);

/** Starts `n` acquisitions now; each records when it was let through, relative to START. */
function acquireMany(limiter: RateLimiter, n: number): number[] {
  const starts: number[] = [];
  for (let i = 0; i < n; i++) void limiter.acquire().then(() => starts.push(Date.now() - START));
  return starts;
}

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

describe('RateLimiter', () => {
  beforeEach(() => jest.useFakeTimers({ now: START }));
  afterEach(() => jest.useRealTimers());

  it('lets callers through evenly spaced at the rate, the first at once', async () => {
    const starts = acquireMany(new RateLimiter(10), 5);
    await jest.advanceTimersByTimeAsync(0);
    expect(starts).toEqual([0]);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(starts).toEqual([0, 100, 200, 300, 400]);
  });

  it('after the process was busy (timers late), resumes at the same pace rather than releasing every overdue caller', async () => {
    const starts = acquireMany(new RateLimiter(10), 6);
    await jest.advanceTimersByTimeAsync(0);
    // The event loop is blocked for a second: the clock moves, no timer fires.
    jest.setSystemTime(START + 1_000);
    await jest.advanceTimersByTimeAsync(2_000);
    expect(starts).toHaveLength(6);
    expect(starts[1]).toBeGreaterThan(1_000);
    expect(Math.min(...gaps(starts))).toBeGreaterThanOrEqual(100);
  });

  it('tryAcquire refuses at once, taking no slot, when the wait would be longer than the caller can afford', async () => {
    const limiter = new RateLimiter(10);
    acquireMany(limiter, 3);
    expect(limiter.backlogMs()).toBe(300);
    await expect(limiter.tryAcquire(250)).resolves.toBe(false);
    expect(limiter.backlogMs()).toBe(300);
    const granted = limiter.tryAcquire(300);
    await jest.advanceTimersByTimeAsync(300);
    await expect(granted).resolves.toBe(true);
  });

  it('has no backlog when idle, and none left once the slots have passed', async () => {
    const limiter = new RateLimiter(5);
    expect(limiter.backlogMs()).toBe(0);
    acquireMany(limiter, 2);
    expect(limiter.backlogMs()).toBe(400);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(limiter.backlogMs()).toBe(0);
  });

  it('keeps a high rate (1,000 a second) when each turn of the event loop takes 5 ms, never more than 10 in any 10 ms', async () => {
    // A timer fires only when the loop comes round, every 5 ms: at the next multiple of 5 ms after it is due.
    const fakeSetTimeout = global.setTimeout;
    const late = jest.spyOn(global, 'setTimeout').mockImplementation((callback: () => void, ms = 0) => {
      const due = Date.now() + ms;
      return fakeSetTimeout(callback, Math.ceil(due / 5) * 5 - Date.now());
    });
    const starts = acquireMany(new RateLimiter(1_000), 1_000);
    await jest.advanceTimersByTimeAsync(5_000);
    late.mockRestore();
    expect(starts).toHaveLength(1_000);
    expect(starts[999]).toBeLessThanOrEqual(1_010);
    const busiest = Math.max(...starts.map((t) => starts.filter((u) => u >= t && u < t + 10).length));
    expect(busiest).toBeLessThanOrEqual(10);
  });

  it('at a high rate too, resumes after a blocked second at the same pace, not with the whole backlog', async () => {
    const starts = acquireMany(new RateLimiter(1_000), 500);
    await jest.advanceTimersByTimeAsync(0);
    jest.setSystemTime(START + 1_000);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(starts).toHaveLength(500);
    const busiest = Math.max(...starts.map((t) => starts.filter((u) => u >= t && u < t + 10).length));
    expect(busiest).toBeLessThanOrEqual(10);
  });

  it.each([0, -1, Number.NaN])('refuses a rate of %p', (rate) => {
    expect(() => new RateLimiter(rate)).toThrow(/ratePerSecond must be positive/);
  });
});

describe('PerClientCeiling', () => {
  beforeEach(() => jest.useFakeTimers({ now: START }));
  afterEach(() => jest.useRealTimers());

  it('holds one place per client: a client asking again while it waits is turned away without taking a slot', async () => {
    const limiter = new RateLimiter(10);
    const ceiling = new PerClientCeiling(limiter, 1_000);
    const first = ceiling.tryAcquire('attacker');
    const queued = ceiling.tryAcquire('attacker2');
    await expect(ceiling.tryAcquire('attacker2')).resolves.toBe(false);
    expect(ceiling.backlogMs()).toBe(200);
    await jest.advanceTimersByTimeAsync(200);
    await expect(first).resolves.toBe(true);
    await expect(queued).resolves.toBe(true);
    // Its turn over, the client may ask again.
    const again = ceiling.tryAcquire('attacker2');
    await jest.advanceTimersByTimeAsync(100);
    await expect(again).resolves.toBe(true);
  });

  it("so a flood from many clients delays another client by one slot each, not by the flood's backlog", async () => {
    const ceiling = new PerClientCeiling(new RateLimiter(10), 10_000);
    const flood = Array.from({ length: 100 }, (_, i) => ceiling.tryAcquire(`10.0.0.${i % 5}`));
    const buyer = ceiling.tryAcquire('192.0.2.7');
    let buyerAt: number | undefined;
    void buyer.then(() => (buyerAt = Date.now() - START));
    await jest.advanceTimersByTimeAsync(10_000);
    expect((await Promise.all(flood)).filter(Boolean)).toHaveLength(5);
    expect(buyerAt).toBe(500);
  });

  it('answers false when the ceiling is further away than the client can wait', async () => {
    const ceiling = new PerClientCeiling(new RateLimiter(1), 500);
    const first = ceiling.tryAcquire('a');
    await expect(ceiling.tryAcquire('b')).resolves.toBe(false);
    await jest.advanceTimersByTimeAsync(0);
    await expect(first).resolves.toBe(true);
  });
});

describe('clientKeyOf', () => {
  it.each([
    ['203.0.113.9', '203.0.113.9'],
    ['::ffff:203.0.113.9', '203.0.113.9'],
    ['::FFFF:203.0.113.9', '203.0.113.9'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:0:0:ffff::', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['::', '0:0:0:0::/64'],
  ])('%s is client %s', (ip, key) => {
    expect(clientKeyOf(ip)).toBe(key);
  });

  it('puts every address of one /64 under one key, and neighbouring /64s under others', () => {
    const keys = ['2001:db8:a:b::1', '2001:db8:a:b:ffff:ffff:ffff:ffff', '2001:db8:a:b:1::'].map(clientKeyOf);
    expect(new Set(keys).size).toBe(1);
    expect(clientKeyOf('2001:db8:a:c::1')).not.toBe(keys[0]);
    expect(clientKeyOf('203.0.113.9')).not.toBe(clientKeyOf('203.0.113.10'));
  });
});
