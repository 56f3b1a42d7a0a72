/**
 * The ids this poller handed off lately, newest last, bounded. Most
 * duplicates arrive within minutes of the original, so they are recognised
 * here without touching the store; an older one, or one first seen by another
 * poller, is recognised by the store's unique key instead.
 */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 100_000) {}

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    this.ids.delete(id);
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value!);
  }
}
