#!/usr/bin/env bash
# Compiles the scoring logic for the host and runs the unit tests (no wasm involved).
# Uses AddressSanitizer + UBSan when the host compiler supports them.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
CC="${CC:-cc}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
flags=(-std=c11 -D_DEFAULT_SOURCE -O1 -g -Wall -Wextra -Werror)
srcs=("$here/test/test_health.c" "$here/src/health.c" "$here/src/json.c" "$here/src/fmt.c")
if ! "$CC" "${flags[@]}" -fsanitize=address,undefined -o "$out/test_health" "${srcs[@]}" -lm 2>/dev/null; then
    echo "(no sanitizers with $CC)"
    "$CC" "${flags[@]}" -o "$out/test_health" "${srcs[@]}" -lm
fi
"$out/test_health"
