// The worker bundles this module: export every workflow here and nothing with side effects.
export { checkDependencies } from './diagnostics';
export { linkAccount } from './link-account';
export { hourlyMetering } from './hourly-metering';
export { cancelSubscription } from './cancel-subscription';
