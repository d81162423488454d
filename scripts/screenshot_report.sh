#!/usr/bin/env bash
# Screenshot an HTML report as a person would see it (Debian's chromium: apt-get install chromium).
#   scripts/screenshot_report.sh artifacts/report.html artifacts/report.png [WIDTHxHEIGHT]
set -euo pipefail
page=$(realpath "$1"); out=$(realpath -m "$2"); size=${3:-1280,2400}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" \
  --window-size="${size/x/,}" --screenshot="$out" "file://$page" 2>/dev/null
echo "$out"
