#!/usr/bin/env bash
# What the dashboard's browser test (tests/browser.rs) needs: Debian's chromium, a CJK font for
# what it draws, node and playwright-core (tests/browser/package-lock.json) to drive it.
# Installs only what is missing; run by .ci/run, and by the test itself on a machine that
# lacks something, so that the README's `cargo test` works on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-microhei)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]} (the dashboard's browser test)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -d node_modules/playwright-core ]; then
    echo "== npm ci (tests/browser: playwright-core, no browser download)" >&2
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >/dev/null
fi
