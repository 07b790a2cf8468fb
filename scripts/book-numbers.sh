#!/usr/bin/env bash
# Regenerates the numbers the book shows, on this machine: one `vmscope compare` run (release
# build), written to book/src/generated/ as a table, a plot and the JSON, with the date, the host
# name, the CPU model and the KVM flavour beside them. Extra arguments go to `vmscope compare`
# (e.g. `--engines interp,bt,kvm`). Commit the result: the book shows exactly this run.
set -euo pipefail
cd "$(dirname "$0")/.."

out=book/src/generated
mkdir -p "$out"
cargo build --release --quiet
vmscope=./target/release/vmscope

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "book-numbers: running vmscope compare $* (about a minute)" >&2
if ! "$vmscope" compare --json "$tmp/compare.json" --plot "$tmp/compare.svg" "$@" \
        >"$tmp/table.txt" 2>"$tmp/log.txt"; then
    cat "$tmp/log.txt" >&2
    echo "book-numbers: vmscope compare failed; nothing written" >&2
    exit 1
fi

cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
cores=$(nproc)
kvm=$("$vmscope" kvm-info 2>/dev/null | sed -n 's/^host KVM: //p' || true)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    echo "Measured on $(date -u '+%Y-%m-%d %H:%M UTC') on host \`$(uname -n)\`"
    echo "(CPU: ${cpu:-unknown}, $cores cores; KVM: ${kvm:-none}), vmscope commit \`$commit\`,"
    echo "release build, by \`scripts/book-numbers.sh\` running \`vmscope compare${*:+ $*}\`."
} >"$out/compare-host.md"
{
    echo '```text'
    cat "$tmp/table.txt"
    echo '```'
} >"$out/compare-table.md"
cp "$tmp/compare.svg" "$out/compare.svg"
cp "$tmp/compare.json" "$out/compare.json"
echo "book-numbers: wrote $out/compare-host.md, compare-table.md, compare.svg, compare.json" >&2
