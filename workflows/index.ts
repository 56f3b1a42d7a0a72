// The worker bundles this module: export every workflow here and nothing with side effects.
export { checkDependencies } from './diagnostics';
// linkAccount and cancelSubscription stay registered only so runs started before the subscription workflow
// replaced them can replay and be moved (infra/migrate-legacy-workflows.ts); nothing starts them any more.
export { linkAccount } from './legacy/link-account';
export { hourlyMetering } from './metering/hourly-metering';
export { cancelSubscription } from './legacy/cancel-subscription';
export { subscription } from './subscription/subscription';
export { storeRetention } from './retention/store-retention';
