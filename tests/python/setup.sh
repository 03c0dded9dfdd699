#!/usr/bin/env bash
# Installs what tests/python.rs needs: Java for pyspark (Debian's default-jre-headless, only if
# missing), a virtual environment in target/python-venv with pyarrow, pandas, pytest and pyspark
# (made once), and the crv package built from this checkout by `pip install .` (pyproject.toml at the root), rebuilt
# every run. The wheel is built in cargo's dev profile into the checkout's target directory,
# where the dependencies are compiled as for `cargo test` (Cargo.toml), so the two share them.
# Run by .ci/run before the tests; run it again after changing the Rust or Python sources.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v java >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q --no-install-recommends default-jre-headless >/dev/null
fi
venv=target/python-venv
if [ ! -x "$venv/bin/pyspark" ]; then
  mkdir -p target
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "pyarrow==26.0.1" "pandas==3.1.1" "pytest==9.2.0" "pyspark==4.3.0"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
started=$(date +%s)
MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/pip" install -q --force-reinstall --no-deps .
echo "tests/python/setup.sh: the crv package built and installed in $(( $(date +%s) - started )) s"
