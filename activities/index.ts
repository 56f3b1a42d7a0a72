/**
 * Every side effect lives in an activity. Activities are built from injected
 * clients so tests can hand in real servers or fakes; workflows import only the
 * resulting *type*.
 */
import type { Db } from 'mongodb';
import { createDiagnosticsActivities } from './diagnostics';

export interface ActivityDeps {
  db: Db;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createDiagnosticsActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
