#!/usr/bin/env bash
# Builds plugins/dist/dispute-classifier.wasm with componentize-js (npm, installed in
# plugins/js-toolchain by ../install-toolchains.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
plugins="$(dirname "$here")"
node "$plugins/js-toolchain/componentize.mjs" "$here/src/plugin.js" scorer "$plugins/dist/dispute-classifier.wasm"
