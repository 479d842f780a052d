#!/usr/bin/env bash
# Builds plugins/dist/order-priority.wasm with componentize-py (PyPI componentize-py 0.25).
# Only the component's own modules are staged, so tests and the Rust sources stay out of
# the bundle.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
plugins="$(dirname "$here")"
mkdir -p "$plugins/dist"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$here/app.py" "$here/priority.py" "$stage/"
cd "$stage"
componentize-py -d "$plugins/wit" -w scorer componentize app -p "$stage" -o "$plugins/dist/order-priority.wasm"
