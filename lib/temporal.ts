import { Client, Connection } from '@temporalio/client';
import type { TemporalConfig } from './config';

/** Connection options shared by the client and the worker (plaintext, mTLS, or Temporal Cloud API key). */
export function connectionOptions(config: TemporalConfig) {
  const tls = config.tls
    ? {
        serverNameOverride: config.tls.serverName,
        serverRootCACertificate: config.tls.caPem,
        clientCertPair:
          config.tls.clientCertPem && config.tls.clientKeyPem
            ? { crt: config.tls.clientCertPem, key: config.tls.clientKeyPem }
            : undefined,
      }
    : undefined;
  return { address: config.address, tls, apiKey: config.apiKey };
}

export async function connectClient(config: TemporalConfig): Promise<Client> {
  const connection = await Connection.connect(connectionOptions(config));
  return new Client({ connection, namespace: config.namespace });
}
