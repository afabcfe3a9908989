#!/usr/bin/env bash
# Idempotent install step for dynst_pyg on a fresh machine with only Python 3.11.
#
#   bash scripts/install.sh        # creates .venv and installs everything
#
# A stamp file keyed on pyproject.toml, constraints-cpu.txt and this script makes a
# second run a no-op (a few seconds). Set DYNST_PYTHON to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${DYNST_PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv
STAMP=$VENV/.dynst-install-stamp
want=$(cat pyproject.toml constraints-cpu.txt scripts/install.sh | sha256sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import dynst_pyg, torch_geometric_temporal" 2>/dev/null; then
    echo "[install] up to date ($VENV)"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "[install] creating $VENV with $($PY --version)"
    "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
C="-c constraints-cpu.txt"

$PIP install -q --upgrade pip setuptools wheel
echo "[install] torch (CPU, constrained)"
$PIP install -q $C torch
# torch-geometric-temporal imports torch_scatter and torch_sparse at import time.
# PyPI only has their sources; they must be compiled against the installed torch,
# hence --no-build-isolation (pip's wheel cache makes later builds instant).
if ! "$VENV/bin/python" -c "import torch_scatter" 2>/dev/null; then
    echo "[install] building torch-scatter (about 5 minutes the first time)"
    $PIP install -q $C --no-build-isolation torch-scatter
fi
if ! "$VENV/bin/python" -c "import torch_sparse" 2>/dev/null; then
    echo "[install] building torch-sparse (about 10 minutes the first time)"
    $PIP install -q $C --no-build-isolation torch-sparse
fi
echo "[install] dynst_pyg (editable) with the test extra"
$PIP install -q $C cython -e ".[test]"
"$VENV/bin/python" -c "import dynst_pyg, torch_geometric_temporal, torch; print('[install] ok: torch', torch.__version__)"
echo "$want" > "$STAMP"
