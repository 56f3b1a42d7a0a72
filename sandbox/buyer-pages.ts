/** The buyer's side of AWS Marketplace, enough to walk the real journey in a browser. */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { escapeHtml, page } from '../lib/html';
import { Type } from '../lib/schema';
import { createSubscription, notify, sendEvent, type ControlApiDeps } from './control-api';
import { EVENT_DETAIL_TYPES, SNS_ACTIONS, type EventDetailType, type SnsAction } from './notifications';

function customerRow(c: { _id: string; model: string; customerIdentifier?: string; customerAwsAccountId: string; status: string; freeTrial: boolean }) {
  const buttons = [
    ...SNS_ACTIONS.map((a) => `<button name="action" value="${a}">${a}</button>`),
    ...EVENT_DETAIL_TYPES.map((d) => `<button name="detailType" value="${escapeHtml(d)}">${escapeHtml(d.replace(' - Manufacturer', ''))}</button>`),
  ].join('');
  return `<tr><td><code>${escapeHtml(c.customerAwsAccountId)}</code><br><small>${escapeHtml(c.customerIdentifier ?? '')}</small></td>
<td>${escapeHtml(c.model)}${c.freeTrial ? ' (free trial)' : ''}</td><td data-status>${escapeHtml(c.status)}</td>
<td><form method="post" action="/buyer/customers/${escapeHtml(c._id)}/notify">${buttons}</form></td></tr>`;
}

export function registerBuyerPages(root: FastifyInstance, deps: ControlApiDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/', async (_request, reply) => {
    const customers = await deps.store.customers.find({}).sort({ createdAt: -1 }).limit(50).toArray();
    const body = `<h1>AWS Marketplace sandbox</h1>
<p class="note">Product <code>${escapeHtml(deps.productCode)}</code>. "Subscribe" creates a buyer and sends the browser to
<code>${escapeHtml(deps.registrationUrl)}</code> with <code>x-amzn-marketplace-token</code>, as AWS does after "Set Up Your Account".</p>
<form method="post" action="/buyer/subscribe">
<label>Integration <select name="model"><option value="account">CustomerAWSAccountId + LicenseArn</option><option value="legacy">legacy CustomerIdentifier</option></select></label>
<label><input type="checkbox" name="freeTrial" value="true"> free trial offer</label>
<button id="subscribe">Subscribe and set up your account</button></form>
<h2>Buyers</h2><table><tr><th>AWS account</th><th>Model</th><th>Status</th><th>Send notification</th></tr>
${customers.map(customerRow).join('\n')}</table>`;
    return reply.type('text/html; charset=utf-8').send(page('AWS Marketplace sandbox', body));
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
      const trial = customer.freeTrial ? '<input type="hidden" name="x-amzn-marketplace-offer-type" value="free-trial">' : '';
      const body = `<p>Redirecting to the seller to set up your account…</p>
<form id="register" method="post" action="${escapeHtml(deps.registrationUrl)}">
<input type="hidden" name="x-amzn-marketplace-token" value="${escapeHtml(token)}">${trial}
<noscript><button>Continue</button></noscript></form>
<script>document.getElementById('register').submit()</script>`;
      return reply.type('text/html; charset=utf-8').send(page('Set up your account', body));
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
