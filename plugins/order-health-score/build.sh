#!/usr/bin/env bash
# Builds plugins/dist/order-health-score.wasm from C:
#   wit-bindgen c (crates.io wit-bindgen-cli 0.63) -> clang-14 --target=wasm32-wasi
#   (Debian wasi-libc) -> wasm-tools component new (crates.io wasm-tools 1.263).
# The module imports no WASI function, so no preview1 adapter is needed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
plugins="$(dirname "$here")"
build="$here/build"
CC="${CC_WASM:-clang-14}"
rm -rf "$build"
mkdir -p "$build" "$plugins/dist"

wit-bindgen c "$plugins/wit" --world scorer --out-dir "$build" >/dev/null 2>&1

"$CC" --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor \
    -O2 -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Wno-unused-parameter \
    -I "$build" -I "$here/src" \
    -fuse-ld=lld -Wl,--strip-all \
    -o "$build/order-health-score.core.wasm" \
    "$here/src/plugin.c" "$here/src/health.c" "$here/src/json.c" "$here/src/fmt.c" \
    "$build/scorer.c" "$build/scorer_component_type.o"

# The module must import nothing but the world's `log`: no WASI (wasi-libc's printf family
# would pull in fd_write & co., hence src/fmt.c), so no preview1 adapter is needed and the
# host can run the component with no WASI linked at all.
imports="$(wasm-tools print "$build/order-health-score.core.wasm" | grep '(import ' || true)"
if grep -v '(import "\$root" "log"' <<<"$imports" | grep -q .; then
    echo "error: the core module has imports besides log:" >&2
    echo "$imports" >&2
    exit 1
fi

wasm-tools component new "$build/order-health-score.core.wasm" -o "$plugins/dist/order-health-score.wasm"
wasm-tools validate "$plugins/dist/order-health-score.wasm"
