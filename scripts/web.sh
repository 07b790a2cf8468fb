#!/usr/bin/env bash
# Builds the web demo (the gui crate's app for wasm32, bound by wasm-bindgen) and serves it locally.
# Teaches nothing itself; see web-demo/ and the book's "vmscope in a browser" chapter.
#
#   scripts/web.sh build                      the site into web-demo/dist/
#   scripts/web.sh serve [--port N] [--no-build]
#                                             build, then serve it on 127.0.0.1:N (default 8080;
#                                             0 = any free port) and print the URL
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'web.sh: %s\n' "$*" >&2; }

DIST=web-demo/dist
TARGET_DIR=${CARGO_TARGET_DIR:-target}
WASM="$TARGET_DIR/wasm32-unknown-unknown/web/web_demo.wasm"

build() {
    # wasm-bindgen's CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock:
    # setup.sh installs that one.
    want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
    have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
    if [ "$have" != "$want" ]; then
        say "wasm-bindgen $want is needed (found: ${have:-none}); run scripts/setup.sh"
        exit 1
    fi
    say "cargo build -p web-demo (wasm32-unknown-unknown, profile web)"
    cargo build -q -p web-demo --lib --target wasm32-unknown-unknown --profile web
    rm -rf "$DIST.tmp"
    mkdir -p "$DIST.tmp"
    wasm-bindgen --target web --no-typescript --out-dir "$DIST.tmp" --out-name vmscope "$WASM"
    cp web-demo/index.html "$DIST.tmp/"
    rm -rf "$DIST"
    mv "$DIST.tmp" "$DIST"
    wasm_bytes=$(wc -c <"$DIST/vmscope_bg.wasm")
    gz_bytes=$(gzip -9 -c "$DIST/vmscope_bg.wasm" | wc -c)
    say "built $DIST/ (vmscope_bg.wasm: $((wasm_bytes / 1024)) KiB, $((gz_bytes / 1024)) KiB gzipped)"
}

serve() {
    port=8080
    do_build=1
    while [ $# -gt 0 ]; do
        case "$1" in
        --port) port=$2; shift 2 ;;
        --no-build) do_build=0; shift ;;
        *) say "unknown option $1"; exit 2 ;;
        esac
    done
    if [ "$do_build" = 1 ]; then build; fi
    if [ ! -f "$DIST/index.html" ]; then
        say "$DIST/index.html is missing: run scripts/web.sh build"
        exit 1
    fi
    # Python's standard library server, told the MIME type browsers want for wasm streaming.
    exec python3 - "$DIST" "$port" <<'PY'
import functools, http.server, sys
dist, port = sys.argv[1], int(sys.argv[2])
class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript"}
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                         functools.partial(Handler, directory=dist))
print(f"vmscope web demo: http://127.0.0.1:{server.server_address[1]}/", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
PY
}

case "${1:-}" in
build) build ;;
serve) shift; serve "$@" ;;
*) say "usage: scripts/web.sh build | serve [--port N] [--no-build]"; exit 2 ;;
esac
