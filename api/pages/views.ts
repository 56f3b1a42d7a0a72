/**
 * The buyer's pages are Handlebars templates (`templates/`) rendered through
 * @fastify/view. `{{value}}` always escapes; the only unescaped output is the
 * layout's `{{{body}}}`, which is the page template's own escaped rendering.
 */
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fastifyView from '@fastify/view';
import Handlebars from 'handlebars';
import type { BillingPage } from './billing-page';
import type { IndexPage } from './index-page';
import type { RegistrationProblemPage } from './registration';
import type { SignInPage } from './sign-in';

/** Every page and the data its template reads. */
interface Pages {
  index: IndexPage;
  billing: BillingPage;
  'sign-in': SignInPage;
  'registration-problem': RegistrationProblemPage;
}

/** A field a template names but the data lacks is an error, not an empty string; no helper beyond the built-in ones. */
export const COMPILE_OPTIONS = { strict: true, knownHelpersOnly: true } as const;

export const TEMPLATES_DIR = join(__dirname, 'templates');

export async function registerPageViews(app: FastifyInstance): Promise<void> {
  await app.register(fastifyView, {
    // An environment of our own: partials registered here never meet another app's (the sandbox's) in one process.
    engine: { handlebars: Handlebars.create() },
    root: TEMPLATES_DIR,
    layout: 'layout.hbs',
    // Compiled once, in every environment.
    production: true,
    // The pages are compiled with `options` itself, the partials with its `compileOptions`.
    options: { ...COMPILE_OPTIONS, partials: { 'account-nav': 'account-nav.hbs' }, compileOptions: COMPILE_OPTIONS },
  });
}

export async function sendPage<P extends keyof Pages>(
  reply: FastifyReply,
  page: P,
  data: Pages[P],
  status = 200,
): Promise<FastifyReply> {
  const html = await reply.viewAsync(`${page}.hbs`, data);
  return reply.code(status).type('text/html; charset=utf-8').send(html);
}
