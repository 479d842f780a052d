#!/usr/bin/env bash
# Installs the toolchains that build Waystation's example plugins (C, Python, JavaScript).
# Idempotent: every step checks first and skips work that is already done, so a warm CI
# machine gets through it in seconds. Run as `bash plugins/install-toolchains.sh`.
#
#   C           Debian clang-14, lld-14, wasi-libc, libclang-rt-14-dev-wasm32; the C bindings
#               are committed (order-health-score/bindings/) and the component is made with
#               jco (below), so no cargo-installed tool is needed to build
#   Python      PyPI componentize-py 0.25.*
#   JavaScript  npm @bytecodealliance/componentize-js 0.23.0 (+ its peer preview2-shim 0.25.0)
#               and @bytecodealliance/jco 1.35.0, pinned in plugins/js-toolchain/package-lock.json
#               (npm install --no-save); jco also serves the C build (`jco new`, `jco print`)
#               and build-all.sh's checks (`jco wit`)
#
# Environment:
#   SKIP_APT=1              do not touch apt (e.g. the packages are baked into the CI image)
#   SKIP_PY=1               do not pip-install componentize-py
#   SKIP_JS=1               do not npm-install the JavaScript toolchain (the C build needs it too)
#   INSTALL_WIT_BINDGEN=1   also `cargo install --locked wit-bindgen-cli@~0.63` (~6 min on 2
#                           cores), needed only by order-health-score/regen-bindings.sh after a
#                           change to plugins/wit; skipped when it is on PATH at that version
set -euo pipefail
cd "$(dirname "$0")"

WIT_BINDGEN_VERSION=0.63      # opt-in only; matched as a prefix: any 0.63.x is accepted
                              # (keep in step with order-health-score/regen-bindings.sh)
COMPONENTIZE_PY_VERSION=0.25  # any 0.25.*
APT_PACKAGES=(clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi

say() { printf '== %s\n' "$*"; }
start=$(date +%s)

# --- C: Debian packages -------------------------------------------------------------------
if [ "${SKIP_APT:-0}" != 1 ]; then
    missing=()
    for p in "${APT_PACKAGES[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ] && ! command -v apt-get >/dev/null 2>&1; then
        echo "error: no apt-get here; install clang-14, lld-14, wasi-libc and the wasm32 compiler-rt" >&2
        echo "       builtins yourself, then run with SKIP_APT=1" >&2
        exit 1
    elif [ ${#missing[@]} -gt 0 ]; then
        say "apt: installing ${missing[*]}"
        $SUDO apt-get update
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
    else
        say "apt: ${APT_PACKAGES[*]} already installed"
    fi
fi

# --- opt-in: wit-bindgen from crates.io, only to regenerate the C bindings ----------------
# `wit-bindgen --version` prints e.g. "wit-bindgen-cli 0.63.0".
if [ "${INSTALL_WIT_BINDGEN:-0}" = 1 ]; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    have="$(wit-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
    if [[ "$have" == "$WIT_BINDGEN_VERSION".* ]]; then
        say "wit-bindgen: $have already on PATH"
    else
        say "cargo install wit-bindgen-cli@$WIT_BINDGEN_VERSION (several minutes)"
        cargo install --locked "wit-bindgen-cli@~$WIT_BINDGEN_VERSION"
    fi
fi

# --- Python: componentize-py ---------------------------------------------------------------
if [ "${SKIP_PY:-0}" != 1 ]; then
    PY=${PYTHON:-python3}
    installed=$("$PY" -m pip show componentize-py 2>/dev/null | awk '/^Version:/{print $2}' || true)
    if [[ "$installed" == "$COMPONENTIZE_PY_VERSION".* ]] && command -v componentize-py >/dev/null 2>&1; then
        say "componentize-py: $installed already installed"
    else
        say "pip install componentize-py==$COMPONENTIZE_PY_VERSION.*"
        "$PY" -m pip install --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION.*"
        # pyenv needs its shims refreshed before a new console script is on PATH.
        if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
    fi
fi

# --- JavaScript: componentize-js + jco -----------------------------------------------------
# `npm install` (not `npm ci`): the lock omits a few platform-only optional packages
# (e.g. jco-node-fs-linux-arm64-musl) that a registry mirror may not carry at the locked
# version, and `npm ci` refuses such a lock as "out of sync". `npm install --no-save`
# still installs exactly the locked versions and never rewrites package-lock.json.
if [ "${SKIP_JS:-0}" != 1 ]; then
    (
        cd js-toolchain
        if node -e '
            const want = require("./package.json").devDependencies;
            for (const [name, version] of Object.entries(want)) {
                const have = require("./node_modules/" + name + "/package.json").version;
                if (have !== version) process.exit(1);
            }' 2>/dev/null; then
            say "componentize-js + jco: already installed in plugins/js-toolchain/node_modules"
        else
            say "npm install in plugins/js-toolchain"
            npm install --no-audit --no-fund --no-save
        fi
    )
fi

say "toolchains ready in $(($(date +%s) - start)) s"
