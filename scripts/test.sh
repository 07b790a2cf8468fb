#!/usr/bin/env bash
# Runs every check vmscope has: setup, formatting, lints, the portable-core wasm build, all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings
echo "== portable core builds for wasm32-unknown-unknown"
cargo build -p emulator -p devices --target wasm32-unknown-unknown
echo "== the GUI library checks for wasm32 too (the web demo runs the same app)"
cargo check -p gui --lib --target wasm32-unknown-unknown
echo "== the book builds (mdbook; its experiments are checked by tests/book_experiments.rs)"
mdbook build book
# Where /dev/kvm exists, KVM tests must run: a KVM that fails is then a failure, not a skip.
if [ -e /dev/kvm ]; then export VMSCOPE_REQUIRE_KVM=1; fi
# setup.sh installed Chromium and chromedriver: the browser test must run, not skip.
export VMSCOPE_REQUIRE_BROWSER=1
echo "== cargo test"
cargo test --workspace
