/**
 * The served OpenAPI document is the API's contract. Schemathesis reads /openapi.json at run time, so
 * every operation the document declares (including ones added later) is fuzzed with every check: no
 * 5xx, no undocumented status, content type, header or body, invalid data rejected, valid data
 * accepted, undeclared methods answered 405 with Allow, and authentication enforced.
 *
 * It fuzzes as a signed-in buyer whose account is linked, so the routes behind a session are explored
 * past 401 and their 200 answers are checked against the document; the ignored_auth check repeats
 * such requests without and with a wrong session. Requests carry the site's own Origin (the one the
 * document names), as a browser on our pages would, so the cross-site guard does not hide the routes.
 */
import { accountsOf } from '../../lib/store/accounts';
import { saveLinkStatus } from '../../lib/store/link-status';
import { Browser, sessionFor } from '../helpers/api';
import { startLinkingStack, type LinkingStack } from '../helpers/linking-stack';
import { runSchemathesis, type FuzzResult } from '../helpers/schemathesis';
import { uniqueName } from '../helpers/test-env';

// Cases per operation and phase: with seven operations, about 1,600 requests and under a minute on two
// cores. The seed makes a failure reproducible.
const MAX_EXAMPLES = 500;
const SEED = 1210;

interface Operation {
  requestBody?: { content: Record<string, unknown> };
  responses: Record<string, unknown>;
}

interface OpenApiDocument {
  servers: Array<{ url: string }>;
  paths: Record<string, Record<string, Operation>>;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function operationsOf(
  document: OpenApiDocument,
): Array<{ label: string; method: string; path: string; operation: Operation }> {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.includes(method))
      .map(([method, operation]) => ({
        label: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        operation,
      })),
  );
}

/** An account linked to AWS, as the store holds it once linking finished, so the session routes answer 200 with every field. */
async function seedLinkedBuyer(stack: LinkingStack): Promise<string> {
  const accountId = uniqueName('acct');
  const linkedAt = new Date();
  const awsAccountId = '123456789012';
  await accountsOf(stack.mongo.db).insertOne({
    _id: accountId,
    email: `${accountId}@example.com`,
    name: accountId,
    paymentMethod: 'aws-marketplace',
    marketplace: { awsAccountId, productCode: stack.productCode, linkedAt },
    createdAt: linkedAt,
  });
  await saveLinkStatus(stack.mongo.db, {
    awsAccountId,
    productCode: stack.productCode,
    accountId,
    phase: 'linked',
    paymentProblem: false,
    message: 'Linked',
    version: 1,
    updatedAt: linkedAt.toISOString(),
  });
  return accountId;
}

describe('issue 12 point 10: the OpenAPI document matches the API', () => {
  let stack: LinkingStack;
  let accountId: string;
  let document: OpenApiDocument;
  let origin: string;
  let result: FuzzResult;

  beforeAll(async () => {
    stack = await startLinkingStack();
    accountId = await seedLinkedBuyer(stack);
    document = (await (await fetch(`${stack.api.url}/openapi.json`)).json()) as OpenApiDocument;
    origin = new URL(document.servers[0]!.url).origin;
    const started = Date.now();
    result = await runSchemathesis({
      baseUrl: stack.api.url,
      headers: { Authorization: `Bearer ${sessionFor(accountId)}`, Origin: origin },
      maxExamples: MAX_EXAMPLES,
      seed: SEED,
      timeoutMs: 300_000,
    });
    console.info(
      `schemathesis: ${result.requests} requests in ${((Date.now() - started) / 1000).toFixed(1)} s; failed cases per check ${JSON.stringify(result.failedCases)}; ` +
        `answers per operation ${JSON.stringify(result.statuses)}`,
    );
  }, 420_000);

  afterAll(() => stack?.stop());

  it('fuzzes every operation the served document declares', () => {
    const declared = operationsOf(document).map(({ label }) => label);
    expect(declared.length).toBeGreaterThan(0);
    expect(result.operations).toEqual([...declared].sort());
    expect(result.requests).toBeGreaterThan(declared.length * 20);
  });

  it('gets no 5xx answer', () => {
    expect(result.serverErrors).toEqual([]);
  });

  it('finds no contract failure in any check', () => {
    expect(result.failures).toEqual([]);
    // Errors (an operation it could not test, a request that never got an answer) show only in its exit and output.
    expect({ exitCode: result.exitCode, output: result.exitCode === 0 ? '' : result.output.slice(-4000) }).toEqual({
      exitCode: 0,
      output: '',
    });
  });

  it('answers a body over the limit with 413, declared for every operation that takes a body', async () => {
    // Schemathesis stays within the schemas' lengths, so it never sends one.
    const withBody = operationsOf(document).filter(({ operation }) => operation.requestBody);
    expect(withBody.length).toBeGreaterThan(0);
    for (const { label, method, path, operation } of withBody) {
      const response = await fetch(`${stack.api.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${sessionFor(accountId)}`,
          origin,
          'content-type': Object.keys(operation.requestBody!.content)[0]!,
        },
        body: 'x'.repeat(1024 * 1024),
      });
      expect({ label, status: response.status }).toEqual({ label, status: 413 });
      expect({
        label,
        declared: Object.keys(operation.responses).some((status) => ['413', '4XX'].includes(status)),
      }).toEqual({ label, declared: true });
    }
  });

  it('leaves the API up and the buyer able to read their billing', async () => {
    const browser = new Browser(stack.api.url);
    expect((await browser.get('/health')).status).toBe(200);
    const billing = await browser.get('/api/billing', { authorization: `Bearer ${sessionFor(accountId)}` });
    expect(billing.status).toBe(200);
    expect(billing.json()).toMatchObject({ accountId, paymentMethod: 'aws-marketplace' });
  });
});
