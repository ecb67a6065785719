#!/usr/bin/env bash
# Create .venv-fer/, the separate environment of the PyPI package `fer` (issue #7, peer comparison).
#
# Usage: bash benchmarks/peer_fer/setup_env.sh            (from anywhere; PYTHON=python3.11 by default)
#        FER_VENV=/elsewhere bash benchmarks/peer_fer/setup_env.sh
#
# Separate because fer's current release cannot share the project's environment: it imports
# pkg_resources (setuptools<80) and needs OpenCV 4.x with the contrib modules, and its declared
# dependencies pull PyTorch. requirements.txt pins every package exactly and is installed with
# --no-deps (the file's header says why). pip only; nothing is downloaded at run time.
# The last step runs fer_worker.py's self-check: fer loads its bundled models with network
# access blocked, so a release that started fetching weights would fail here.
# Re-running the script reuses an existing venv and re-installs the pins (idempotent).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${FER_VENV:-$root/.venv-fer}"
python="${PYTHON:-python3.11}"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: $python not found; set PYTHON to a Python 3.11 interpreter" >&2
    exit 2
fi

echo "== creating $venv with $("$python" --version 2>&1)"
"$python" -m venv "$venv"
echo "== installing the pinned packages of $here/requirements.txt"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt"
echo "== self-check"
"$venv/bin/python" "$here/fer_worker.py" check
echo "== done: $venv (use it through benchmarks/bench_peer_fer.py)"
