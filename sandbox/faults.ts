/** Request quota and fault injection, so reliability tests can make the sandbox misbehave on purpose. */
import { StringEnum, Type, type Static } from '../lib/schema';

export const Operation = StringEnum(['ResolveCustomer', 'BatchMeterUsage', '*'] as const);
export type Operation = Static<typeof Operation>;

export const FaultRule = Type.Object(
  {
    operation: Type.Optional(Operation),
    /**
     * throttle, internal, disabled: the whole call fails with that AWS error.
     * latency: the call is delayed by latencyMs, then proceeds.
     * unprocessed: BatchMeterUsage returns records in UnprocessedRecords.
     */
    fault: StringEnum(['throttle', 'internal', 'disabled', 'latency', 'unprocessed'] as const),
    /** How many calls (or, for `unprocessed`, records) it applies to; unlimited when absent. */
    count: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Chance per call or record; 1 when absent. */
    probability: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    latencyMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
  },
  { additionalProperties: false },
);
export type FaultRule = Static<typeof FaultRule>;

type CallFault = 'throttle' | 'internal' | 'disabled';

export class FaultInjector {
  private rules: Array<FaultRule & { remaining: number }> = [];

  set(rules: FaultRule[]): void {
    this.rules = [];
    rules.forEach((rule) => this.add(rule));
  }

  add(rule: FaultRule): void {
    this.rules.push({ ...rule, remaining: rule.count ?? Number.POSITIVE_INFINITY });
  }

  clear(): void {
    this.rules = [];
  }

  list(): Array<FaultRule & { remaining: number | null }> {
    return this.rules.map((rule) => ({ ...rule, remaining: Number.isFinite(rule.remaining) ? rule.remaining : null }));
  }

  private take(operation: Operation, fault: FaultRule['fault']): FaultRule | undefined {
    for (const rule of this.rules) {
      if (rule.fault !== fault || rule.remaining <= 0) continue;
      if (rule.operation && rule.operation !== '*' && rule.operation !== operation) continue;
      if (rule.probability !== undefined && Math.random() >= rule.probability) continue;
      rule.remaining -= 1;
      return rule;
    }
    return undefined;
  }

  latencyFor(operation: Operation): number {
    return this.take(operation, 'latency')?.latencyMs ?? 0;
  }

  callFault(operation: Operation): CallFault | undefined {
    for (const fault of ['throttle', 'internal', 'disabled'] as const) {
      if (this.take(operation, fault)) return fault;
    }
    return undefined;
  }

  /** Whether this one record should come back in UnprocessedRecords. */
  leaveUnprocessed(): boolean {
    return this.take('BatchMeterUsage', 'unprocessed') !== undefined;
  }
}

/** A token bucket: `rps` requests per second with a burst of one second's worth. */
export class RequestQuota {
  private tokens: number;
  private last = Date.now();

  constructor(private rps: number) {
    this.tokens = rps;
  }

  get ratePerSecond(): number {
    return this.rps;
  }

  setRate(rps: number): void {
    this.rps = rps;
    this.tokens = Math.min(this.tokens, rps);
  }

  tryTake(now = Date.now()): boolean {
    this.tokens = Math.min(this.rps, this.tokens + ((now - this.last) / 1000) * this.rps);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
