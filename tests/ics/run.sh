#!/usr/bin/env bash
# Our calendar files against two independent parsers from PyPI: `icalendar`
# and the stricter `ical`. A small command of the booking engine
# (crates/booking/domain/examples/ics_sample.rs) writes one appointment's
# file and a feed (the same functions the server answers
# /api/v1/appointments/{id}/ics and /cal/{token}.ics with) and what each should
# read back; tests/ics/check.py parses them with both and compares.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${ICS_VENV:-/tmp/yizhan-ics-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import icalendar, ical' 2>/dev/null; then
  echo "installing icalendar and ical (PyPI) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q icalendar ical
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo run -q -p yizhan-booking --locked --example ics_sample -- "$out"
"$venv/bin/python" "$here/check.py" "$out/appointment.ics" "$out/feed.ics" "$out/empty-feed.ics"
