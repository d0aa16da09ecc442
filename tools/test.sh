#!/usr/bin/env bash
# Every test rloop has, from a fresh clone: installs what it needs (the
# extension, built by maturin through pip, uvloop, pytest), then runs the
# actors crate's Rust tests, pytest on every loop, and the conformance check,
# on the host's Python (3.11), then the same on 3.12-3.15 (tools/matrix.sh),
# then a manylinux wheel per version, each installed into a fresh venv and run
# without Rust (tools/wheels.sh; the wheels land in dist/).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
START=$SECONDS
STAGE_START=$SECONDS
# Each stage's header says how long the one before it took, for CI's logs.
stage() {
    if [ $SECONDS -gt "$START" ]; then
        echo "   (stage took $((SECONDS - STAGE_START))s; $((SECONDS - START))s in all)"
    fi
    STAGE_START=$SECONDS
    echo "== $1"
}

stage "install rloop and the test dependencies"
"$PY" -m pip install --quiet --disable-pip-version-check ".[test]"

stage "lint"
"$PY" -m pip install --quiet --disable-pip-version-check ruff
"$PY" -m ruff check python tests tools benchmarks examples
"$PY" tools/module_cycles.py
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings

stage "cargo test (actors)"
cargo test -p actors

stage "pytest"
# Run from a folder without python/ on the path, so the installed package is tested.
"$PY" -m pytest tests -q -p no:cacheprovider

stage "examples that are test suites (aiohttp under fault injection, aiohttp and uvicorn over HTTPS)"
"$PY" -m pip install --quiet --disable-pip-version-check aiohttp uvicorn
"$PY" -m pytest examples/faults_aiohttp_test.py examples/https_test.py -q -p no:cacheprovider

stage "conformance (CPython's test_asyncio on RLoop and TokioLoop)"
"$PY" tools/conformance.py --check --loop rloop
"$PY" tools/conformance.py --check --loop tokio

stage "the other Python versions (tools/matrix.sh: pytest and conformance on each)"
bash tools/matrix.sh 3.12 3.13 3.14 3.15

stage "wheels (tools/wheels.sh: a manylinux wheel per version, installed and run without Rust)"
bash tools/wheels.sh
stage "done"
