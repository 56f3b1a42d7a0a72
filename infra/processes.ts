/** Starting and stopping the real servers as child processes, shared by the local stack and the tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { dirname } from 'node:path';

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * A port nothing listens on, for a server we start next. It comes from below
 * the kernel's ephemeral range: ports there are handed to every outgoing
 * connection and to servers that ask for port 0 (the Temporal dev server's
 * inner services do), so one found free there can be taken again before our
 * server binds it. Below that range only explicit binds compete.
 */
export async function freePort(): Promise<number> {
  const [low, high] = fixedPortRange();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port between ${low} and ${high} after 50 tries`);
}

/** Ports this process already handed out, so two servers started together never get the same one. */
const handedOut = new Set<number>();

/** Keeps `freePort` from handing out these: ports already chosen elsewhere, for servers not listening yet. */
export function reservePorts(ports: Iterable<number>): void {
  for (const port of ports) handedOut.add(port);
}

function fixedPortRange(): [number, number] {
  const fallback: [number, number] = [20_000, 32_000];
  try {
    const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    return ephemeralLow && ephemeralLow > 12_000 ? [10_000, ephemeralLow] : fallback;
  } catch {
    return fallback;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolveOpen) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolveOpen(true);
    });
    socket.once('error', () => resolveOpen(false));
  });
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, isAlive?: () => boolean) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (isAlive && !isAlive()) throw new Error(`${what} exited before it was ready`);
    if (Date.now() > deadline) throw new Error(`${what} was not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** Echo output to our stdout too (the local stack does, tests don't). */
  echo?: boolean;
  /** Called with the child as soon as it is spawned, before it is ready. */
  onSpawn?: (child: ChildProcess) => void;
  /** SIGTERM unless set: PostgreSQL takes SIGINT as its fast shutdown, SIGTERM waits for every client to leave. */
  stopSignal?: NodeJS.Signals;
  /**
   * Only `env` (and PATH, HOME): for servers whose configuration is read from the environment, so that a
   * variable the operator set for something else does not change it quietly.
   */
  onlyEnv?: boolean;
}

export async function startProcess(options: StartOptions): Promise<ManagedProcess> {
  if (!existsSync(options.command) && options.command.includes('/')) {
    throw new Error(`${options.name}: ${options.command} is missing; run infra/install.sh first`);
  }
  mkdirSync(dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.onlyEnv
      ? { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env }
      : { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  options.onSpawn?.(child);
  for (const stream of [child.stdout, child.stderr]) {
    stream?.pipe(log, { end: false });
    if (options.echo)
      stream?.on('data', (chunk: Buffer) => process.stdout.write(`[${options.name}] ${chunk.toString()}`));
  }
  let exited = false;
  const exitPromise = new Promise<void>((resolveExit) => child.once('exit', () => ((exited = true), resolveExit())));
  const stop = async () => {
    if (exited) return;
    child.kill(options.stopSignal ?? 'SIGTERM');
    const killed = await Promise.race([
      exitPromise.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 10_000)),
    ]);
    if (!killed) child.kill('SIGKILL');
    await exitPromise;
    log.end();
  };
  try {
    await waitFor(options.name, options.ready, options.readyTimeoutMs ?? 60_000, () => !exited);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message} (see ${options.logFile})`, { cause: error });
  }
  return { name: options.name, child, logFile: options.logFile, stop };
}
