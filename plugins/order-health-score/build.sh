#!/usr/bin/env bash
# Builds plugins/dist/order-health-score.wasm from C:
#   committed bindings/ (wit-bindgen c 0.63, checked against plugins/wit)
#   -> clang-14 --target=wasm32-wasi (Debian wasi-libc), a reactor core module
#   -> `jco new` (npm @bytecodealliance/jco, in plugins/js-toolchain), the component.
# The module imports no WASI function, so no preview1 adapter is needed. No cargo-installed
# tool is used: wit-bindgen only regenerates bindings/ (./regen-bindings.sh) when the
# contract changes, and jco bundles wasm-tools' `component new` / `print` compiled to wasm.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
plugins="$(dirname "$here")"
bindings="$here/bindings"
build="$here/build"
CC="${CC_WASM:-clang-14}"
JCO="${JCO:-$plugins/js-toolchain/node_modules/.bin/jco}"

if [ ! -x "$JCO" ]; then
    echo "error: jco not found at $JCO; run: bash plugins/install-toolchains.sh" >&2
    exit 1
fi

# --- the committed bindings must be the ones generated from the current WIT -------------
# bindings/SOURCES.sha256 records the sha256 of every plugins/wit/**/*.wit file and of the
# generated files, as written by regen-bindings.sh.
stamp="$bindings/SOURCES.sha256"
stale=()
if [ ! -f "$stamp" ]; then
    stale+=("order-health-score/bindings/SOURCES.sha256: missing")
else
    while read -r sum path; do
        case "$sum" in '' | '#'*) continue ;; esac
        if [ ! -f "$plugins/$path" ]; then
            stale+=("$path: recorded, but no longer exists")
        elif [ "$(sha256sum <"$plugins/$path" | cut -d' ' -f1)" != "$sum" ]; then
            case "$path" in
                wit/*) stale+=("$path: changed since the bindings were generated") ;;
                *) stale+=("$path: differs from what wit-bindgen generated (edited by hand?)") ;;
            esac
        fi
    done <"$stamp"
    while read -r wit; do
        grep -qE "^[0-9a-f]{64}  $wit\$" "$stamp" || stale+=("$wit: new since the bindings were generated")
    done < <(cd "$plugins" && find wit -type f -name '*.wit' | LC_ALL=C sort)
fi
if [ ${#stale[@]} -gt 0 ]; then
    echo "error: the committed C bindings in plugins/order-health-score/bindings/ do not match the WIT" >&2
    echo "       contract they must be generated from:" >&2
    printf '         %s\n' "${stale[@]}" >&2
    echo "       Regenerate them with wit-bindgen 0.63 and commit bindings/ with the WIT change:" >&2
    echo "         INSTALL_WIT_BINDGEN=1 bash plugins/install-toolchains.sh   # once: cargo install, ~6 min" >&2
    echo "         bash plugins/order-health-score/regen-bindings.sh" >&2
    exit 1
fi

# Where wit-bindgen 0.63 happens to be installed, also regenerate the bindings into a
# temporary directory and compare them byte for byte (a few milliseconds).
if PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" wit-bindgen --version 2>/dev/null | grep -q '^wit-bindgen-cli 0\.63\.'; then
    "$here/regen-bindings.sh" --check
fi

rm -rf "$build"
mkdir -p "$build" "$plugins/dist"

"$CC" --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor \
    -O2 -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Wno-unused-parameter \
    -I "$bindings" -I "$here/src" \
    -fuse-ld=lld -Wl,--strip-all \
    -o "$build/order-health-score.core.wasm" \
    "$here/src/plugin.c" "$here/src/health.c" "$here/src/json.c" "$here/src/fmt.c" \
    "$bindings/scorer.c" "$bindings/scorer_component_type.o"

# The module must import nothing but the world's `log`: no WASI (wasi-libc's printf family
# would pull in fd_write & co., hence src/fmt.c), so no preview1 adapter is needed and the
# host can run the component with no WASI linked at all.
wat="$("$JCO" print "$build/order-health-score.core.wasm")"
imports="$(grep '(import ' <<<"$wat" || true)"
if grep -v '(import "\$root" "log"' <<<"$imports" | grep -q .; then
    echo "error: the core module has imports besides log:" >&2
    echo "$imports" >&2
    exit 1
fi

# `jco new` is wit-component's ComponentEncoder (as in `wasm-tools component new`), with
# validation of the result on: an invalid component fails here.
"$JCO" new "$build/order-health-score.core.wasm" -o "$plugins/dist/order-health-score.wasm"
