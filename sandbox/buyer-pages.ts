/** The buyer's side of AWS Marketplace, enough to walk the real journey in a browser. */
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import fastifyView from '@fastify/view';
import Handlebars from 'handlebars';
import { Type } from '../lib/schema';
import { createSubscription, notify, sendEvent, type ControlApiDeps } from './control-api';
import { EVENT_DETAIL_TYPES, SNS_ACTIONS, type EventDetailType, type SnsAction } from './notifications';

/** Every button of a buyer's row: the SNS actions, then the EventBridge detail types. */
const NOTIFICATIONS = [
  ...SNS_ACTIONS.map((action) => ({ field: 'action', value: action, label: action })),
  ...EVENT_DETAIL_TYPES.map((detailType) => ({
    field: 'detailType',
    value: detailType,
    label: detailType.replace(' - Manufacturer', ''),
  })),
];

interface Pages {
  buyers: {
    title: string;
    productCode: string;
    registrationUrl: string;
    customers: Array<{
      awsAccountId: string;
      customerIdentifier: string;
      model: string;
      freeTrial: boolean;
      status: string;
      notifyPath: string;
    }>;
    notifications: typeof NOTIFICATIONS;
  };
  'set-up-account': { title: string; registrationUrl: string; token: string; freeTrial: boolean };
}

/** Like the API's pages (api/pages/views.ts): Handlebars, every value escaped, in an environment of its own. */
async function registerViews(app: FastifyInstance): Promise<void> {
  await app.register(fastifyView, {
    engine: { handlebars: Handlebars.create() },
    root: join(__dirname, 'templates'),
    layout: 'layout.hbs',
    production: true,
    options: { strict: true, knownHelpersOnly: true },
  });
}

async function sendPage<P extends keyof Pages>(reply: FastifyReply, page: P, data: Pages[P]): Promise<FastifyReply> {
  return reply.type('text/html; charset=utf-8').send(await reply.viewAsync(`${page}.hbs`, data));
}

export async function registerBuyerPages(root: FastifyInstance, deps: ControlApiDeps): Promise<void> {
  await registerViews(root);
  const app = root.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/', async (_request, reply) => {
    const customers = await deps.store.customers.find({}).sort({ createdAt: -1 }).limit(50).toArray();
    return sendPage(reply, 'buyers', {
      title: 'AWS Marketplace sandbox',
      productCode: deps.productCode,
      registrationUrl: deps.registrationUrl,
      customers: customers.map((c) => ({
        awsAccountId: c.customerAwsAccountId,
        customerIdentifier: c.customerIdentifier ?? '',
        model: c.model,
        freeTrial: c.freeTrial,
        status: c.status,
        notifyPath: `/buyer/customers/${encodeURIComponent(c._id)}/notify`,
      })),
      notifications: NOTIFICATIONS,
    });
  });

  app.post(
    '/buyer/subscribe',
    {
      schema: {
        body: Type.Object({
          model: Type.Optional(Type.Union([Type.Literal('legacy'), Type.Literal('account')])),
          freeTrial: Type.Optional(Type.Boolean()),
        }),
      },
    },
    async (request, reply) => {
      const { customer, token } = await createSubscription(deps, request.body);
      // AWS posts the browser to the seller's registration URL; an auto-submitted form does exactly that.
      return sendPage(reply, 'set-up-account', {
        title: 'Set up your account',
        registrationUrl: deps.registrationUrl,
        token,
        freeTrial: customer.freeTrial,
      });
    },
  );

  app.post(
    '/buyer/customers/:id/notify',
    {
      schema: {
        params: Type.Object({ id: Type.String() }),
        body: Type.Object({ action: Type.Optional(Type.String()), detailType: Type.Optional(Type.String()) }),
      },
    },
    async (request, reply) => {
      const { action, detailType } = request.body;
      const isAction = (SNS_ACTIONS as readonly string[]).includes(action ?? '');
      const isEvent = (EVENT_DETAIL_TYPES as readonly string[]).includes(detailType ?? '');
      if (!isAction && !isEvent) return reply.code(400).type('text/plain').send('Choose a known notification');
      const sent = isAction
        ? await notify(deps, request.params.id, action as SnsAction)
        : await sendEvent(deps, request.params.id, detailType as EventDetailType);
      if (!sent) return reply.code(404).type('text/plain').send('No such customer');
      return reply.redirect('/', 303);
    },
  );
}
