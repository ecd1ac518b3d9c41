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

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Chromium from Debian's packages for the browser tests..." >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 \
            || echo "Chromium could not be installed" >&2
    fi
    if ! command -v chromium >/dev/null 2>&1; then
        if [ "${CI:-}" = "true" ]; then
            echo "Chromium is missing; CI needs it for the browser tests" >&2
            exit 1
        fi
        echo "Chromium is missing: the browser tests will be skipped" >&2
    fi
fi

.venv/bin/python -m pytest "$@"
