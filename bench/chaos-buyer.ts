/**
 * bench/chaos's buyers: a browser-like client (cookie jar, no automatic
 * redirects, Origin on every request but GET) and the buyer's journey through
 * the load balancer, retried as a browser (or the index page's script) would
 * retry it: an answer of 429 or 5xx, or no answer at all (a replica killed
 * mid-request, a store that stopped answering), is tried again a second later,
 * and the time from the first failure of a step to its success is that step's
 * stall.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** No answer within this: the browser gives up on the request and the buyer tries again. */
const REQUEST_TIMEOUT_MS = 60_000;
const RETRY_AFTER_MS = 1000;
/** 408 and 425 never come from us; 429, 500, 502, 503, 504 are what a buyer sees from a cluster under faults. */
const RETRYABLE = new Set([429, 500, 502, 503, 504]);

export class ChaosBrowser {
  readonly cookies = new Map<string, string>();
  private readonly origin: string;

  constructor(private readonly baseUrl: string) {
    this.origin = new URL(baseUrl).origin;
  }

  async request(method: string, path: string, body?: { form?: Record<string, string>; json?: unknown }) {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(new URL(path, this.baseUrl), {
      method,
      redirect: 'manual',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      headers: {
        ...(cookie ? { cookie } : {}),
        ...(method === 'GET' || method === 'HEAD' ? {} : { origin: this.origin }),
        ...(body?.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...(body?.json !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body?.form
        ? new URLSearchParams(body.form).toString()
        : body?.json !== undefined
          ? JSON.stringify(body.json)
          : undefined,
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at).trim();
      const value = pair!.slice(at + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return { status: response.status, headers: response.headers, text: await response.text() } satisfies Answer;
  }
}

/** Calls the sandbox's control API (AWS's side); retried while the sandbox cannot answer (its store stopped, say). */
export function sandboxControl(url: string) {
  return async <T = unknown>(method: string, path: string, body?: unknown): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(`${url}${path}`, {
          method,
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await response.text();
        if (response.status >= 500 && attempt < 20) throw new Error(`sandbox answered ${response.status}: ${text}`);
        if (response.status >= 300)
          throw Object.assign(new Error(`sandbox answered ${response.status}: ${text}`), { final: true });
        return (text ? JSON.parse(text) : undefined) as T;
      } catch (error) {
        if ((error as { final?: boolean }).final || attempt >= 20) throw error;
        await sleep(RETRY_AFTER_MS);
      }
    }
  };
}
export type SandboxControl = ReturnType<typeof sandboxControl>;

export interface BuyerPlan {
  index: number;
  accountId: string;
  email: string;
  password: string;
  sandboxCustomerId: string;
  awsAccountId: string;
  licenseArn: string;
  productCode: string;
  token: string;
}

export interface StepFigures {
  attempts: number;
  failures: Record<string, number>;
  stalledMs: number;
}

export interface JourneyResult {
  index: number;
  ok: boolean;
  error?: string;
  steps: Record<string, StepFigures>;
  /** Every step's stall, added up: how long this buyer waited on failed requests. */
  stalledMs: number;
  /** From AWS's subscribe-success (sent by the sandbox) to the index page showing `linked`. */
  syncMs?: number;
  /** The message ids of the subscribe-success notifications the sandbox sent. */
  subscribeMessageIds: string[];
  linkedAt?: number;
  /** Tokens the buyer needed: a second one when a registration's answer was lost and the token was then refused. */
  tokens: number;
}

class StepFailed extends Error {}

/**
 * Runs one request until it gets an answer that is not a failure (429, 5xx, no answer), before `deadline`.
 * What counts as failure is recorded; the stall is the time from the first failure to the answer.
 */
async function step(
  figures: Record<string, StepFigures>,
  name: string,
  deadline: number,
  send: () => Promise<Answer>,
): Promise<Answer> {
  const f = (figures[name] ??= { attempts: 0, failures: {}, stalledMs: 0 });
  let firstFailure: number | undefined;
  for (;;) {
    f.attempts++;
    let failure: string;
    try {
      const answer = await send();
      if (!RETRYABLE.has(answer.status)) {
        if (firstFailure !== undefined) f.stalledMs += Date.now() - firstFailure;
        return answer;
      }
      failure = String(answer.status);
    } catch (error) {
      failure = (error as Error).name === 'TimeoutError' ? 'timeout' : 'no-answer';
    }
    f.failures[failure] = (f.failures[failure] ?? 0) + 1;
    firstFailure ??= Date.now();
    if (Date.now() > deadline) {
      f.stalledMs += Date.now() - firstFailure;
      throw new StepFailed(`${name}: still failing (${failure}) at the deadline`);
    }
    await sleep(RETRY_AFTER_MS);
  }
}

/**
 * Registration (AWS's POST of the token), sign-in, the Link button, AWS's subscribe-success (the sandbox sends it
 * through SNS into the queue), and the index page polling the link's status until it shows `linked`.
 */
export async function buyerJourney(
  lb: string,
  control: SandboxControl,
  plan: BuyerPlan,
  options: { deadline: number; extraSubscribeSuccess: boolean },
): Promise<JourneyResult> {
  const figures: Record<string, StepFigures> = {};
  const result: JourneyResult = {
    index: plan.index,
    ok: false,
    steps: figures,
    stalledMs: 0,
    subscribeMessageIds: [],
    tokens: 1,
  };
  const { deadline } = options;
  try {
    let browser = new ChaosBrowser(lb);
    let token = plan.token;
    let registered: Answer;
    for (;;) {
      registered = await step(figures, 'register', deadline, () =>
        browser.request('POST', '/marketplace/register', { form: { 'x-amzn-marketplace-token': token } }),
      );
      // The first POST was acted on but its answer (and the binding cookie) was lost: the token is spent for any
      // other browser. As AWS's buyer would, go back to AWS and press "Set up your account" again: a new token.
      if (registered.status === 409 && Date.now() < deadline) {
        const fresh = await control<{ token: string }>(
          'POST',
          `/control/customers/${plan.sandboxCustomerId}/tokens`,
          {},
        );
        token = fresh.token;
        result.tokens++;
        browser = new ChaosBrowser(lb);
        continue;
      }
      break;
    }
    if (registered.status !== 303)
      throw new StepFailed(`register answered ${registered.status}: ${registered.text.slice(0, 200)}`);
    const next = decodeURIComponent(registered.headers.get('location')!.split('next=')[1] ?? '');
    const signedIn = await step(figures, 'signin', deadline, () =>
      browser.request('POST', '/signin', { form: { email: plan.email, password: plan.password, next } }),
    );
    if (signedIn.status !== 303)
      throw new StepFailed(`sign-in answered ${signedIn.status}: ${signedIn.text.slice(0, 200)}`);
    const linkCode = new URL(signedIn.headers.get('location')!, 'http://x').searchParams.get('link');
    if (!linkCode) throw new StepFailed(`sign-in sent the buyer to ${signedIn.headers.get('location')}`);
    const linked = await step(figures, 'link', deadline, () =>
      browser.request('POST', '/api/links', { json: { linkCode } }),
    );
    if (linked.status !== 202) throw new StepFailed(`link answered ${linked.status}: ${linked.text.slice(0, 200)}`);

    const notified = await control<{ messageId: string }>(
      'POST',
      `/control/customers/${plan.sandboxCustomerId}/notifications`,
      { action: 'subscribe-success' },
    );
    const sentAt = Date.now();
    result.subscribeMessageIds.push(notified.messageId);
    // AWS sends subscribe-success again (an amended offer, a redrive): a second message, the same meaning.
    if (options.extraSubscribeSuccess) {
      const again = await control<{ messageId: string }>(
        'POST',
        `/control/customers/${plan.sandboxCustomerId}/notifications`,
        { action: 'subscribe-success' },
      );
      result.subscribeMessageIds.push(again.messageId);
    }
    for (;;) {
      const current = await step(figures, 'status', deadline, () => browser.request('GET', '/api/links/current'));
      if (current.status === 200 && (JSON.parse(current.text) as { phase?: string }).phase === 'linked') break;
      if (Date.now() > deadline)
        throw new StepFailed(`not linked at the deadline: ${current.status} ${current.text.slice(0, 200)}`);
      await sleep(250);
    }
    result.linkedAt = Date.now();
    result.syncMs = result.linkedAt - sentAt;
    result.ok = true;
  } catch (error) {
    result.error = (error as Error).message;
  }
  result.stalledMs = Object.values(figures).reduce((sum, f) => sum + f.stalledMs, 0);
  return result;
}
