#!/usr/bin/env bash
# Our TOTP codes against pyotp's (PyPI): installs pyotp into a virtualenv
# under /tmp, then runs the Rust test that asks it (skipped without it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${TOTP_VENV:-/tmp/yizhan-pyotp-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pyotp' 2>/dev/null; then
  echo "installing pyotp (PyPI) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pyotp
fi
YIZHAN_PYOTP="$venv/bin/python $here/check.py" \
  cargo test -p yizhan-identity --locked --test totp -- codes_match_pyotp --nocapture
