/**
 * Settings that are right for the local stack and wrong next to real money:
 * the api, the worker and the poller refuse to start with any of them in
 * production, naming each. A process is in production when it calls real AWS
 * (the endpoint it uses is unset, or an amazonaws.com host) or when its public
 * URL is https (a real site, whatever it talks to).
 *
 * ALLOW_UNSAFE_STAGING_SETTINGS lets an https staging or demo site that talks
 * only to the sandbox and emulators keep them, logged at every start. It is
 * ignored against real AWS: there, a known demo password, unsigned
 * notifications or a forgeable certificate would act on real bills.
 */
import { ConfigError, meteringEndpointEnv, notificationTrustEnv, parseEnv, siteEnv, Url } from './config';
import { Type, type Static } from './schema';

export type ServiceRole = 'api' | 'worker' | 'poller';

export interface GuardVerdict {
  /** Why this process counts as production; empty: it does not, and nothing is checked. */
  production: string[];
  /** One line per unsafe setting, starting with the variable's name. */
  unsafe: string[];
  /** The unsafe settings are allowed to stay (ALLOW_UNSAFE_STAGING_SETTINGS on a staging site). */
  waived: boolean;
}

type Env = Record<string, string | undefined>;

/**
 * Only the variables the guard inspects, so it stops no process on a value that
 * process ignores. The unsafe settings are read in every role: one environment
 * file often feeds all three, and a process must not start beside an unsafe one.
 */
const { API_PORT, ...unsafeSiteEnv } = siteEnv;
const guardedEnv = { ...unsafeSiteEnv, ...notificationTrustEnv };
const GUARD_SCHEMAS = {
  api: Type.Object({ ...guardedEnv, ...meteringEndpointEnv, API_PORT }),
  worker: Type.Object({ ...guardedEnv, ...meteringEndpointEnv }),
  poller: Type.Object({ ...guardedEnv, AWS_ENDPOINT_URL_SQS: Type.Optional(Url) }),
};
type GuardEnv = Static<typeof GUARD_SCHEMAS.worker> & { API_PORT?: number; AWS_ENDPOINT_URL_SQS?: string };

/** Which AWS endpoint each process calls: ResolveCustomer and BatchMeterUsage, or SQS. */
const AWS_ENDPOINT_OF: Record<
  ServiceRole,
  { variable: 'AWS_ENDPOINT_URL_MARKETPLACE_METERING' | 'AWS_ENDPOINT_URL_SQS'; service: string }
> = {
  api: { variable: 'AWS_ENDPOINT_URL_MARKETPLACE_METERING', service: 'AWS Marketplace Metering' },
  worker: { variable: 'AWS_ENDPOINT_URL_MARKETPLACE_METERING', service: 'AWS Marketplace Metering' },
  poller: { variable: 'AWS_ENDPOINT_URL_SQS', service: 'Amazon SQS' },
};

/** A VPC or regional endpoint is still AWS. */
/** AWS's own domains, as the SDK's endpoint rules name them (dual-stack `api.aws` too), with or without the root's trailing dot. */
const isAwsHost = (url: string) =>
  /(^|\.)(amazonaws\.com(\.cn)?|amazonaws\.eu|api\.aws)\.?$/i.test(new URL(url).hostname);

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|0\.0\.0\.0|\[::\])$/i;

/** Words of the values people paste instead of a generated key. */
const PLACEHOLDERS =
  /change.?me|secret|passw(or)?d|example|default|placeholder|session|signing|dummy|sample|insecure|qwerty|123456/i;

/** Random 32-character hex keys (128 bits) measure about 90 bits here; a word repeated or a keyboard walk far less. */
const MIN_ESTIMATED_BITS = 80;

/** Length times the Shannon entropy of the key's own characters: a rough upper bound, enough to catch the obvious. */
function estimatedBits(key: string): number {
  const counts = new Map<string, number>();
  for (const ch of key) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let perChar = 0;
  for (const n of counts.values()) perChar -= (n / key.length) * Math.log2(n / key.length);
  return perChar * key.length;
}

/** A short unit repeated (`abcabcabc…`). */
function isRepetition(key: string): boolean {
  for (let unit = 1; unit <= key.length / 2; unit++) {
    if (key.length % unit === 0 && key.slice(0, unit).repeat(key.length / unit) === key) return true;
  }
  return false;
}

/** Why `key` looks made by hand, never quoting it. */
function weakKey(key: string): string | undefined {
  if (PLACEHOLDERS.test(key)) return 'contains a placeholder word';
  if (isRepetition(key)) return 'is a short sequence repeated';
  if (estimatedBits(key) < MIN_ESTIMATED_BITS) return 'has too little variety to be random';
  return undefined;
}

function publicUrlProblem(url: string | undefined, port: number): string | undefined {
  if (!url)
    return `unset (the default http://localhost:${port}): set it to the site's https:// URL; without https the session cookie loses its Secure flag`;
  const parsed = new URL(url);
  const reasons = [
    ...(parsed.protocol !== 'https:' ? ['is not https, so the session cookie loses its Secure flag'] : []),
    ...(LOOPBACK.test(parsed.hostname) ? ['points at this machine, not the site buyers reach'] : []),
  ];
  return reasons.length > 0 ? `"${url}" ${reasons.join(' and ')}` : undefined;
}

/** Why the process counts as production: the AWS it calls, and the site it serves. */
function productionReasons(env: GuardEnv, role: ServiceRole): { realAws: string[]; site: string[] } {
  const { variable, service } = AWS_ENDPOINT_OF[role];
  const endpoint = env[variable];
  return {
    realAws: !endpoint
      ? [`${variable} is unset: real ${service}`]
      : isAwsHost(endpoint)
        ? [`${variable} is an AWS host: real ${service}`]
        : [],
    site: env.PUBLIC_BASE_URL?.startsWith('https://') ? [`PUBLIC_BASE_URL is https (${env.PUBLIC_BASE_URL})`] : [],
  };
}

function unsafeSettings(env: GuardEnv, role: ServiceRole): string[] {
  const unsafe: string[] = [];
  if (env.DEMO_ACCOUNTS)
    unsafe.push('DEMO_ACCOUNTS=true: seeds accounts with a published password and bills generated usage; unset it');
  if (!env.SNS_VERIFY_SIGNATURES)
    unsafe.push(
      'SNS_VERIFY_SIGNATURES=false: anyone who can send to the queue could forge AWS notifications; unset it',
    );
  // EventBridge can't be signed and rests on its queue policy; SNS always can deliver the signed envelope instead.
  if (env.SQS_QUEUE_FORMATS.split(',').includes('sns-raw')) {
    unsafe.push(
      'SQS_QUEUE_FORMATS: sns-raw gives up the SNS signature, leaving only the queue policy between a forger and the subscriptions; keep `sns` (the signed envelope)',
    );
  }
  const plainCerts = (env.SNS_TRUSTED_CERT_URLS ?? '')
    .split(',')
    .filter((url) => url.toLowerCase().startsWith('http://'));
  if (plainCerts.length > 0) {
    unsafe.push(
      `SNS_TRUSTED_CERT_URLS: http:// URLs (${plainCerts.join(', ')}): a certificate fetched in the clear can be swapped; drop them (AWS's own are https and trusted already)`,
    );
  }
  // Only the API serves buyers: the cookie, Origin and redirect rules hang on its public URL.
  if (role === 'api') {
    const problem = publicUrlProblem(env.PUBLIC_BASE_URL, env.API_PORT ?? 3000);
    if (problem) unsafe.push(`PUBLIC_BASE_URL: ${problem}`);
  }
  for (const name of ['SESSION_SIGNING_KEY', 'SESSION_SIGNING_KEY_PREVIOUS'] as const) {
    const key = env[name];
    const weakness = key ? weakKey(key) : undefined;
    if (weakness)
      unsafe.push(
        `${name}: ${weakness}; anyone who guesses it can sign sessions; generate one with \`openssl rand -base64 48\``,
      );
  }
  if (env.SIGN_IN_URL.toLowerCase().startsWith('http://'))
    unsafe.push(`SIGN_IN_URL: "${env.SIGN_IN_URL}" is not https; buyers would type their password in the clear`);
  return unsafe;
}

/** Pure: what the environment means for a process of this role. */
export function productionGuard(environment: Env, role: ServiceRole): GuardVerdict {
  const env = parseEnv(GUARD_SCHEMAS[role], environment) as GuardEnv;
  const { realAws, site } = productionReasons(env, role);
  const production = [...realAws, ...site];
  if (production.length === 0) return { production, unsafe: [], waived: false };
  const unsafe = unsafeSettings(env, role);
  return { production, unsafe, waived: unsafe.length > 0 && env.ALLOW_UNSAFE_STAGING_SETTINGS && realAws.length === 0 };
}

/** At start-up, before any connection: throws one ConfigError naming every unsafe setting, or warns about each one waived. */
export function enforceProductionGuard(environment: Env, role: ServiceRole, warn: (line: string) => void): void {
  const verdict = productionGuard(environment, role);
  if (verdict.unsafe.length === 0) return;
  const why = `production (${verdict.production.join('; ')})`;
  if (verdict.waived) {
    warn(`WARNING: ALLOW_UNSAFE_STAGING_SETTINGS=true: ${role} starts in ${why} with settings that are unsafe there:`);
    for (const line of verdict.unsafe) warn(`WARNING:   ${line}`);
    return;
  }
  const ignored = parseEnv(GUARD_SCHEMAS[role], environment).ALLOW_UNSAFE_STAGING_SETTINGS
    ? ['ALLOW_UNSAFE_STAGING_SETTINGS is ignored against real AWS: fix each setting above']
    : [];
  const error = new ConfigError([...verdict.unsafe, ...ignored]);
  error.message = `Refusing to start: ${role} runs in ${why}, and these settings are unsafe there:\n  ${[...verdict.unsafe, ...ignored].join('\n  ')}`;
  throw error;
}
