#!/bin/sh
# Screenshot of the top of a run's report.html (what docs/report.png shows):
#   docs/screenshot.sh runs/<run id>/report.html docs/report.png [WIDTHxHEIGHT]
# Needs Debian's chromium (apt-get install -y --no-install-recommends chromium). The report is
# self-contained (Chart.js inlined, a Content-Security-Policy that loads nothing), so the page
# renders offline; --virtual-time-budget lets its charts finish drawing before the shot.
set -eu
if [ $# -lt 2 ]; then
  echo "usage: docs/screenshot.sh <report.html> <out.png> [WIDTHxHEIGHT (default 1200x1400)]" >&2
  exit 2
fi
report=$1
out=$2
size=${3:-1200x1400}
[ -f "$report" ] || { echo "screenshot.sh: no file $report" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "screenshot.sh: no chromium on PATH (apt-get install -y --no-install-recommends chromium)" >&2; exit 1; }
abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size="$(echo "$size" | tr x ,)" --virtual-time-budget=5000 \
  --screenshot="$out" "file://$abs" 2>/dev/null
[ -s "$out" ] || { echo "screenshot.sh: chromium wrote no $out" >&2; exit 1; }
echo "wrote $out ($(wc -c < "$out") bytes)"
