#!/usr/bin/env bash
# The API fuzzer: schemathesis generates requests from /api/openapi.json and
# checks every answer against the document (no server error, documented
# status codes, content types, headers and schemas). Starts a real server on
# a fresh data directory (SQLite, or with FUZZ_PG_URL a fresh PostgreSQL
# database dropped afterwards), then fuzzes every operation as a resident and
# again as a platform administrator (who reaches the staff routes), except
# logging out and deleting the account (they would end the fuzzer's own
# session). A fixed seed keeps runs reproducible; the budget is bounded
# (examples per operation, a time limit). Installs schemathesis itself.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if ! command -v st >/dev/null 2>&1; then
  echo "installing schemathesis (PyPI)"
  python3 -m pip install -q schemathesis >/dev/null 2>&1 || pip install -q schemathesis
fi

PG_URL="${FUZZ_PG_URL:-}"
# shellcheck source=../lib/server.sh
source "$here/../lib/server.sh"
start_server fuzz YIZHAN_ADMIN_LOGIN=fuzz-admin@example.org YIZHAN_ADMIN_PASSWORD=fuzz-admin-2026 YIZHAN_MAIL=sandbox
curl -fsS -X POST "$base/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"login":"fuzzer@example.org","password":"fuzz-pass-2026","name":"Fuzzer"}' >/dev/null
# Prove the login with the code the sandbox mailer wrote into the outbox, so the fuzzer may pay.
code="$(python3 - "$data/outbox" <<'PY'
import os, re, sys
d = sys.argv[1]
for f in sorted(os.listdir(d), reverse=True):
    t = open(os.path.join(d, f), encoding="utf-8").read()
    if "\nTo: fuzzer@example.org\n" in t:
        m = re.search(r"(?<![0-9])[0-9]{6}(?![0-9])", t.split("\n\n", 1)[1])
        if m:
            print(m.group(0))
            break
PY
)"
curl -fsS -X POST "$base/api/v1/auth/verify" -H 'content-type: application/json' \
  -d "{\"login\":\"fuzzer@example.org\",\"code\":\"$code\"}" >/dev/null
login() {
  curl -fsS -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"login\":\"$1\",\"password\":\"$2\"}" | python3 -c 'import sys, json; print(json.load(sys.stdin)["token"])'
}
fuzz() {
  timeout 600 st run "$base/api/openapi.json" \
    -H "Authorization: Bearer $1" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --exclude-path /api/v1/auth/logout --exclude-method DELETE \
    --phases examples,fuzzing --max-examples "$2" --seed 20261201 -w 2
}

status=0
echo "--- as a resident"
fuzz "$(login fuzzer@example.org fuzz-pass-2026)" "${FUZZ_EXAMPLES:-40}" || status=$?
if [ "$status" -eq 0 ]; then
  echo "--- as a platform administrator"
  fuzz "$(login fuzz-admin@example.org fuzz-admin-2026)" "${FUZZ_ADMIN_EXAMPLES:-20}" || status=$?
fi
if [ "$status" -ne 0 ]; then
  echo "--- server log"; tail -30 "$log"
  echo "fuzz: 0 passed, 1 failed"
  exit "$status"
fi
echo "fuzz: 1 passed, 0 failed"
