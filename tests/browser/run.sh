#!/usr/bin/env bash
# Starts a real yizhan server on a fresh data directory and drives it with
# Debian's Chromium through playwright-core.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

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

cargo build --locked -p yizhan --manifest-path "$root/Cargo.toml"
bin="$root/target/debug/yizhan"
data="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
log="$data/server.log"
# With BROWSER_PG_URL (a PostgreSQL server URL), the same test runs on a fresh
# PostgreSQL database that is dropped afterwards; otherwise on SQLite.
db_args=()
pg_db=""
if [ -n "${BROWSER_PG_URL:-}" ]; then
  pg_db="yz_browser_$RANDOM$RANDOM"
  psql "$BROWSER_PG_URL" -qc "CREATE DATABASE $pg_db" >/dev/null
  db_args=(--database-url "${BROWSER_PG_URL%/*}/$pg_db")
  echo "browser test on PostgreSQL ($pg_db)"
else
  echo "browser test on SQLite"
fi
"$bin" serve --addr "127.0.0.1:$port" --data-dir "$data" "${db_args[@]}" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"
  if [ -n "$pg_db" ]; then psql "$BROWSER_PG_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true; fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$log"; exit 1; }
"$bin" demo --data-dir "$data" "${db_args[@]}" >"$data/demo.log" 2>&1 || { cat "$data/demo.log"; exit 1; }
YIZHAN_URL="http://127.0.0.1:$port" SCREENSHOT_DIR="${SCREENSHOT_DIR:-$data}" node "$here/test.mjs" || { echo "--- server log"; tail -50 "$log"; exit 1; }
