/**
 * The Temporal connection, as every Temporal SDK and the CLI read it
 * (@temporalio/envconfig): a profile of a TOML file (TEMPORAL_CONFIG_FILE, or
 * temporalio/temporal.toml in the user's config folder; TEMPORAL_PROFILE
 * names it, else "default"), under the standard TEMPORAL_* variables. Only
 * the task queue is ours. The library ignores values it cannot use (a
 * missing file, `TEMPORAL_TLS=yes`, a certificate without its key); here each
 * one fails start-up, naming the variable.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile } from '@temporalio/envconfig';
import { Type, type Static } from './schema';

const Optional = () => Type.Optional(Type.String({ minLength: 1 }));

/** The standard variables we read ourselves, to validate them; @temporalio/envconfig reads them too. */
export const temporalEnv = {
  TEMPORAL_ADDRESS: Optional(),
  TEMPORAL_NAMESPACE: Optional(),
  TEMPORAL_API_KEY: Optional(),
  TEMPORAL_TLS: Type.Optional(Type.Boolean()),
  TEMPORAL_TLS_CLIENT_CERT_PATH: Optional(),
  TEMPORAL_TLS_CLIENT_CERT_DATA: Optional(),
  TEMPORAL_TLS_CLIENT_KEY_PATH: Optional(),
  TEMPORAL_TLS_CLIENT_KEY_DATA: Optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: Optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: Optional(),
  TEMPORAL_TLS_SERVER_NAME: Optional(),
  TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: Type.Optional(Type.Boolean()),
  TEMPORAL_PROFILE: Optional(),
  TEMPORAL_CONFIG_FILE: Optional(),
  TEMPORAL_TASK_QUEUE: Type.String({ minLength: 1, default: 'marketplace-billing' }),
};

/** This project's names before it read the standard ones: set, they would now be ignored without a word. */
const RENAMED: Record<string, string> = {
  TEMPORAL_TLS_CERT_PATH: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
  TEMPORAL_TLS_KEY_PATH: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
  TEMPORAL_TLS_CA_PATH: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
};

export interface TemporalConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Undefined: plaintext, as for a local dev server; true: TLS with the system's CAs. */
  tls?: TLSConfig | true;
  /** Temporal Cloud API key; implies TLS. */
  apiKey?: string;
  /** gRPC headers (TEMPORAL_GRPC_META_*, or the profile's grpc_meta). */
  metadata?: Record<string, string>;
}

type Env = Record<string, string | undefined>;
export type TemporalEnv = Static<ReturnType<typeof Type.Object<typeof temporalEnv>>>;

/**
 * `env`: the whole environment (the library also reads TEMPORAL_GRPC_META_* and HOME); `parsed`: our variables,
 * validated. Each problem names its variable; with none, the connection settings.
 */
export function temporalFrom(env: Env, parsed: TemporalEnv): { temporal: TemporalConfig } | { problems: string[] } {
  const problems = Object.entries(RENAMED)
    .filter(([old]) => env[old]?.trim())
    .map(([old, standard]) => `${old}: no longer read; set ${standard} (the standard name) instead`);
  if (parsed.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION) {
    problems.push(
      'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: the TypeScript SDK cannot skip host verification; set TEMPORAL_TLS_SERVER_NAME to the name the certificate carries',
    );
  }
  const file = parsed.TEMPORAL_CONFIG_FILE;
  if (file && !existsSync(file)) problems.push(`TEMPORAL_CONFIG_FILE: no such file "${file}"`);
  if (problems.length > 0) return { problems };

  let profile: ClientConfigProfile;
  try {
    // The library reads an empty variable as a value, and only "true" or "1" as true: it gets the values as we read them.
    const overrideEnvVars = Object.fromEntries(
      Object.entries({
        ...env,
        TEMPORAL_TLS: parsed.TEMPORAL_TLS === undefined ? undefined : String(parsed.TEMPORAL_TLS),
      }).filter((entry): entry is [string, string] => Boolean(entry[1]?.trim())),
    );
    profile = loadClientConfigProfile({ overrideEnvVars, configFileStrict: true });
  } catch (error) {
    // A TOML error quotes the lines around the fault, and they may hold an API key: only its first line is kept.
    const { message, line } = error as Error & { line?: number };
    const reason = `${message.split('\n')[0]}${line ? ` (line ${line})` : ''}`;
    return {
      problems: [
        /^Profile '.*' not found/.test(reason) ? `TEMPORAL_PROFILE: ${reason}` : `TEMPORAL_CONFIG_FILE: ${reason}`,
      ],
    };
  }
  const tls = profile.tls;
  if (tls && Boolean(tls.clientCert) !== Boolean(tls.clientKey)) {
    problems.push(
      "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (or their _DATA forms, or the profile's client_cert_*/client_key_*) must be set together (mTLS)",
    );
  }
  for (const [name, source] of [
    ['TEMPORAL_TLS_CLIENT_CERT_PATH', tls?.clientCert],
    ['TEMPORAL_TLS_CLIENT_KEY_PATH', tls?.clientKey],
    ['TEMPORAL_TLS_SERVER_CA_CERT_PATH', tls?.serverCACert],
  ] as const) {
    if (!source || !('path' in source)) continue;
    try {
      readFileSync(source.path);
    } catch (error) {
      const where = env[name]?.trim()
        ? name
        : `${name} (from the profile's ${name.slice('TEMPORAL_TLS_'.length).toLowerCase()})`;
      problems.push(`${where}: cannot read "${source.path}" (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (problems.length > 0) return { problems };
  const { connectionOptions, namespace } = toClientOptions(profile);
  const metadata = connectionOptions.metadata as Record<string, string> | undefined;
  return {
    temporal: {
      address: connectionOptions.address ?? 'localhost:7233',
      namespace: namespace ?? 'default',
      taskQueue: parsed.TEMPORAL_TASK_QUEUE,
      ...(connectionOptions.tls ? { tls: connectionOptions.tls } : {}),
      ...(connectionOptions.apiKey ? { apiKey: connectionOptions.apiKey } : {}),
      ...(metadata && Object.keys(metadata).length > 0 ? { metadata } : {}),
    },
  };
}
