// Builds a JavaScript plugin into a WebAssembly component with componentize-js.
//
//   node plugins/js-toolchain/componentize.mjs <source.js> <world> <out.wasm>
//
// The `jco componentize` CLI fails on these machines (a wasi:http version check that reads
// a path), so the library is called directly. All optional WASI features are disabled, so
// the component imports only what the Waystation world declares (the `log` function).
// Caveat from componentize-js: such a "pure" component traps instead of printing an
// uncaught exception, so the plugins catch everything and return `err` themselves.
import { componentize } from '@bytecodealliance/componentize-js';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const [source, world, out] = process.argv.slice(2);
if (!source || !world || !out) {
  console.error('usage: node componentize.mjs <source.js> <world> <out.wasm>');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const witPath = resolve(here, '..', 'wit');

const started = Date.now();
const { component } = await componentize({
  sourcePath: resolve(source),
  witPath,
  worldName: world,
  disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
});
await mkdir(dirname(resolve(out)), { recursive: true });
await writeFile(resolve(out), component);
console.log(`${out}: ${(component.byteLength / 1e6).toFixed(1)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
