#!/usr/bin/env bash
# Refetch the QR decoder the scan buttons load where the browser has no
# BarcodeDetector: jsQR's built file from the npm registry (Apache-2.0, its
# licence beside it). Nothing runs Node.js at run time; the file is served as it is.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=1.4.0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "jsqr@$version" --silent >/dev/null && tar xzf "jsqr-$version.tgz")
cp "$tmp/package/dist/jsQR.js" "$here/jsQR-$version.js"
cp "$tmp/package/LICENSE" "$here/jsQR-LICENSE"
