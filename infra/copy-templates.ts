/**
 * tsc compiles only TypeScript: after it, `npm run build` copies the pages'
 * Handlebars templates next to the compiled modules that render them.
 */
import { copyFileSync, globSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = join(__dirname, '..', '..');
for (const file of globSync('{api,sandbox}/**/*.hbs', { cwd: root })) {
  const target = join(root, 'dist', file);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(root, file), target);
}
