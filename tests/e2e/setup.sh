#!/usr/bin/env bash
# Installs what tests/dashboard.rs's browser and schemathesis tests need, each only if missing:
# Debian's chromium (apt), playwright-core from tests/e2e/package-lock.json (npm ci; it drives
# /usr/bin/chromium and downloads no browser), and schemathesis in a virtual environment under
# target/e2e/venv (pip, pinned). Run by .ci/run before the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v chromium >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q --no-install-recommends chromium >/dev/null
fi
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/e2e --no-audit --no-fund
fi
if [ ! -x target/e2e/venv/bin/schemathesis ]; then
  mkdir -p target/e2e
  python3 -m venv target/e2e/venv
  target/e2e/venv/bin/pip install -q "schemathesis==4.32.5"
fi
