# Sourced by the test scripts: build the debug binary once, start a real
# server on a fresh data directory and a random port (SQLite, or with
# PG_URL set a fresh PostgreSQL database), wait until it is ready, and
# clean everything up on exit. Defines: bin, data, port, base, log, db_args.
# Usage: PG_URL=... start_server NAME [extra env assignments for serve...]
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cargo build --locked -p yizhan --manifest-path "$root/Cargo.toml"
bin="$root/target/debug/yizhan"
data="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
log="$data/server.log"
db_args=()
pg_db=""
server_pid=""

cleanup_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$data"
  if [ -n "$pg_db" ]; then psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true; fi
}
trap cleanup_server EXIT

start_server() {
  local name="$1"; shift
  if [ -n "${PG_URL:-}" ]; then
    pg_db="yz_${name}_$RANDOM$RANDOM"
    psql "$PG_URL" -qc "CREATE DATABASE $pg_db" >/dev/null
    db_args=(--database-url "${PG_URL%/*}/$pg_db")
    echo "$name on PostgreSQL ($pg_db)"
  else
    echo "$name on SQLite"
  fi
  env "$@" "$bin" serve --addr "127.0.0.1:$port" --data-dir "$data" "${db_args[@]}" >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  curl -fsS "$base/healthz" >/dev/null || { cat "$log"; exit 1; }
}
