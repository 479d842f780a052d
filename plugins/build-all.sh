#!/usr/bin/env bash
# Builds every example plugin into plugins/dist/<name>.wasm, after running each plugin's
# unit tests, and checks with `jco wit` that each component implements its world. Run
# `bash plugins/install-toolchains.sh` first. Run as `bash plugins/build-all.sh`.
# Needs no cargo-installed tool: the C plugin builds from its committed, hash-checked
# bindings (order-health-score/bindings/, see regen-bindings.sh there) and jco.
#
#   --no-test    skip the unit tests
#   --run        also call each built component once on a sample input through jco
#                (node plugins/js-toolchain/invoke.mjs), as a smoke test
set -euo pipefail
cd "$(dirname "$0")"
plugins="$(pwd)"
JCO="$plugins/js-toolchain/node_modules/.bin/jco"

test=1
run=0
for arg in "$@"; do
    case "$arg" in
        --no-test) test=0 ;;
        --run) run=1 ;;
        *) echo "unknown option $arg" >&2; exit 2 ;;
    esac
done

# name : world : language
PLUGINS=(
    "order-health-score:scorer:C"
    "order-priority:scorer:Python"
    "dispute-classifier:scorer:JavaScript"
    "tiered-notifier:notifier:JavaScript"
)

say() { printf '== %s\n' "$*"; }
secs() { echo $(($(date +%s) - $1)); }
start=$(date +%s)

if [ "$test" = 1 ]; then
    t=$(date +%s)
    say "unit tests"
    (cd order-health-score && ./test/run.sh)
    (cd order-priority && python3 -m unittest -q 2>&1 | tail -1 && rm -rf __pycache__)
    (cd dispute-classifier && node --test --test-reporter=dot)
    (cd tiered-notifier && node --test --test-reporter=dot)
    say "unit tests passed in $(secs "$t") s"
fi

if [ ! -x "$JCO" ]; then
    echo "error: jco not found at $JCO; run: bash plugins/install-toolchains.sh" >&2
    exit 1
fi

mkdir -p dist
for entry in "${PLUGINS[@]}"; do
    IFS=: read -r name world lang <<<"$entry"
    t=$(date +%s)
    say "build $name ($lang, world $world)"
    "./$name/build.sh"
    # The component must export exactly its world's function (`jco wit` is
    # `wasm-tools component wit`, compiled to wasm; it prints the component's root world).
    wit="$("$JCO" wit "dist/$name.wasm")"
    case "$world" in
        scorer) want='export score: func(input: string) -> result<assessment, string>;' ;;
        notifier) want='export render: func(input: string) -> result<list<message>, string>;' ;;
    esac
    if ! grep -qF "$want" <<<"$wit" || ! grep -qF 'import log: func(level: level, message: string);' <<<"$wit"; then
        echo "error: dist/$name.wasm does not implement waystation:plugin/$world:" >&2
        echo "$wit" >&2
        exit 1
    fi
    say "$name: $(du -h "dist/$name.wasm" | cut -f1) in $(secs "$t") s"
done

if [ "$run" = 1 ]; then
    say "smoke run of each component (jco transpile + Node)"
    now="2024-05-08T10:00:00Z"
    envelope() { # <workflow> <sample> <stage>
        node -e '
            const [wf, sample, stage, now] = process.argv.slice(1);
            const input = JSON.parse(require("fs").readFileSync(`../workflows/${wf}.samples/${sample}.json`, "utf8"));
            process.stdout.write(JSON.stringify({ input, vars: {}, instance: { id: "smoke", workflow: wf, version: 1, stage, tags: [] }, now }));
        ' "$1" "$2" "$3" "$now"
    }
    if [ -d ../workflows ]; then
        envelope delay-early-warning late-regular score | node js-toolchain/invoke.mjs dist/order-health-score.wasm
        envelope order-quick-response vip-high prioritise | node js-toolchain/invoke.mjs dist/order-priority.wasm
        envelope dispute-handling quality-zh classify | node js-toolchain/invoke.mjs dist/dispute-classifier.wasm
        envelope delay-early-warning late-regular emergency | node js-toolchain/invoke.mjs dist/tiered-notifier.wasm
    else
        echo "(no ../workflows samples: skipped)"
    fi
fi

say "all plugins built in $(secs "$start") s"
ls -l dist/*.wasm
