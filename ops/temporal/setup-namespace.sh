#!/bin/sh
# Registers the namespace and the custom search attributes operators find
# workflows by (domain/search-attributes.ts; test/unit/compose.test.ts checks
# the two lists agree), idempotently, with the Temporal CLI. docker-compose.yml
# runs it in temporalio/admin-tools; `infra/start.sh --cluster` runs it too.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}"
temporal="${TEMPORAL_CLI:-temporal}"
on() { "$temporal" operator "$@" --address "$TEMPORAL_ADDRESS"; }

# Created only when the server says it does not exist; any other failure (the server still starting) is retried.
tries=0
while ! out=$(on namespace describe -n "$TEMPORAL_NAMESPACE" 2>&1); do
  case "$out" in
    *"not found"*)
      # Closed workflows stay searchable for 30 days: long enough to look back over a month's bills.
      out=$(on namespace create -n "$TEMPORAL_NAMESPACE" --retention "${TEMPORAL_RETENTION:-720h}" 2>&1) && break
      case "$out" in *"already exists"* | *AlreadyExists*) break ;; esac
      ;;
  esac
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "$out" >&2; exit 1; }
  sleep 1
done

# A new namespace reaches every service of the cluster within its cache's refresh (about 10 s).
tries=0
until existing=$(on search-attribute list -n "$TEMPORAL_NAMESPACE" -o json 2>&1); do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "$existing" >&2; exit 1; }
  sleep 1
done
# Only the missing ones: creating one that exists is refused.
for attribute in \
  AwsAccountId:Keyword \
  AwsCustomerIdentifier:Keyword \
  AwsProductCode:Keyword \
  AwsLicenseArn:Keyword \
  PlatformAccountId:Keyword \
  BillingStatus:Keyword \
  MeteringHour:Datetime; do
  name="${attribute%%:*}"
  case "$existing" in
    *"\"$name\""*) ;;
    *) on search-attribute create -n "$TEMPORAL_NAMESPACE" --name "$name" --type "${attribute#*:}" >/dev/null ;;
  esac
done
# Workflows started with an attribute the frontend does not know yet are refused: wait until a query on all is accepted.
query='AwsAccountId="" or AwsCustomerIdentifier="" or AwsProductCode="" or AwsLicenseArn="" or PlatformAccountId="" or BillingStatus="" or MeteringHour="1970-01-01T00:00:00Z"'
tries=0
until out=$("$temporal" workflow count -n "$TEMPORAL_NAMESPACE" --address "$TEMPORAL_ADDRESS" -q "$query" 2>&1); do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "$out" >&2; exit 1; }
  sleep 1
done
echo "namespace $TEMPORAL_NAMESPACE: registered, with its search attributes"
