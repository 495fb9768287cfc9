#!/usr/bin/env bash
# The API fuzzer: schemathesis generates requests from /api/openapi.json and
# checks every answer against the document (no server error, documented
# status codes, content types, headers and schemas). Starts a real server on
# a fresh data directory (SQLite), logs in a resident, and fuzzes every
# operation except logging out and deleting the account (they would end the
# fuzzer's own session). A fixed seed keeps runs reproducible; the budget is
# bounded (examples per operation, a time limit). Installs schemathesis itself.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! command -v st >/dev/null 2>&1; then
  echo "installing schemathesis (PyPI)"
  python3 -m pip install -q schemathesis >/dev/null 2>&1 || pip install -q schemathesis
fi

cargo build --locked -p yizhan --manifest-path "$root/Cargo.toml"
bin="$root/target/debug/yizhan"
data="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
"$bin" serve --addr "127.0.0.1:$port" --data-dir "$data" >"$data/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
base="http://127.0.0.1:$port"
curl -fsS -X POST "$base/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"login":"fuzzer@example.org","password":"fuzz-pass-2026","name":"Fuzzer"}' >/dev/null
token="$(curl -fsS -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"login":"fuzzer@example.org","password":"fuzz-pass-2026"}' | python3 -c 'import sys, json; print(json.load(sys.stdin)["token"])')"

status=0
timeout 600 st run "$base/api/openapi.json" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --exclude-path /api/v1/auth/logout --exclude-method DELETE \
  --phases examples,fuzzing --max-examples "${FUZZ_EXAMPLES:-40}" --seed 20261201 -w 2 || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log"; tail -30 "$data/server.log"
  echo "fuzz: 0 passed, 1 failed"
  exit "$status"
fi
echo "fuzz: 1 passed, 0 failed"
