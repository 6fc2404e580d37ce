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


# Tests run 4 at a time on 2 cores: most of their time is waiting (scaled clocks, ClickHouse
# refreshes, injected slow answers), not CPU. Each process starts its own ClickHouse (about
# 300 MB RSS). B24CH_TEST_THREADS overrides.
threads="${B24CH_TEST_THREADS:-4}"
# Libraries, binaries and tests: the benchmark examples have no tests (clippy checks them), and
# linking them against everything would only cost build time. The slowest tests start first
# (.config/nextest.toml).
targets=(--lib --bins --tests)
if cargo nextest --version >/dev/null 2>&1; then
    runner=(cargo nextest run --workspace "${targets[@]}" --no-fail-fast --test-threads "$threads" "$@")
    build=(cargo nextest run --workspace "${targets[@]}" --no-run)
else
    runner=(cargo test --workspace "${targets[@]}" --no-fail-fast "$@" -- --test-threads "$threads")
    build=(cargo test --workspace "${targets[@]}" --no-run)
fi

step "build the tests"
"${build[@]}"

# clippy runs while the tests wait on their clocks, in its own target directory so that it
# never holds the build lock the test runner takes. Its verdict counts as much as the tests'.
step "cargo clippy -D warnings (alongside the tests; its output follows them)"
clippy_log="$(mktemp)"
cargo clippy --workspace --all-targets --target-dir target/clippy -- -D warnings >"$clippy_log" 2>&1 &
clippy_pid=$!

step "${runner[*]:0:3} (the tests)"
tests_rc=0
"${runner[@]}" || tests_rc=$?
clippy_rc=0
wait "$clippy_pid" || clippy_rc=$?
step "cargo clippy output"
cat "$clippy_log"
rm -f "$clippy_log"
if [ "$clippy_rc" -ne 0 ]; then
    echo "FAILED: cargo clippy -D warnings (see above)" >&2
fi
if [ "$tests_rc" -ne 0 ]; then
    echo "FAILED: tests (see the summary above)" >&2
fi
if [ "$clippy_rc" -ne 0 ] || [ "$tests_rc" -ne 0 ]; then
    exit 1
fi
echo
echo "scripts/test.sh: all green in $(( $(date +%s) - t0 ))s"
