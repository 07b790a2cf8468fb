#!/usr/bin/env bash
# Installs what vmscope needs on a fresh Debian machine; safe to run again (it skips what is there).
# Needs: rustup/cargo (the Rust toolchain), apt-get (as root or via sudo) for Debian packages.
set -euo pipefail

say() { printf 'setup: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

need_pkgs=()
command -v as >/dev/null || need_pkgs+=(binutils)
command -v gcc >/dev/null || need_pkgs+=(gcc)
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
# Bochs 2.7 for `vmscope compare --engines bochs`: the emulator, its BIOS and VGA BIOS, and the
# curses display (`display_library: term`), the one Debian ships that needs no X server.
for p in bochs bochsbios vgabios bochs-term; do
    dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
# The GUI's real-window test: an X server without a screen, and OpenGL through Mesa's software
# renderer plus the X11 libraries winit loads at run time.
command -v Xvfb >/dev/null || need_pkgs+=(xvfb)
for p in libgl1 libegl1 libglx-mesa0 libgl1-mesa-dri libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6; do
    dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
# The initramfs test's second opinion on vmscope's newc archives: GNU cpio.
command -v cpio >/dev/null || need_pkgs+=(cpio)
# The ACPI tests' second opinion on the DSDT's AML: Debian's iasl (acpica-tools).
command -v iasl >/dev/null || need_pkgs+=(acpica-tools)
# The gdb stub's test (tests/gdb.rs): Debian's gdb, driven in batch mode against `vmscope run --gdb`.
command -v gdb >/dev/null || need_pkgs+=(gdb)
# The pcap writer's test (devices/tests/pcap_tcpdump.rs): Debian's tcpdump reads the captures.
command -v tcpdump >/dev/null || need_pkgs+=(tcpdump)
# The tap backend's test (host-backends/tests/tap.rs): `ip netns`, `ip link`, `ip addr` and ping
# inside a throwaway network namespace (iproute2), and ping (iputils-ping) to talk to the tap.
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v ping >/dev/null || need_pkgs+=(iputils-ping)
# scripts/web.sh serve: Python's http.server.
command -v python3 >/dev/null || need_pkgs+=(python3)
# The web demo's browser test and benchmark (tests/web_demo.rs, benches/web.rs): headless
# Chromium driven over WebDriver by chromedriver (/usr/bin/chromium, /usr/bin/chromedriver).
for p in chromium chromium-driver; do
    dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing Debian packages: ${need_pkgs[*]}"
    $SUDO apt-get update -qq || say "apt-get update failed; trying to install anyway"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if command -v rustup >/dev/null; then
    installed=$(rustup target list --installed)
    for t in wasm32-unknown-unknown; do
        if ! grep -qx "$t" <<<"$installed"; then
            say "adding Rust target $t"
            rustup target add "$t"
        fi
    done
    components=$(rustup component list --installed)
    for c in clippy rustfmt; do
        if ! grep -q "^$c" <<<"$components"; then
            say "adding Rust component $c"
            rustup component add "$c"
        fi
    done
else
    say "rustup not found: install Rust from https://rustup.rs first"
    exit 1
fi
# The book (book/, mdbook): one pinned version, built from source by cargo (≈2 minutes once).
MDBOOK_VERSION=0.4.52
if [ "$(mdbook --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]; then
    say "installing mdbook $MDBOOK_VERSION (cargo install --locked)"
    cargo install mdbook --version "$MDBOOK_VERSION" --locked
fi
# The web demo (scripts/web.sh): wasm-bindgen's CLI at exactly the version of the wasm-bindgen
# crate in Cargo.lock (the two must match). Not --locked: its own lock file names a webpki-roots
# release the registry no longer serves; the version of the tool itself is still pinned.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' \
    "$(dirname "$0")/../Cargo.lock")
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (cargo install, ≈3 minutes once)"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
# Coverage-guided fuzzing (fuzz/, `cargo +nightly fuzz run TARGET`): libFuzzer needs a nightly
# toolchain (its sanitizer flags); cargo-fuzz pinned, built from source once (≈1 minute).
CARGO_FUZZ_VERSION=0.13.1
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "installing the nightly toolchain for cargo fuzz (rustup, minimal profile)"
    rustup toolchain install nightly --profile minimal
fi
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install --locked)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
# `vmscope linux`'s default guest: Debian's cloud kernel and busybox-static, pinned, extracted
# into a cache outside the repository (scripts/linux-assets.sh; a failed download is reported,
# and the Linux tests say why they skip).
"$(dirname "$0")/linux-assets.sh" >/dev/null || say "could not fetch the Linux guest's Debian packages"
say "ready"
