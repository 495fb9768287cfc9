#!/usr/bin/env bash
# Starts a real yizhan server on a fresh data directory and drives it with
# Debian's Chromium through playwright-core.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ ! -x /usr/bin/chromium ] || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
  echo "installing chromium and CJK fonts (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
  echo "installing playwright-core (npm; no browser download)"
  (cd "$here" && npm install --no-audit --no-fund --silent >/dev/null)
fi

# With BROWSER_PG_URL (a PostgreSQL server URL), the same test runs on a fresh
# PostgreSQL database that is dropped afterwards; otherwise on SQLite.
PG_URL="${BROWSER_PG_URL:-}"
# shellcheck source=../lib/server.sh
source "$here/../lib/server.sh"
start_server browser
# The demo runs beside the server, on the same database.
"$bin" demo --data-dir "$data" "${db_args[@]}" >"$data/demo.log" 2>&1 || { cat "$data/demo.log"; exit 1; }
YIZHAN_URL="$base" YIZHAN_DATA_DIR="$data" SCREENSHOT_DIR="${SCREENSHOT_DIR:-$data}" node "$here/test.mjs" || { echo "--- server log"; tail -50 "$log"; exit 1; }
