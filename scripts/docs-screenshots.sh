#!/usr/bin/env bash
# The pictures in docs/images/. The browser tests (crates/mandate/tests/e2e/browser) run with
# MANDATE_DOCS_IMAGES=docs/images, and each screenshot a test takes for the docs
# (Chromium::screenshot_for_docs) is written there as well, clipped to the page's card. Run this
# after changing how a page looks, look at the pictures, and commit them. Arguments go to the
# test binary (a name filters the tests: `scripts/docs-screenshots.sh browser::passkeys`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
browser_env=$(scripts/browser-setup.sh --print-env)
while IFS= read -r kv; do export "${kv?}"; done <<<"$browser_env"
export MANDATE_DOCS_IMAGES=docs/images
# All of them (no arguments): the pictures no test takes any more go.
if [ "$#" -eq 0 ]; then
  rm -f docs/images/*.png
  set -- browser::
fi
cargo test -p mandate --test e2e -- "$@"
# The docs test (docs_commands::docs_images) refuses pictures over 80 KiB.
status=0
for f in docs/images/*.png; do
  size=$(stat -c %s "$f")
  if [ "$size" -gt 81920 ]; then
    echo "docs-screenshots: $f is $((size / 1024)) KiB, over 80 KiB: clip or simplify the page shown" >&2
    status=1
  fi
done
ls -l docs/images
exit "$status"
