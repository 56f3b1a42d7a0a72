/**
 * The baseline of bench/webhook-throughput: a bare Fastify route on the
 * registration path that redeems the posted token with the same ResolveCustomer
 * activity and AWS SDK client as the API, and answers with a redirect. No
 * store, no limits, no pages, no logging: what ResolveCustomer alone costs an
 * HTTP route. Run in a process of its own, as the API is, so that neither side
 * shares an event loop with the load generator.
 *
 *   BARE_PORT=… AWS_ENDPOINT_URL_MARKETPLACE_METERING=… node dist/bench/bare-registration-route.js
 */
import Fastify from 'fastify';
import formbody from '@fastify/formbody';
import { createMarketplaceActivities } from '../activities/marketplace';
import { REGISTRATION_PATH } from '../api/routes/linking/registration';
import { createMeteringClient } from '../lib/aws';

async function main(): Promise<void> {
  const metering = createMeteringClient({
    region: 'us-east-1',
    endpoints: { metering: process.env.AWS_ENDPOINT_URL_MARKETPLACE_METERING },
  });
  const { resolveCustomer } = createMarketplaceActivities({ metering });
  const app = Fastify();
  await app.register(formbody);
  app.post<{ Body: Record<string, string> }>(REGISTRATION_PATH, async (request, reply) => {
    try {
      const customer = await resolveCustomer(request.body['x-amzn-marketplace-token'] ?? '');
      return reply.redirect(`/?account=${customer.awsAccountId}`, 303);
    } catch {
      return reply.code(403).send();
    }
  });
  await app.listen({ host: '127.0.0.1', port: Number(process.env.BARE_PORT) });
  const close = () => void app.close().then(() => (metering.destroy(), process.exit(0)));
  process.once('SIGTERM', close);
  process.once('SIGINT', close);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
