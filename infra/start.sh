#!/usr/bin/env bash
# Installs what is missing, builds, and starts the whole local stack (--cluster: shaped as production). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/install.sh
export PATH="$PWD/node_modules/.bin:$PATH"
npm run --silent build
exec node dist/infra/stack.js "$@"
