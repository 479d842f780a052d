// What every browser test shares: the server run.sh started (WS_URL, WS_ADMIN), where
// screenshots go (SHOTS), API calls, waiting for a condition, one headless Chromium with
// the pages' script errors collected, signing in, and `story`, which runs a test's steps
// and, when one fails, says which, screenshots every open page and fails the process.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const base = process.env.WS_URL;
export const admin = process.env.WS_ADMIN;
export const shots = process.env.SHOTS || join(here, '..', '..', 'target', 'screenshots');
assert.ok(base && admin, 'run through tests/browser/run.sh (WS_URL and WS_ADMIN unset)');
mkdirSync(shots, { recursive: true });

let step = '';
/** Names the step now running: printed, and named again if the test fails in it. */
export const log = (s) => { step = s; console.log(`- ${s}`); };

/** `method path` with `token`, a JSON body when given; the parsed answer, or throws. */
export async function call(method, path, token, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** What `check` returns once it is truthy; throws naming `what` after `timeout` ms. */
export async function until(what, check, timeout = 20000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Root in a container cannot use Chromium's sandbox.
  chromiumSandbox: typeof process.getuid === 'function' && process.getuid() !== 0,
});

/** Script errors of every page, and console errors not matching the story's expected ones. */
export const pageErrors = [];
let expectedConsoleErrors = /status of 40[134]|status of 422/;

/** A page in a context of its own, its script errors collected into `pageErrors`. */
export async function newPage(width = 1280, height = 900) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on('pageerror', (e) => pageErrors.push(`${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !expectedConsoleErrors.test(m.text())) pageErrors.push(m.text()); });
  return page;
}

/** Signs `page` in with `token` through the dashboard's sign-in form. */
export async function signIn(page, token) {
  await page.goto(`${base}/`);
  await page.waitForSelector('#token');
  await page.fill('#token', token);
  await page.click('form.signin button[type=submit]');
  await page.waitForFunction(() => !location.hash.startsWith('#/signin'));
}

/** A full-page screenshot of `page` as SHOTS/<name>.png. */
export const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

/**
 * Runs `steps`, then checks that no page had a script error. On a failure: the step it
 * happened in, a screenshot of every open page (`failure-<name>-<n>.png`), the page errors,
 * and exit code 1. The browser is closed either way. `consoleErrors` are the console
 * errors the story expects (the dashboard logs the API's refusals it shows).
 */
export async function story(name, steps, { consoleErrors } = {}) {
  if (consoleErrors) expectedConsoleErrors = consoleErrors;
  try {
    await steps();
    assert.deepEqual(pageErrors, [], 'no script errors in the pages');
    console.log(`ok: ${name} browser test passed; screenshots in ${shots}`);
  } catch (e) {
    console.error(`FAILED at: ${step}\n${e.stack || e}`);
    let n = 0;
    for (const context of browser.contexts()) {
      for (const p of context.pages()) {
        n += 1;
        await p.screenshot({ path: join(shots, `failure-${name}-${n}.png`), fullPage: true }).catch(() => {});
        console.error(`failure-${name}-${n}.png: ${p.url()}`);
      }
    }
    if (pageErrors.length) console.error(`page errors:\n${pageErrors.join('\n')}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
