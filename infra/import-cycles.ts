/**
 * Import cycles, with madge's dependency graph (type-only imports included:
 * a type cycle still ties the two modules' designs together).
 *
 *   node dist/infra/import-cycles.js             cycles between files (`madge --circular`)
 *   node dist/infra/import-cycles.js --folders   cycles between folders: a file in A imports one in B
 *                                                and a file in B one in A, whichever files they are
 *   --depth N                                    a folder is the first N path segments (default 1:
 *                                                the top-level folders; 2 for capability folders)
 *
 * Prints every cycle with the imports that close it, and exits 1 if there is any.
 */
import { join } from 'node:path';
import madge from 'madge';
import { repoRoot } from './paths';

/** The code the services and their tooling are made of; tests import everything and nothing imports them. */
const SOURCE_FOLDERS = ['api', 'activities', 'workflows', 'worker', 'poller', 'lib', 'sandbox', 'infra', 'bench'];

type Graph = Map<string, Set<string>>;

/** The folder a file belongs to: its first `depth` directories (a file higher up belongs to its own directory). */
export function folderOf(file: string, depth: number): string {
  const dirs = file.split('/').slice(0, -1);
  return dirs.slice(0, depth).join('/') || '.';
}

/** The file graph collapsed to folders, with the file imports behind each folder edge (`<from> <to>`). */
export function folderGraph(
  files: Record<string, string[]>,
  depth: number,
): { graph: Graph; imports: Map<string, string[]> } {
  const graph: Graph = new Map();
  const imports = new Map<string, string[]>();
  for (const [file, imported] of Object.entries(files)) {
    const from = folderOf(file, depth);
    if (!graph.has(from)) graph.set(from, new Set());
    for (const target of imported) {
      const to = folderOf(target, depth);
      if (to === from) continue;
      graph.get(from)!.add(to);
      const edge = `${from} ${to}`;
      imports.set(edge, [...(imports.get(edge) ?? []), `${file} → ${target}`]);
    }
  }
  return { graph, imports };
}

/** Every elementary cycle, each once, starting at its smallest node (small graphs: a plain search is enough). */
export function cyclesOf(graph: Graph): string[][] {
  const nodes = [...graph.keys()].sort();
  const cycles: string[][] = [];
  for (const start of nodes) {
    const walk = (node: string, path: string[]): void => {
      for (const next of [...(graph.get(node) ?? [])].sort()) {
        if (next === start) cycles.push([...path]);
        // Only nodes after the start: each cycle is found from its smallest node alone.
        else if (next > start && !path.includes(next)) walk(next, [...path, next]);
      }
    };
    walk(start, [start]);
  }
  return cycles;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const betweenFolders = args.includes('--folders');
  const depthArg = args.indexOf('--depth');
  const depth = depthArg >= 0 ? Number(args[depthArg + 1]) : 1;
  if (!Number.isInteger(depth) || depth < 1)
    throw new Error('--depth takes a whole number of folder levels, 1 or more');

  const result = await madge(
    SOURCE_FOLDERS.map((folder) => join(repoRoot, folder)),
    {
      baseDir: repoRoot,
      fileExtensions: ['ts'],
      tsConfig: join(repoRoot, 'tsconfig.json'),
      excludeRegExp: [/\.d\.ts$/],
    },
  );
  if (!betweenFolders) {
    const cycles = result.circular();
    for (const cycle of cycles) console.log(`cycle: ${[...cycle, cycle[0]].join(' → ')}`);
    console.log(`import cycles between files: ${cycles.length}`);
    process.exitCode = cycles.length > 0 ? 1 : 0;
    return;
  }
  const { graph, imports } = folderGraph(result.obj(), depth);
  const cycles = cyclesOf(graph);
  for (const cycle of cycles) {
    console.log(`cycle: ${[...cycle, cycle[0]].join(' → ')}`);
    cycle.forEach((from, i) => {
      const to = cycle[(i + 1) % cycle.length]!;
      const behind = imports.get(`${from} ${to}`) ?? [];
      console.log(
        `  ${from} → ${to}: ${behind.length} import${behind.length === 1 ? '' : 's'}, e.g. ${behind.slice(0, 3).join('; ')}`,
      );
    });
  }
  console.log(`import cycles between folders (depth ${depth}): ${cycles.length}`);
  process.exitCode = cycles.length > 0 ? 1 : 0;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 2;
  });
}
