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
# The first start: a second server on its own empty data directory (SQLite)
# prints the one-time setup link; flows/25 opens it.
first_data="$(mktemp -d)"
first_port=$((port + 1))
"$bin" serve --addr "127.0.0.1:$first_port" --data-dir "$first_data" >"$first_data/server.log" 2>&1 &
first_pid=$!
trap 'kill "$first_pid" 2>/dev/null || true; wait "$first_pid" 2>/dev/null || true; rm -rf "$first_data"; cleanup_server' EXIT
setup_url=""
for _ in $(seq 1 100); do
  setup_url="$(grep -o 'http://[^ ]*/setup?token=[0-9a-f]*' "$first_data/server.log" | head -1 || true)"
  [ -n "$setup_url" ] && break
  sleep 0.2
done
[ -n "$setup_url" ] || { echo "the fresh server printed no setup link:"; cat "$first_data/server.log"; exit 1; }
# The demo runs beside the server, on the same database.
"$bin" demo --data-dir "$data" "${db_args[@]}" >"$data/demo.log" 2>&1 || { cat "$data/demo.log"; exit 1; }
YIZHAN_URL="$base" YIZHAN_DATA_DIR="$data" YIZHAN_SETUP_URL="$setup_url" SCREENSHOT_DIR="${SCREENSHOT_DIR:-$data}" node "$here/test.mjs" || { echo "--- server log"; tail -50 "$log"; exit 1; }
