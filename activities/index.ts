/**
 * Every side effect lives in an activity. Activities are built from injected
 * clients so tests can hand in real servers or fakes; workflows import only the
 * resulting *type*.
 */
import type { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import type { Db } from 'mongodb';
import { createDiagnosticsActivities } from './diagnostics';
import { createLinkingActivities } from './linking';
import { createMarketplaceActivities } from './marketplace';

export interface ActivityDeps {
  db: Db;
  metering: MarketplaceMeteringClient;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createDiagnosticsActivities(deps),
    ...createLinkingActivities(deps),
    ...createMarketplaceActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
