#!/usr/bin/env bash
# The Python package's tests (tests/python/test_crv.py), run by .ci/run after `cargo test`:
# a venv in target/python-venv (pyarrow, pandas, pytest, pyspark; made once), Java for pyspark
# (Debian's default-jre-headless, only if missing), then `pip install ./python` built in the
# dev profile into the shared target/ (unoptimised: quick to build, fast enough at test sizes), and
# pytest against target/debug/crv (built by `cargo test`).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v java >/dev/null; then
  apt-get install -y -q default-jre-headless >/dev/null
fi
venv=target/python-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pyarrow pandas pytest pyspark
fi
[ -x target/debug/crv ] || cargo build -q --bin crv
started=$(date +%s)
MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/pip" install -q --force-reinstall --no-deps ./python
echo "tests/python: wheel built and installed in $(( $(date +%s) - started )) s"
started=$(date +%s)
CRV_BIN=target/debug/crv "$venv/bin/python" -m pytest -q tests/python
echo "tests/python: pytest in $(( $(date +%s) - started )) s"
