import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const servers = globalThis.__testServers;
  if (!servers) return;
  await Promise.all(servers.processes.map((p) => p.stop()));
  rmSync(servers.runDir, { recursive: true, force: true });
}
