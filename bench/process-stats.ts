/** What a bench reads of a child process from /proc: CPU time and peak memory. Zero once the process is gone. */
import { readFileSync } from 'node:fs';

/** CPU seconds the process has used so far (user + system). */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** A memory figure of /proc/<pid>/status, in MiB. */
function statusMb(pid: number | undefined, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`));
    return Number(line?.replace(/\D+/g, '') ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** The process's peak resident set (VmHWM), in MiB. */
export const peakRssMb = (pid: number | undefined) => statusMb(pid, 'VmHWM');

/** The process's resident set now (VmRSS), in MiB: sampled to show where the peak was reached. */
export const rssMb = (pid: number | undefined) => statusMb(pid, 'VmRSS');

/** CPU seconds of each named process, and of this one (`bench`), from now on: call the returned function to read them. */
export function cpuMeter(pids: Record<string, number | undefined>): () => Record<string, number> {
  const read = (): Record<string, number> => ({
    ...Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)])),
    bench: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  });
  const before = read();
  return () => Object.fromEntries(Object.entries(read()).map(([name, v]) => [name, v - before[name]!]));
}
