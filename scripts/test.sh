#!/usr/bin/env bash
# The test suite on SQLite and on a throwaway PostgreSQL. In CI (CI=true) PostgreSQL must
# start; locally the PostgreSQL tests are skipped, with the reason, when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
pgdir="$(mktemp -d /tmp/frontdesk-pg.XXXXXX)"
cleanup() { scripts/postgres.sh stop "$pgdir" || true; }
trap cleanup EXIT

if url=$(scripts/postgres.sh start "$pgdir"); then
    export FRONTDESK_TEST_POSTGRES_URL="$url"
    echo "PostgreSQL for the tests: $url"
elif [ "${CI:-}" = "true" ]; then
    echo "PostgreSQL could not be started; CI needs it" >&2
    exit 1
else
    echo "PostgreSQL could not be started: its tests will be skipped" >&2
fi

.venv/bin/python -m pytest "$@"
