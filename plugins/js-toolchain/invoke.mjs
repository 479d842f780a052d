// Runs a built plugin component once, in Node, for tests and debugging:
//
//   node plugins/js-toolchain/invoke.mjs <component.wasm> [input.json | -]
//
// The component (C, Python or JavaScript alike) is transpiled to JavaScript + core wasm
// with jco, then its `score` or `render` export is called with the input file's text (or
// stdin). Prints {"ok": ...} or {"err": "..."} as JSON on stdout, exit code 0 / 1; the
// plugin's `log` calls go to stderr. This is a test harness, not the engine's sandbox:
// WASI imports (which componentize-py components always have) are served by jco's
// preview2-shim; the Waystation host grants them nothing.
import { spawnSync } from 'node:child_process';

// Node 20's V8 needs a flag for extended-const, which componentize-py's core modules use;
// from Node 21 it is on by default. Re-run this script with the flag when needed.
const FLAG = '--experimental-wasm-extended-const';
if (Number(process.versions.node.split('.')[0]) < 21 && !process.execArgv.includes(FLAG)) {
  const r = spawnSync(process.execPath, [FLAG, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
import { transpile } from '@bytecodealliance/jco';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [componentPath, inputPath = '-'] = process.argv.slice(2);
if (!componentPath) {
  console.error('usage: node invoke.mjs <component.wasm> [input.json | -]');
  process.exit(2);
}
const readInput = async () => {
  if (inputPath !== '-') return readFile(inputPath, 'utf8');
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
};

const here = dirname(fileURLToPath(import.meta.url));
// Inside js-toolchain so that the generated imports of @bytecodealliance/preview2-shim resolve.
const outDir = join(here, '.run', basename(componentPath, '.wasm'));
await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });

const { files, exports } = await transpile(await readFile(resolve(componentPath)), {
  name: 'plugin',
  map: { log: './log.js' },
  quiet: true,
});
for (const [name, bytes] of Object.entries(files)) {
  await mkdir(dirname(join(outDir, name)), { recursive: true });
  await writeFile(join(outDir, name), bytes);
}
await writeFile(
  join(outDir, 'log.js'),
  'export default function log(level, message) { process.stderr.write(`[plugin ${level}] ${message}\\n`); }\n',
);

const plugin = await import(pathToFileURL(join(outDir, 'plugin.js')).href);
const fn = ['score', 'render'].find((f) => exports.some(([name]) => name === f));
if (!fn) {
  console.error(`the component exports neither score nor render: ${JSON.stringify(exports)}`);
  process.exit(2);
}
const input = await readInput();
const started = process.hrtime.bigint();
let out;
let code = 0;
try {
  out = { ok: plugin[fn](input) };
} catch (e) {
  if (e && 'payload' in e) {
    out = { err: e.payload };
    code = 1;
  } else {
    console.error(`trap or host error: ${e && e.stack ? e.stack : e}`);
    process.exit(3);
  }
}
const ms = Number(process.hrtime.bigint() - started) / 1e6;
console.log(JSON.stringify(out, null, 2));
console.error(`${fn}() returned in ${ms.toFixed(2)} ms`);
process.exit(code);
