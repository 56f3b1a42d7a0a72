/**
 * An attacker's web site for browser tests: a page that auto-submits a form to
 * one of our URLs. It listens on 127.0.0.2, another site than the API's
 * 127.0.0.1 (a different port alone would be the same site, and SameSite
 * cookies would ride the POST as if it came from us).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Handlebars from 'handlebars';

export interface AttackerSite {
  url: string;
  close(): Promise<void>;
}

const attackerPage = Handlebars.compile<{ target: string; fields: Array<{ name: string; value: string }> }>(
  `<!doctype html><html><body><p>Win a prize!</p>
<form id="f" method="post" action="{{target}}">{{#each fields}}<input type="hidden" name="{{name}}" value="{{value}}">{{/each}}</form>
<script>document.getElementById('f').submit()</script></body></html>`,
  { strict: true },
);

export async function startAttackerSite(target: string, fields: Record<string, string>): Promise<AttackerSite> {
  const body = attackerPage({ target, fields: Object.entries(fields).map(([name, value]) => ({ name, value })) });
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.2:${port}/`,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}
