#!/usr/bin/env bash
# Installs what is missing, then runs every check and test against real servers
# that the tests start themselves on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/install.sh
export PATH="$PWD/node_modules/.bin:$PATH"
echo "== format";    npx prettier --check --log-level warn .
echo "== lint";      npm run --silent lint
echo "== typecheck"; npm run --silent typecheck
echo "== build";     npm run --silent build
# No import cycle, between files or between capability folders (two levels deep: workflows/subscription,
# api/routes, …): domain/ is the kernel everything may import, and nothing imports back up.
echo "== import cycles"
node dist/infra/import-cycles.js
node dist/infra/import-cycles.js --folders --depth 2
echo "== tests"
results="${LOCAL_DIR:-$PWD/.local}/jest-results.json"
status=0
npx jest --ci --json --outputFile="$results" "$@" || status=$?
# One plain closing line that any CI reader understands.
node -e 'const r = require(process.argv[1]); console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)' "$results" || true
exit "$status"
