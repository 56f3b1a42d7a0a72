/**
 * The unit tier's own SNS signing key: the integration tier shares the one
 * global-setup makes, but the unit tier has no global setup. One key per Jest
 * worker, made on first use (openssl, a fraction of a second) and deleted when
 * the worker exits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSigningKey, type SnsSigningKey } from '../../../sandbox/sns-signing';

let key: SnsSigningKey | undefined;

export function snsSigningKey(): SnsSigningKey {
  if (!key) {
    const dir = mkdtempSync(join(tmpdir(), 'marketplace-unit-sns-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    key = ensureSigningKey(dir);
  }
  return key;
}
