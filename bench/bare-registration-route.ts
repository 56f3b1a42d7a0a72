/**
 * The baseline of bench/webhook-throughput: a bare Fastify route on the
 * registration path that redeems the posted token with the same ResolveCustomer
 * activity and AWS SDK client as the API, and answers with a redirect. No
 * store, no limits, no pages, no logging: what ResolveCustomer alone costs an
 * HTTP route. Run in a process of its own, as the API is, so that neither side
 * shares an event loop with the load generator.
 *
 * With BARE_MONGODB_URI it also makes the registration route's own store calls
 * (lib/store/registrations.ts: the redeemed-token check, then the customer,
 * the redeemed token and the link code) and nothing else: the most any route
 * that keeps the webhook's guarantees can reach on that store.
 *
 *   BARE_PORT=… AWS_ENDPOINT_URL_MARKETPLACE_METERING=… [BARE_MONGODB_URI=… BARE_MONGODB_DATABASE=…] \
 *     node dist/bench/bare-registration-route.js
 */
import Fastify from 'fastify';
import formbody from '@fastify/formbody';
import { createMarketplaceActivities } from '../activities/marketplace';
import { REGISTRATION_PATH } from '../api/routes/linking/registration';
import { createMeteringClient } from '../lib/aws';
import { connectMongo } from '../lib/mongo';
import { randomSecret, sha256 } from '../lib/secrets';
import { ensureIndexes } from '../lib/store/indexes';
import { recordRedemption, redeemedTokensOf } from '../lib/store/registrations';

async function main(): Promise<void> {
  const metering = createMeteringClient({
    region: 'us-east-1',
    endpoints: { metering: process.env.AWS_ENDPOINT_URL_MARKETPLACE_METERING },
  });
  const { resolveCustomer } = createMarketplaceActivities({ metering });
  const uri = process.env.BARE_MONGODB_URI;
  const mongo = uri ? await connectMongo(uri, process.env.BARE_MONGODB_DATABASE ?? 'bench_bare_store') : undefined;
  // As the API does at start: every write then keeps the same indexes up to date.
  if (mongo) await ensureIndexes(mongo.db);
  const app = Fastify();
  await app.register(formbody);
  app.post<{ Body: Record<string, string> }>(REGISTRATION_PATH, async (request, reply) => {
    const token = request.body['x-amzn-marketplace-token'] ?? '';
    try {
      if (!mongo) {
        const customer = await resolveCustomer(token);
        return reply.redirect(`/?account=${customer.awsAccountId}`, 303);
      }
      const tokenHash = sha256(token);
      const code = randomSecret();
      const grant = {
        codeHash: sha256(code),
        bindingHash: sha256(randomSecret()),
        offerType: 'standard' as const,
        ttlSeconds: 900,
      };
      if (await redeemedTokensOf(mongo.db).findOne({ _id: tokenHash })) return reply.code(409).send();
      const customer = await resolveCustomer(token);
      await recordRedemption(mongo.db, customer, tokenHash, grant);
      return reply.redirect(`/?link=${code}`, 303);
    } catch {
      return reply.code(403).send();
    }
  });
  await app.listen({ host: '127.0.0.1', port: Number(process.env.BARE_PORT) });
  const close = () => void app.close().then(async () => (await mongo?.close(), metering.destroy(), process.exit(0)));
  process.once('SIGTERM', close);
  process.once('SIGINT', close);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
