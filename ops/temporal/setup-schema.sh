#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings both schemas to the
# server's version with the server's own SQL tool, idempotently: run it before
# every server start and after every server upgrade. docker-compose.yml runs it
# in temporalio/admin-tools; `infra/start.sh --cluster` runs it with the tool
# built from the same server version (infra/temporal-server/go.mod).
#
# SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD reach the tool from the
# environment (never the command line, where `ps` would show the password).
set -eu
: "${SQL_HOST:?}" "${SQL_PORT:?}" "${SQL_USER:?}" "${SQL_PASSWORD:?}"
tool="${TEMPORAL_SQL_TOOL:-temporal-sql-tool}"
schema="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema}/postgresql/v12"
export SQL_PLUGIN=postgres12
# The tool logs every statement: shown only when it fails.
quietly() { out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }; }

for pair in "${TEMPORAL_DB:-temporal}:temporal" "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}:visibility"; do
  db="${pair%%:*}"
  kind="${pair#*:}"
  if ! out=$("$tool" --db "$db" create-database 2>&1); then
    case "$out" in
      *"already exists"*) ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  fi
  # Version 0.0 only creates the schema's version tables; update-schema then applies every version not yet applied.
  quietly "$tool" --db "$db" setup-schema -v 0.0
  quietly "$tool" --db "$db" update-schema -d "$schema/$kind/versioned"
  echo "schema of $db: up to date"
done
