import type { Db } from 'mongodb';

export interface DiagnosticsDeps {
  db: Db;
}

export function createDiagnosticsActivities({ db }: DiagnosticsDeps) {
  return {
    /** Proves the worker reaches the store: a ping plus a write and read of one document. */
    async checkStore(probeId: string): Promise<{ pingMs: number; wrote: boolean }> {
      const started = Date.now();
      await db.command({ ping: 1 });
      const pingMs = Date.now() - started;
      const probes = db.collection<{ _id: string; at: Date }>('diagnostic_probes');
      await probes.updateOne({ _id: probeId }, { $set: { at: new Date() } }, { upsert: true });
      const wrote = (await probes.countDocuments({ _id: probeId })) === 1;
      return { pingMs, wrote };
    },
  };
}
