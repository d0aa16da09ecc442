#!/usr/bin/env bash
# Every test rloop has, from a fresh clone: installs what it needs (the
# extension, built by maturin through pip, uvloop, pytest), then runs the
# actors crate's Rust tests, pytest on every loop, and the conformance check.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
echo "== install rloop and the test dependencies"
"$PY" -m pip install --quiet --disable-pip-version-check ".[test]"

echo "== lint"
"$PY" -m pip install --quiet --disable-pip-version-check ruff
"$PY" -m ruff check python tests tools benchmarks examples
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test (actors)"
cargo test -p actors

echo "== pytest"
# Run from a folder without python/ on the path, so the installed package is tested.
"$PY" -m pytest tests -q -p no:cacheprovider

echo "== conformance (CPython's test_asyncio on RLoop and TokioLoop)"
"$PY" tools/conformance.py --check --loop rloop
"$PY" tools/conformance.py --check --loop tokio
