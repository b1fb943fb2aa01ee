#!/usr/bin/env bash
# Install everything the tests need (apt, npm, pip), then run the whole suite.
# The suite's fixtures start and stop the real components (PostgreSQL, PostgREST, the
# Supabase CLI's db push, llama.cpp, llm-katan, llmock, Chromium). Safe to run again:
# each step skips what is already installed. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
export SWITCHBOARD_TEST_CACHE="${SWITCHBOARD_TEST_CACHE:-$REPO/.cache}"
mkdir -p "$SWITCHBOARD_TEST_CACHE"
log() { printf '\n== %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }

APT_PACKAGES=(postgresql chromium chromium-driver fonts-noto-color-emoji nginx-light)
missing_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing_apt+=("$pkg")
done
if [ "${#missing_apt[@]}" -gt 0 ]; then
  log "apt: installing ${missing_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing_apt[@]}"
fi

log "python: app and test dependencies"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt

# Each component's installer exports the paths the fixtures read.
for setup in tests/setup/*.sh; do
  log "setup: $setup"
  # shellcheck source=/dev/null
  source "$setup"
done

log "pytest"
set +e
.venv/bin/python -m pytest tests -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
