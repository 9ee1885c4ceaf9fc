#!/usr/bin/env bash
# Create .venv and install rag-assets into it (idempotent: skips when pyproject.toml is unchanged).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH="torch==2.13.0"  # = the pin in pyproject.toml
# PyTorch's CPU wheels: PyPI's Linux torch is the multi-GB CUDA build. Set TORCH_INDEX_URL="" to use PyPI.
TORCH_INDEX_URL=${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi

torch_installed() {  # the pinned version, whichever build (CPU, or a CUDA one someone chose) is there
  .venv/bin/python -c "import sys, importlib.metadata as m; sys.exit(m.version('torch').split('+')[0] != '${TORCH#torch==}')" 2>/dev/null
}

index_reachable() {  # a short probe: machines that only reach PyPI (or nothing) must not wait on it
  [ -n "$TORCH_INDEX_URL" ] && timeout 10 .venv/bin/python -c "import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + '/', timeout=5).close()
except Exception:
    sys.exit(1)" "$TORCH_INDEX_URL" 2>/dev/null
}

stamp=.venv/.rag-assets-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, pinned, so the project install below finds it satisfied.
  if torch_installed; then
    :
  elif index_reachable; then
    .venv/bin/python -m pip install -q --index-url "$TORCH_INDEX_URL" "$TORCH"
  else
    # No CPU index here: PyPI, or the local wheels pip is configured with (find-links).
    echo "setup: $TORCH_INDEX_URL not reachable; installing $TORCH from the configured index" >&2
    .venv/bin/python -m pip install -q "$TORCH"
  fi
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi
