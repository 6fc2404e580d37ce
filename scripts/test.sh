#!/usr/bin/env bash
# THE test command (README, CI): installs what the tests need, then fmt, clippy and all tests.
#   scripts/test.sh [extra args for the test runner, e.g. a test name filter]
# The ClickHouse tests run against a real local ClickHouse 26.9 (chdb-core in .build/chvenv);
# they start their own servers, nothing needs to be running beforehand.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export B24CH_HOME="$ROOT"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { echo; echo "==> $* ($(date +%T))"; }
t0=$(date +%s)

step "local ClickHouse (chdb-core) venv"
scripts/setup_clickhouse.sh

# A test dependency that cannot be installed fails the run: a skipped test proves nothing.
step "Python test clients (scripts/python_testenv.sh)"
if ! bash scripts/python_testenv.sh; then
    echo "FAILED: scripts/python_testenv.sh could not install the Python test clients" >&2
    exit 1
fi
export B24CH_REQUIRE_PY=1

step "browser test dependencies (chromium, playwright-core)"
if ! scripts/setup_browser.sh; then
    echo "FAILED: scripts/setup_browser.sh could not install chromium / playwright-core" >&2
    exit 1
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# Tests run 4 at a time on 2 cores: most of their time is waiting (scaled clocks, ClickHouse
# refreshes, injected slow answers), not CPU. Each process starts its own ClickHouse (about
# 300 MB RSS). B24CH_TEST_THREADS overrides.
threads="${B24CH_TEST_THREADS:-4}"
if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run"
    cargo nextest run --workspace --all-targets --no-fail-fast --test-threads "$threads" "$@"
else
    step "cargo test"
    cargo test --workspace --all-targets --no-fail-fast "$@" -- --test-threads "$threads"
fi
echo
echo "scripts/test.sh: all green in $(( $(date +%s) - t0 ))s"
