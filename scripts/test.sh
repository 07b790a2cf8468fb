#!/usr/bin/env bash
# Runs every check vmscope has: setup, formatting, lints, the web demo (wasm32) build, all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings
echo "== the web demo lints and builds for wasm32-unknown-unknown (the same app, engines and devices)"
cargo clippy -p web-demo --target wasm32-unknown-unknown -- -D warnings
./scripts/web.sh build
echo "== the book builds (mdbook; its experiments are checked by tests/book_experiments.rs)"
mdbook build book
# Where /dev/kvm exists, KVM tests must run: a KVM that fails is then a failure, not a skip.
if [ -e /dev/kvm ]; then export VMSCOPE_REQUIRE_KVM=1; fi
# setup.sh installed Chromium and chromedriver: the browser test must run, not skip.
export VMSCOPE_REQUIRE_BROWSER=1
# setup.sh installed gdb: the gdb stub's test (tests/gdb.rs) must run, not skip.
export VMSCOPE_REQUIRE_GDB=1
echo "== cargo test"
cargo test --workspace
