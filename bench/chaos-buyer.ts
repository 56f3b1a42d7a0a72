/**
 * bench/chaos's buyers: a browser-like client (cookie jar, no automatic
 * redirects, Origin on every request but GET) and the buyer's journey through
 * the load balancer, retried as a browser (or the index page's script) would
 * retry it: an answer of 429 or 5xx, or no answer at all (a replica killed
 * mid-request, a store that stopped answering), is tried again a second later,
 * and the time from the start of a step's first failed request to its success
 * is that step's stall. Each step also keeps its slowest single request (a
 * request that hung through the store's freeze and then succeeded is no
 * failure, but it is seen there), and a registration turned away by the
 * ResolveCustomer ceiling (503 with the "busy" page: load, not a fault) is
 * counted and timed apart.
 *
 * The sandbox's control API is called as AWS would act: idempotent calls
 * (reads) are retried; calls that create something (a notification, a token)
 * are retried only when the request cannot have been acted on (the connection
 * was refused, or the sandbox answered that it failed); an answer lost after
 * the request was sent throws LostAnswer, so that the caller learns what was
 * created instead of creating it twice.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** No answer within this: the browser gives up on the request and the buyer tries again. */
const REQUEST_TIMEOUT_MS = 60_000;
/** The sandbox waits on the same store: a call that creates something gets longer than the store's 30 s freeze. */
const CONTROL_TIMEOUT_MS = 120_000;
/** The registration page AWS's buyer sees when the ResolveCustomer ceiling turned the request away. */
const BUSY_PAGE = 'Too many sign-ups are waiting';
/**
 * The ceiling answers "busy" after waiting at most 10 s for a slot (api/routes/linking/registration.ts): a busy answer
 * that took longer waited on something else too (the store's freeze), and its stall is not counted as load alone.
 */
const BUSY_ANSWER_MAX_MS = 11_000;
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

/** The request was sent, and no answer came: it may have been acted on. */
export class LostAnswer extends Error {}

/** Whether fetch failed before the request reached the server (nothing can have been acted on). */
function refused(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } }).cause;
  return cause?.code === 'ECONNREFUSED';
}

/**
 * Calls the sandbox's control API (AWS's side); retried while the sandbox cannot answer (its store stopped, say).
 * `creates`: the call creates something (a notification, a token); it is retried only when it cannot have been acted
 * on, and a lost answer throws LostAnswer.
 */
export function sandboxControl(url: string, lost: { count: number } = { count: 0 }) {
  return async <T = unknown>(method: string, path: string, body?: unknown, creates = false): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      let text: string;
      try {
        response = await fetch(`${url}${path}`, {
          method,
          signal: AbortSignal.timeout(creates ? CONTROL_TIMEOUT_MS : REQUEST_TIMEOUT_MS),
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        text = await response.text();
      } catch (error) {
        // A refused connection never reached the sandbox; anything else (a cut answer too) may have been acted on.
        if (creates && !refused(error)) {
          lost.count++;
          throw new LostAnswer(`${method} ${path}: no answer (${(error as Error).message})`, { cause: error });
        }
        if (attempt >= 20) throw error;
        await sleep(RETRY_AFTER_MS);
        continue;
      }
      // A 5xx is the sandbox saying it failed (the publication or the store write threw): nothing was sent.
      if (response.status >= 500 && attempt < 20) {
        await sleep(RETRY_AFTER_MS);
        continue;
      }
      if (response.status >= 300) throw new Error(`sandbox answered ${response.status}: ${text}`);
      return (text ? JSON.parse(text) : undefined) as T;
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
  /** Failures by kind: the status (`503-busy` for the ResolveCustomer ceiling's page), `timeout`, `no-answer`. */
  failures: Record<string, number>;
  /** From the start of the first failed request to the start of the answer that was not a failure. */
  stalledMs: number;
  /**
   * The part of stalledMs spent in stalls whose every failure was the ResolveCustomer ceiling's, each answered within
   * its 10 s wait (load, no fault).
   */
  busyStalledMs: number;
  /** The slowest single request of the step, whatever its answer, and when it started (epoch ms). */
  slowestMs: number;
  slowestOutcome?: string;
  slowestStartedAt?: number;
}

export interface JourneyResult {
  index: number;
  ok: boolean;
  error?: string;
  steps: Record<string, StepFigures>;
  /** Every step's stall, added up: how long this buyer waited on failed requests. */
  stalledMs: number;
  /** The part of stalledMs that was the ResolveCustomer ceiling's alone (503 busy: load, not a fault). */
  busyStalledMs: number;
  /** From AWS's subscribe-success (sent by the sandbox) to the index page showing `linked`. */
  syncMs?: number;
  /** The message ids of the subscribe-success notifications the sandbox sent. */
  subscribeMessageIds: string[];
  /** Notifications whose answer was lost (sent, id unknown: the caller learns it), by action. */
  lostActions: string[];
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
  const f = (figures[name] ??= { attempts: 0, failures: {}, stalledMs: 0, busyStalledMs: 0, slowestMs: 0 });
  let firstFailure: number | undefined;
  let onlyBusy = true;
  const stalled = (end: number) => {
    if (firstFailure === undefined) return;
    f.stalledMs += end - firstFailure;
    if (onlyBusy) f.busyStalledMs += end - firstFailure;
  };
  for (;;) {
    f.attempts++;
    const started = Date.now();
    let failure: string | undefined;
    let answer: Answer | undefined;
    try {
      answer = await send();
      if (RETRYABLE.has(answer.status))
        failure = answer.status === 503 && answer.text.includes(BUSY_PAGE) ? '503-busy' : String(answer.status);
    } catch (error) {
      failure = (error as Error).name === 'TimeoutError' ? 'timeout' : 'no-answer';
    }
    const tookMs = Date.now() - started;
    if (tookMs > f.slowestMs) {
      f.slowestMs = tookMs;
      f.slowestOutcome = failure ?? String(answer!.status);
      f.slowestStartedAt = started;
    }
    if (failure === undefined) {
      stalled(Date.now());
      return answer!;
    }
    f.failures[failure] = (f.failures[failure] ?? 0) + 1;
    if (failure !== '503-busy' || tookMs > BUSY_ANSWER_MAX_MS) onlyBusy = false;
    firstFailure ??= started;
    if (Date.now() > deadline) {
      stalled(Date.now());
      throw new StepFailed(`${name}: still failing (${failure}) at the deadline`);
    }
    await sleep(RETRY_AFTER_MS);
  }
}

/**
 * Has the sandbox send a notification (through SNS into the queue, as AWS does); its message id, or undefined when the
 * answer was lost. Not retried once sent: a lost answer is a notification whose id the store tells, not a second one.
 */
export async function sendNotification(
  control: SandboxControl,
  sandboxCustomerId: string,
  action: string,
): Promise<string | undefined> {
  try {
    const sent = await control<{ messageId: string }>(
      'POST',
      `/control/customers/${sandboxCustomerId}/notifications`,
      { action },
      true,
    );
    return sent.messageId;
  } catch (error) {
    if (!(error instanceof LostAnswer)) throw error;
    return undefined;
  }
}

/** A new registration token; a lost answer mints another (a token nobody posts changes nothing). */
async function mintToken(control: SandboxControl, customerId: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await control<{ token: string }>('POST', `/control/customers/${customerId}/tokens`, {}, true)).token;
    } catch (error) {
      if (!(error instanceof LostAnswer) || attempt >= 5) throw error;
    }
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
    busyStalledMs: 0,
    subscribeMessageIds: [],
    lostActions: [],
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
        token = await mintToken(control, plan.sandboxCustomerId);
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

    const sentAt = Date.now();
    const subscribeSuccess = async () => {
      const messageId = await sendNotification(control, plan.sandboxCustomerId, 'subscribe-success');
      if (messageId) result.subscribeMessageIds.push(messageId);
      else result.lostActions.push('subscribe-success');
    };
    await subscribeSuccess();
    // AWS sends subscribe-success again (an amended offer, a redrive): a second message, the same meaning.
    if (options.extraSubscribeSuccess) await subscribeSuccess();
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
  result.busyStalledMs = Object.values(figures).reduce((sum, f) => sum + f.busyStalledMs, 0);
  return result;
}
