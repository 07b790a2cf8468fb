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
# setup.sh installed nightly and cargo-fuzz: the fuzz targets must run, not skip.
export VMSCOPE_REQUIRE_FUZZ=1
echo "== cargo test"
cargo test --workspace
# Coverage-guided fuzzing (fuzz/, its own workspace and target dir): every target from its seed
# corpus (fuzz/corpus-seed/) for a bounded time; a panic fails with the input in fuzz/artifacts/.
# ≈1.5 minutes to build cold, 15 s per target.
FUZZ_SECONDS=${VMSCOPE_FUZZ_SECONDS:-15}
if rustup run nightly rustc --version >/dev/null 2>&1 && cargo fuzz --version >/dev/null 2>&1; then
    echo "== fuzz targets: cargo +nightly fuzz run, ${FUZZ_SECONDS} s each"
    (cd fuzz && cargo +nightly fuzz build)
    for target in $(cd fuzz && cargo +nightly fuzz list); do
        corpus=$(mktemp -d)
        log="$corpus.log"
        seeds="$PWD/fuzz/corpus-seed/$target"
        if [ "$target" = moo_reader ]; then
            # Seeds from the SingleStepTests files in ../shared/testdata, made here at run time
            # (outside data is read from there, never copied into the repository).
            seeds=$(mktemp -d)
            for f in ../shared/testdata/sst-80286-real/00.MOO.gz ../shared/testdata/sst-80286-real/88.MOO.gz; do
                if [ -f "$f" ]; then
                    gzip -dc "$f" | head -c 4096 >"$seeds/$(basename "$f" .gz)" || true
                    cp "$f" "$seeds/"
                fi
            done
        fi
        if (cd fuzz && cargo +nightly fuzz run "$target" "$corpus" "$seeds" -- \
            -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1; then
            runs=$(awk '/^stat::number_of_executed_units/ { print $2 }' "$log")
            echo "fuzz target $target: clean for ${FUZZ_SECONDS} s (${runs:-?} inputs)"
            rm -rf "$corpus" "$log"
        else
            tail -n 40 "$log"
            echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/ (log: $log)"
            exit 1
        fi
    done
elif [ -n "${VMSCOPE_REQUIRE_FUZZ:-}" ]; then
    echo "fuzz targets: the nightly toolchain or cargo-fuzz is missing, and VMSCOPE_REQUIRE_FUZZ is set (run scripts/setup.sh)"
    exit 1
else
    echo "== SKIPPED fuzz targets: needs the nightly toolchain and cargo-fuzz (scripts/setup.sh installs both)"
fi
