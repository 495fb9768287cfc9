#!/usr/bin/env bash
# Mail through a real SMTP server: aiosmtpd (PyPI) requiring STARTTLS and
# AUTH, with a certificate from a throwaway CA made here with the openssl
# CLI; then the Rust test (crates/notify/domain/tests/smtp.rs) sends through
# it with the SMTP mailer (STARTTLS, and implicit TLS on a second port) and
# checks what arrived, and that a wrong password,
# an untrusted certificate and a server without STARTTLS are refused.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."

venv="${SMTP_TEST_VENV:-/tmp/yizhan-smtp-venv}"
if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  echo "installing aiosmtpd (PyPI) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'aiosmtpd==1.4.6'
fi

work="$(mktemp -d /tmp/yizhan-smtp.XXXXXX)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A CA, and a server certificate it signs for 127.0.0.1 (webpki refuses a
# self-signed CA certificate used directly as the server's).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=yizhan smtp test CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/ext.cnf" -out "$work/server.pem" 2>/dev/null

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tls_port="$(free_port)"
plain_port="$(free_port)"
implicit_port="$(free_port)"
user="yizhan-ci"
password="correct horse 2026"

SMTP_TEST_SERVER_SECONDS=300 "$venv/bin/python" "$here/server.py" "$work/server.pem" "$work/server.key" "$work/received" \
  "$tls_port" "$plain_port" "$user" "$password" "$implicit_port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "smtp test server" "$work/server.log" 2>/dev/null && break
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log"; exit 1; fi
  sleep 0.1
done
grep -q "smtp test server" "$work/server.log" || { echo "the SMTP test server did not start"; cat "$work/server.log"; exit 1; }

status=0
YIZHAN_TEST_SMTP_PORT="$tls_port" \
YIZHAN_TEST_SMTP_PLAIN_PORT="$plain_port" \
YIZHAN_TEST_SMTP_IMPLICIT_PORT="$implicit_port" \
YIZHAN_TEST_SMTP_USER="$user" \
YIZHAN_TEST_SMTP_PASSWORD="$password" \
YIZHAN_TEST_SMTP_CA_FILE="$work/ca.pem" \
YIZHAN_TEST_SMTP_RECEIVED="$work/received" \
  cargo test -p yizhan-notify --test smtp --locked -- --test-threads=1 || status=$?
if [ "$status" -ne 0 ]; then echo "--- server log"; cat "$work/server.log"; fi
exit "$status"
