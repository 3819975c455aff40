#!/usr/bin/env bash
# Regenerate docs/leaderboard/*.png: the browser test builds the site of the committed records
# (leaderboards/records) and saves a screenshot of each page it checks. Needs chromium and
# chromedriver (`make browser`); fails rather than skip when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/leaderboard
rm -f "$out"/*.png
RETBENCH_SCREENSHOTS="$out" .venv/bin/python -m pytest -q -rs tests/test_leaderboard_site.py \
    -k committed_records_site -p no:cacheprovider
ls "$out"/*.png >/dev/null 2>&1 || { echo "no screenshots written (was the browser test skipped?)" >&2; exit 1; }
du -h "$out"/*.png
