/**
 * Issue 12, point 5: slow clients are cut off. Raw TCP connections that
 * trickle their headers, trickle a body, say nothing, or sit idle after a
 * response are closed by the server within the configured timeouts (short
 * ones here), while ordinary requests keep being served.
 */
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Client } from '@temporalio/client';
import { loadApiConfig } from '../../api/config';
import { connectMongo, type MongoHandle } from '../../lib/mongo';
import { connectClient } from '../../lib/temporal';
import { startApi, type RunningApi } from '../helpers/api';
import { testServers, uniqueName } from '../helpers/test-env';

const TIMEOUTS = { headersMs: 1000, requestMs: 2000, connectionMs: 3000, keepAliveMs: 1000 };
/** How late a close may come: the server checks its connections on an interval, and the machine is busy. */
const SLACK_MS = 1500;
/** Longer than any timeout above: a connection still open then was never going to be closed. */
const GIVE_UP_MS = TIMEOUTS.connectionMs + 4000;
const CONNECTIONS = 50;
/**
 * Node (since 24) closes an idle keep-alive connection this long after the
 * timeout it advertises, so a client never reuses a socket the server is closing.
 */
const KEEP_ALIVE_BUFFER_MS = (createServer() as { keepAliveTimeoutBuffer?: number }).keepAliveTimeoutBuffer ?? 0;

interface Outcome {
  closedAfterMs: number | undefined;
  received: string;
}

/**
 * Opens a connection, sends `first`, then keeps sending `trickle` every 200 ms
 * (so the socket is never idle) until the server closes it or we give up.
 */
function slowClient(port: number, first: string, trickle?: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket: Socket = connect(port, '127.0.0.1');
    let received = '';
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => finish(undefined), GIVE_UP_MS);
    function finish(closedAfterMs: number | undefined) {
      clearTimeout(giveUp);
      clearInterval(timer);
      socket.destroy();
      resolve({ closedAfterMs, received });
    }
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => finish(Date.now() - started));
    socket.on('connect', () => {
      if (first) socket.write(first);
      if (trickle) timer = setInterval(() => socket.writable && socket.write(trickle), 200);
    });
  });
}

describe('issue 12 point 5: slow clients', () => {
  let mongo: MongoHandle;
  let temporal: Client;
  let api: RunningApi;
  let port: number;

  beforeAll(async () => {
    mongo = await connectMongo(testServers.mongoUri(), uniqueName('slow'));
    temporal = await connectClient(testServers.temporal());
    api = await startApi({ db: mongo.db, temporal, settings: { timeouts: TIMEOUTS } });
    port = Number(new URL(api.url).port);
  });
  afterAll(async () => {
    await api?.close();
    await temporal?.connection.close();
    await mongo?.close();
  });

  const many = (open: () => Promise<Outcome>) => Promise.all(Array.from({ length: CONNECTIONS }, open));
  const closeTimes = (outcomes: Outcome[]) => outcomes.map((o) => o.closedAfterMs ?? Infinity);

  it('has finite defaults, and refuses a headers timeout longer than the request timeout', () => {
    expect(loadApiConfig({}).httpServer.timeouts).toEqual({
      headersMs: 10_000,
      requestMs: 30_000,
      connectionMs: 60_000,
      keepAliveMs: 72_000,
    });
    expect(() => loadApiConfig({ API_HEADERS_TIMEOUT_SECONDS: '40', API_REQUEST_TIMEOUT_SECONDS: '30' })).toThrow(
      /API_HEADERS_TIMEOUT_SECONDS/,
    );
  });

  it(`closes ${CONNECTIONS} connections that never finish their headers (headers timeout), and keeps serving others`, async () => {
    const attack = many(() => slowClient(port, 'GET /health HTTP/1.1\r\nHost: x\r\n', 'X-a: b\r\n'));
    // Meanwhile an ordinary client is answered at once.
    const health = await fetch(`${api.url}/health`);
    expect(health.status).toBe(200);
    const times = closeTimes(await attack);
    expect(Math.max(...times)).toBeLessThan(TIMEOUTS.headersMs + SLACK_MS);
  });

  it(`closes ${CONNECTIONS} connections that trickle a body (request timeout), answering 408`, async () => {
    const head =
      'POST /signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n';
    const outcomes = await many(() => slowClient(port, head, 'a'));
    expect(Math.max(...closeTimes(outcomes))).toBeLessThan(TIMEOUTS.requestMs + SLACK_MS);
    for (const outcome of outcomes) expect(outcome.received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it(`closes ${CONNECTIONS} connections that send nothing at all`, async () => {
    const times = closeTimes(await many(() => slowClient(port, '')));
    expect(Math.max(...times)).toBeLessThan(TIMEOUTS.connectionMs + SLACK_MS);
  });

  it(`closes ${CONNECTIONS} idle keep-alive connections after their response (keep-alive timeout)`, async () => {
    const outcomes = await many(() => slowClient(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
    for (const outcome of outcomes) expect(outcome.received).toMatch(/^HTTP\/1\.1 200 /);
    // Kept alive for the advertised time (not closed with the response), then closed by the server.
    for (const outcome of outcomes) expect(outcome.received).toMatch(/\r\nkeep-alive: timeout=1\r\n/i);
    const times = closeTimes(outcomes);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(TIMEOUTS.keepAliveMs);
    expect(Math.max(...times)).toBeLessThan(TIMEOUTS.keepAliveMs + KEEP_ALIVE_BUFFER_MS + SLACK_MS);
  });
});
