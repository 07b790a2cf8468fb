#!/usr/bin/env bash
# Fetches what `vmscope linux` boots by default: Debian 12's cloud kernel and busybox-static,
# pinned, from the Debian archive (apt-get download: no root needed, nothing installed), and
# extracts them into a cache outside the repository. Safe to run again: it skips what is there.
# Prints the directory. VMSCOPE_LINUX_ASSETS overrides where it goes.
set -euo pipefail

KERNEL_RELEASE=6.1.0-57-cloud-amd64
KERNEL_PKG="linux-image-${KERNEL_RELEASE}=6.1.192-3"
BUSYBOX_PKG="busybox-static=1:1.35.0-4+deb12u1+b1"
dir="${VMSCOPE_LINUX_ASSETS:-${HOME:-/tmp}/.cache/vmscope/linux/${KERNEL_RELEASE}}"

say() { printf 'linux-assets: %s\n' "$*" >&2; }

if [ -f "$dir/boot/vmlinuz-${KERNEL_RELEASE}" ] && [ -x "$dir/bin/busybox" ]; then
    echo "$dir"
    exit 0
fi
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
    say "needs apt-get and dpkg-deb (Debian) to fetch the kernel; pass --kernel/--initrd instead"
    exit 1
}
mkdir -p "$dir/debs"
(
    cd "$dir/debs"
    # apt's sandbox user cannot write into a root-owned cache dir; that is only a warning.
    apt-get download -q "$KERNEL_PKG" "$BUSYBOX_PKG" 2>&1 | grep -v "unsandboxed" >&2 || true
)
for deb in "$dir"/debs/*.deb; do
    [ -e "$deb" ] || { say "could not download $KERNEL_PKG and $BUSYBOX_PKG"; exit 1; }
    dpkg-deb -x "$deb" "$dir"
done
[ -f "$dir/boot/vmlinuz-${KERNEL_RELEASE}" ] || { say "the kernel package has no vmlinuz-${KERNEL_RELEASE}"; exit 1; }
rm -rf "$dir/debs"
say "Debian's kernel ${KERNEL_RELEASE} and busybox are in $dir"
echo "$dir"
