/**
 * The cluster mode's load balancer (infra/load-balancer.ts) in front of two
 * recording upstreams: it spreads requests, forwards bodies byte for byte
 * (JSON, forms, chunked, behind `Expect: 100-continue`), appends the client's
 * address to X-Forwarded-For and drops what a client could forge, sends a
 * request a dead replica refused to the other one, and answers 502 when no
 * replica is there.
 */
import { request as httpRequest } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { startLoadBalancer } from '../infra/load-balancer';
import { freePort } from '../infra/processes';

interface Seen {
  upstream: number;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function recordingUpstream(index: number, port: number, seen: Seen[]): Promise<FastifyInstance> {
  const app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  app.all('/*', async (request) => {
    seen.push({
      upstream: index,
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: typeof request.body === 'string' ? request.body : '',
    });
    return { upstream: index };
  });
  await app.listen({ host: '127.0.0.1', port });
  return app;
}

/** A raw request, so that headers fetch would not send (Expect, Transfer-Encoding: chunked) can be sent. */
function rawRequest(
  port: number,
  options: { method: string; path: string; headers: Record<string, string>; chunks: string[] },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: options.method,
      path: options.path,
      headers: options.headers,
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    const send = () => {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    };
    if (options.headers.expect) req.on('continue', send);
    else send();
  });
}

describe('the cluster mode load balancer', () => {
  const seen: Seen[] = [];
  let upstreams: FastifyInstance[] = [];
  let balancer: FastifyInstance;
  let upstreamPorts: number[];
  let url: string;
  let port: number;

  beforeAll(async () => {
    upstreamPorts = [await freePort(), await freePort()];
    upstreams = await Promise.all(upstreamPorts.map((p, i) => recordingUpstream(i + 1, p, seen)));
    port = await freePort();
    balancer = await startLoadBalancer({
      host: '127.0.0.1',
      port,
      upstreams: upstreamPorts.map((p) => `http://127.0.0.1:${p}`),
    });
    url = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await balancer?.close();
    await Promise.all(upstreams.map((u) => u.close()));
  });
  beforeEach(() => (seen.length = 0));

  it('spreads requests over both replicas', async () => {
    for (let i = 0; i < 20; i++) expect((await fetch(`${url}/ready`)).status).toBe(200);
    expect(new Set(seen.map((s) => s.upstream))).toEqual(new Set([1, 2]));
  });

  it('forwards bodies byte for byte with their Content-Type, JSON and forms alike', async () => {
    const json = '{ "linkCode" : "abc",\n "n": 1 }';
    await fetch(`${url}/api/links?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: json,
    });
    await fetch(`${url}/marketplace/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'x-amzn-marketplace-token=a%2Bb%3D%3D',
    });
    expect(seen.map((s) => [s.method, s.url, s.headers['content-type'], s.body])).toEqual([
      ['POST', '/api/links?x=1', 'application/json; charset=utf-8', json],
      ['POST', '/marketplace/register', 'application/x-www-form-urlencoded', 'x-amzn-marketplace-token=a%2Bb%3D%3D'],
    ]);
  });

  it('forwards a chunked body, and one sent after Expect: 100-continue', async () => {
    const chunked = await rawRequest(port, {
      method: 'POST',
      path: '/signin',
      headers: { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' },
      chunks: ['part one, ', 'part two'],
    });
    const expecting = await rawRequest(port, {
      method: 'POST',
      path: '/signin',
      headers: { 'content-type': 'text/plain', 'content-length': '5', expect: '100-continue' },
      chunks: ['hello'],
    });
    expect([chunked.status, expecting.status]).toEqual([200, 200]);
    expect(seen.map((s) => s.body)).toEqual(['part one, part two', 'hello']);
    for (const s of seen) expect([s.headers['transfer-encoding'], s.headers.expect]).toEqual([undefined, undefined]);
  });

  it('appends the address it saw to X-Forwarded-For, keeps the Host, and drops the forwarding headers a client forges', async () => {
    await fetch(`${url}/ready`, {
      headers: {
        'x-forwarded-for': '203.0.113.7',
        forwarded: 'for=203.0.113.8',
        'x-forwarded-host': 'evil.example',
      },
    });
    const [request] = seen;
    // The replicas trust one hop: the last entry, the balancer's, is the client's address whatever it wrote.
    expect(request!.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(request!.headers.host).toBe(`127.0.0.1:${port}`);
    expect([request!.headers.forwarded, request!.headers['x-forwarded-host']]).toEqual([undefined, undefined]);
  });

  it('sends a request a dead replica refused to the other one, whatever its method, and answers 502 when none is there', async () => {
    await upstreams[0]!.close();
    const posts = await Promise.all(
      Array.from({ length: 10 }, () =>
        fetch(`${url}/marketplace/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'a=1',
        }).then((r) => r.status),
      ),
    );
    expect(posts).toEqual(Array(10).fill(200));
    expect(new Set(seen.map((s) => s.upstream))).toEqual(new Set([2]));

    await upstreams[1]!.close();
    const none = await fetch(`${url}/ready`);
    expect(none.status).toBe(502);
    expect(await none.json()).toEqual({ error: 'BadGateway', message: 'No API replica answered; retry in a moment.' });
  });
});
