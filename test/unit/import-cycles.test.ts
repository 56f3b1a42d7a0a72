/**
 * The folder-level cycle check behind `infra/import-cycles.ts --folders`:
 * which folder a file belongs to, and every cycle of the collapsed graph,
 * each reported once.
 */
import { cyclesOf, folderGraph, folderOf } from '../../infra/import-cycles';

describe('import cycles between folders', () => {
  it('puts a file in its first N folders, a file higher up in its own folder', () => {
    expect(folderOf('workflows/subscription/state.ts', 1)).toBe('workflows');
    expect(folderOf('workflows/subscription/state.ts', 2)).toBe('workflows/subscription');
    expect(folderOf('workflows/ids.ts', 2)).toBe('workflows');
    expect(folderOf('lib/store/metering/ledger.ts', 2)).toBe('lib/store');
  });

  it('finds a cycle that no single pair of files closes, with an import that shows each step', () => {
    const { graph, imports } = folderGraph(
      {
        'activities/metering.ts': ['lib/store/usage.ts', 'activities/usage-sender.ts'],
        'activities/usage-sender.ts': [],
        'lib/store/usage.ts': ['lib/mongo.ts'],
        'lib/mongo.ts': [],
        'lib/subscription-client.ts': ['workflows/subscription-messages.ts'],
        'workflows/subscription-messages.ts': ['workflows/subscription-model.ts'],
        'workflows/subscription-model.ts': [],
        'workflows/subscription-activities.ts': ['activities/metering.ts'],
      },
      1,
    );
    expect(cyclesOf(graph)).toEqual([['activities', 'lib', 'workflows']]);
    expect(imports.get('lib workflows')).toEqual(['lib/subscription-client.ts → workflows/subscription-messages.ts']);
    // Within a folder, imports are no edge at all.
    expect(graph.get('workflows')).toEqual(new Set(['activities']));
  });

  it('reports each elementary cycle once, however many share a folder', () => {
    const graph = new Map([
      ['a', new Set(['b', 'c'])],
      ['b', new Set(['a', 'c'])],
      ['c', new Set(['a'])],
      ['d', new Set(['a'])],
    ]);
    expect(cyclesOf(graph)).toEqual([
      ['a', 'b'],
      ['a', 'b', 'c'],
      ['a', 'c'],
    ]);
  });

  it('finds none in a layered graph', () => {
    const graph = new Map([
      ['api', new Set(['workflows', 'kernel'])],
      ['workflows', new Set(['kernel'])],
      ['kernel', new Set<string>()],
    ]);
    expect(cyclesOf(graph)).toEqual([]);
  });
});
