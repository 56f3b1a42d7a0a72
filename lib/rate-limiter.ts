/**
 * Paces calls to at most `ratePerSecond`, evenly spaced (no burst), so a
 * quota of N requests per second is used to the full without tripping it.
 * Shared by every caller in the process.
 *
 * The spacing holds between the calls' real starts, not only between the
 * slots handed out: no `burst` calls start within `burst` intervals, where
 * `burst` is one up to 100 a second (each call at least one interval after
 * the one before) and a hundredth of the rate above it. A process busy for a
 * while (timers fire late) therefore resumes at the same pace instead of
 * releasing every overdue caller at once, which a quota measured per second
 * would see as a burst. The allowance above 100 a second is what a timer can
 * keep: a turn of a loaded event loop takes milliseconds, so one start per
 * turn would hold 1,000 a second to a few hundred.
 */
export class RateLimiter {
  private next = 0;
  /** The last `burst` real starts, oldest first. */
  private readonly starts: number[] = [];
  private turns: Promise<void> = Promise.resolve();
  private readonly intervalMs: number;
  private readonly burst: number;

  constructor(ratePerSecond: number) {
    if (!(ratePerSecond > 0)) throw new Error('ratePerSecond must be positive');
    this.intervalMs = 1000 / ratePerSecond;
    this.burst = Math.max(1, Math.floor(ratePerSecond / 100));
  }

  /** Resolves when the caller may start its call. */
  async acquire(): Promise<void> {
    await this.tryAcquire(Infinity);
  }

  /**
   * Like acquire(), for callers that cannot wait long (a person's browser):
   * when the next free slot is more than `maxWaitMs` away, resolves false at
   * once and takes no slot.
   */
  async tryAcquire(maxWaitMs: number): Promise<boolean> {
    const now = Date.now();
    const slot = Math.max(now, this.next);
    if (slot - now > maxWaitMs) return false;
    this.next = slot + this.intervalMs;
    const turn = this.turns.then(async () => {
      const windowOpens = this.starts.length < this.burst ? -Infinity : this.starts[0]! + this.burst * this.intervalMs;
      const wait = Math.max(slot, windowOpens) - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.starts.push(Date.now());
      if (this.starts.length > this.burst) this.starts.shift();
    });
    this.turns = turn;
    await turn;
    return true;
  }

  /** How long a caller arriving now would wait for its slot. */
  backlogMs(now = Date.now()): number {
    return Math.max(0, this.next - now);
  }
}

/**
 * A ceiling shared by many clients that no one client can fill: each holds at
 * most one place in the queue for a slot, so the first-come order becomes a
 * round-robin over clients. A flood spread over N addresses then delays a real
 * buyer by N slots, not by the flood's whole backlog, and a client that asks
 * again while it still waits is turned away without taking a slot.
 */
export class PerClientCeiling {
  private readonly waiting = new Set<string>();

  constructor(
    private readonly limiter: RateLimiter,
    private readonly maxWaitMs: number,
  ) {}

  async tryAcquire(client: string): Promise<boolean> {
    if (this.waiting.has(client)) return false;
    this.waiting.add(client);
    try {
      return await this.limiter.tryAcquire(this.maxWaitMs);
    } finally {
      this.waiting.delete(client);
    }
  }

  backlogMs(): number {
    return this.limiter.backlogMs();
  }
}

/**
 * Who a client is for a per-client limit: an IPv4 address (IPv4-mapped IPv6
 * included), or the /64 of an IPv6 address, which one host usually owns whole.
 */
export function clientKeyOf(ip: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!ip.includes(':')) return ip;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
