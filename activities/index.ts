/**
 * Every side effect lives in an activity. Activities are built from injected
 * clients so tests can hand in real servers or fakes; workflows import only the
 * resulting *type*.
 */
import type { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import type { Db } from 'mongodb';
import { retentionEnv, type MeteringConfig, type RetentionConfig } from '../lib/config';
import { retentionRules } from '../lib/store/retention';
import { createCancellationActivities } from './subscription/cancellation';
import { mongoDeploymentControl, type DeploymentControl } from './subscription/deployment-control';
import { createDiagnosticsActivities } from './diagnostics';
import { createLinkingActivities } from './subscription/linking';
import { createMarketplaceActivities } from './marketplace';
import { createMeteringActivities } from './metering/metering';
import { createRetentionActivities } from './retention/retention';
import { createSubscriptionActivities } from './subscription/subscription';

export interface ActivityDeps {
  db: Db;
  /** For ResolveCustomer: the SDK retries throttling. */
  metering: MarketplaceMeteringClient;
  /** For BatchMeterUsage: one attempt per call, paced and retried by the usage sender. */
  usageMetering: MarketplaceMeteringClient;
  meteringConfig: MeteringConfig;
  /** The platform's deployments: MongoDB unless the platform's HTTP API is configured. */
  deployments?: DeploymentControl;
  /** How long the metering ledger is kept; unset: METERING_LEDGER_RETENTION_DAYS's default. */
  retention?: Pick<RetentionConfig, 'meteringLedgerDays'>;
}

const DEFAULT_LEDGER_DAYS = retentionEnv.METERING_LEDGER_RETENTION_DAYS.default as number;

export function createActivities(deps: ActivityDeps) {
  return {
    ...createDiagnosticsActivities(deps),
    ...createCancellationActivities({ db: deps.db, deployments: deps.deployments ?? mongoDeploymentControl(deps.db) }),
    ...createLinkingActivities(deps),
    ...createSubscriptionActivities({ db: deps.db, linking: createLinkingActivities(deps) }),
    ...createMarketplaceActivities(deps),
    ...createMeteringActivities({ db: deps.db, metering: deps.usageMetering, settings: deps.meteringConfig }),
    ...createRetentionActivities({
      db: deps.db,
      rules: retentionRules({ meteringLedgerDays: deps.retention?.meteringLedgerDays ?? DEFAULT_LEDGER_DAYS }),
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
