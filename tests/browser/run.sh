#!/usr/bin/env bash
# The dashboard in a real headless Chromium: Debian's `chromium` driven by playwright-core.
# Installs what is missing (apt chromium, npm playwright-core into tests/browser), builds
# target/debug/waystation only if it is missing, starts it on a free port over a temporary
# data directory, and runs dashboard.test.mjs, then actions.test.mjs (issue 16: acting
# from the dashboard), then branches.test.mjs (issue 18: parallel branches), then
# subworkflows.test.mjs (issue 18: the parent link) on the same
# server. Screenshots land in target/screenshots/. ONLY=branches.test.mjs runs one.
#
#   bash tests/browser/run.sh
#   UPDATE_DOCS=1 bash tests/browser/run.sh   # also refresh docs/dashboard-board.png
#   ONLY_BRANCHES=1 bash tests/browser/run.sh  # only branches.test.mjs (parallel stages)
#
# Environment: CHROMIUM (browser binary), WAYSTATION_BIN (server binary), SHOTS (directory).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. A browser: Debian's chromium package.
chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$chromium" ]; then
  echo "== installing chromium (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
  chromium="$(command -v chromium)"
fi

# 2. Node (18 or later) and the pinned playwright-core.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "== installing nodejs and npm (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
wanted="$(node -p "require('$here/package.json').dependencies['playwright-core']")"
have="$(node -p "try { require('$here/node_modules/playwright-core/package.json').version } catch { '' }")"
if [ "$have" != "$wanted" ]; then
  echo "== npm install playwright-core@$wanted"
  (cd "$here" && npm install --no-save --no-audit --no-fund --loglevel=error)
fi

# 3. The server binary, built only if missing.
target="${CARGO_TARGET_DIR:-$root/target}"
bin="${WAYSTATION_BIN:-$target/debug/waystation}"
if [ ! -x "$bin" ]; then
  echo "== cargo build -p waystation-server"
  (cd "$root" && cargo build -p waystation-server)
fi

# 4. The server: a free port, a fresh data directory, a known admin token.
port="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
data="$(mktemp -d)"
log="$data/server.log"
token="ws_browser_$(node -p "require('crypto').randomBytes(12).toString('hex')")"
WAYSTATION_BOOTSTRAP_TOKEN="$token" NO_COLOR=1 RUST_LOG=info \
  "$bin" serve --listen "127.0.0.1:$port" --data "$data/store" >"$log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
url="http://127.0.0.1:$port"
node -e "
  const end = Date.now() + 30000;
  (async function wait() {
    try { if ((await fetch('$url/readyz')).ok) return; } catch {}
    if (Date.now() > end) { console.error('the server did not become ready'); process.exit(1); }
    setTimeout(wait, 100);
  })();
" || { cat "$log"; exit 1; }

# 5. The test.
shots="${SHOTS:-$target/screenshots}"
mkdir -p "$shots"
rm -f "$shots"/failure-*.png
echo "== dashboard browser test ($("$chromium" --version 2>/dev/null || echo chromium), server $url)"
for test in ${ONLY:-dashboard.test.mjs actions.test.mjs branches.test.mjs subworkflows.test.mjs}; do
  echo "== $test"
  if ! WS_URL="$url" WS_ADMIN="$token" CHROMIUM="$chromium" SHOTS="$shots" node "$here/$test"; then
    echo "== server log (last 40 lines)"
    tail -n 40 "$log"
    exit 1
  fi
done
if [ "${UPDATE_DOCS:-}" = 1 ]; then
  mkdir -p "$root/docs"
  cp "$shots/board.png" "$root/docs/dashboard-board.png"
  echo "== docs/dashboard-board.png updated"
fi
