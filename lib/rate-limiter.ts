/**
 * Paces calls to at most `ratePerSecond`, evenly spaced (no burst), so a
 * quota of N requests per second is used to the full without tripping it.
 * Shared by every caller in the process.
 */
export class RateLimiter {
  private next = 0;

  constructor(private readonly ratePerSecond: number) {
    if (!(ratePerSecond > 0)) throw new Error('ratePerSecond must be positive');
  }

  /** Resolves when the caller may start its call. */
  async acquire(): Promise<void> {
    const now = Date.now();
    const slot = Math.max(now, this.next);
    this.next = slot + 1000 / this.ratePerSecond;
    if (slot > now) await new Promise((resolve) => setTimeout(resolve, slot - now));
  }
}
