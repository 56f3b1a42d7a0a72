/**
 * The environment the local stack gives its processes, kept apart from
 * infra/stack.ts (which starts servers on import) so it can be tested. The
 * promise of infra/local.env holds for every value: what the operator's
 * environment sets wins over the file and over what the stack computes.
 */
import { join } from 'node:path';
import { SIGNING_CERT_PATH } from '../sandbox/sns-signing';
import type { LocalAwsResources } from './servers';

type Env = Record<string, string | undefined>;

/** Empty counts as unset, as lib/config.ts treats it. */
const setIn = (environment: Env, name: string): string | undefined => {
  const value = environment[name];
  return value !== undefined && value.trim() !== '' ? value : undefined;
};

/** Each `NAME=value` line of infra/local.env, with the environment's value where it sets one. */
export function localEnvValues(fileText: string, environment: Env): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of fileText.split('\n')) {
    const match = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (match) values[match[1]!] = setIn(environment, match[1]!) ?? match[2]!.trim();
  }
  return values;
}

export interface StackEnvInput {
  /** From `localEnvValues`. */
  localEnv: Record<string, string>;
  environment: Env;
  resources: Pick<LocalAwsResources, 'queueUrl' | 'topicArn' | 'eventBridgeQueueUrl'>;
  dataDir: string;
  /** Called only when the environment has no SESSION_SIGNING_KEY (it generates and stores one). */
  sessionKey: () => string;
}

export function stackServiceEnv({
  localEnv,
  environment,
  resources,
  dataDir,
  sessionKey,
}: StackEnvInput): Record<string, string> {
  const computed: Record<string, () => string> = {
    SQS_QUEUE_URL: () => resources.queueUrl,
    SQS_EVENTBRIDGE_QUEUE_URL: () => resources.eventBridgeQueueUrl,
    SANDBOX_SNS_TOPIC_ARN: () => resources.topicArn,
    SANDBOX_SNS_SIGNING_DIR: () => join(dataDir, 'sns-signing'),
    // By default the poller accepts envelopes from the stack's topic, signed by AWS or by the sandbox's local certificate.
    SNS_TOPIC_ARN: () => resources.topicArn,
    SNS_TRUSTED_CERT_URLS: () => `http://localhost:${localEnv.SANDBOX_PORT}${SIGNING_CERT_PATH}`,
    SESSION_SIGNING_KEY: sessionKey,
  };
  const chosen = Object.entries(computed).map(([name, compute]): [string, string] => [
    name,
    setIn(environment, name) ?? compute(),
  ]);
  return { ...localEnv, ...Object.fromEntries(chosen) };
}
