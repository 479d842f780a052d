// Sub-workflows in the dashboard, in a real headless Chromium against the real `waystation`
// binary (started by run.sh, which sets WS_URL, WS_ADMIN, CHROMIUM, SHOTS). A delay
// emergency opens an investigation as a child instance: the child's page links back to its
// parent, the parent's page lists the child and links to it, and once the investigation
// resolves the parent's table shows it completed while the parent recovers the order.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.WS_URL;
const admin = process.env.WS_ADMIN;
const shots = process.env.SHOTS || join(here, '..', '..', 'target', 'screenshots');
assert.ok(base && admin, 'run through tests/browser/run.sh (WS_URL and WS_ADMIN unset)');
mkdirSync(shots, { recursive: true });

async function call(method, path, body, token = admin) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const fixture = (name) => JSON.parse(readFileSync(join(here, 'fixtures', name), 'utf8'));
let step = '';
const log = (s) => { step = s; console.log(`- ${s}`); };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  chromiumSandbox: typeof process.getuid === 'function' && process.getuid() !== 0,
});
const pageErrors = [];

try {
  log('the investigation and the emergency that calls it are uploaded; an emergency starts');
  await call('PUT', '/v1/workflows/investigation-check', fixture('investigation-check.json'));
  await call('PUT', '/v1/workflows/emergency-check', fixture('emergency-check.json'));
  const ops = (await call('POST', '/v1/tokens', { name: 'family-ops', roles: ['operator'] })).token;
  const parent = (await call('POST', '/v1/workflows/emergency-check/instances', { input: { order_no: '202611-777' } }, ops)).id;
  const child = (await call('GET', `/v1/instances/${parent}`, undefined, ops)).children[0].id;

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${base}/`);
  await page.waitForSelector('#token');
  await page.fill('#token', admin);
  await page.click('form.signin button[type=submit]');
  await page.waitForFunction(() => !location.hash.startsWith('#/signin'));

  log('the child\'s page says which instance started it, and links there');
  await page.goto(`${base}/#/instance/${encodeURIComponent(child)}`);
  const back = page.locator(`p.parent-link[data-parent="${parent}"] a`);
  await back.waitFor();
  assert.match(await page.locator('p.parent-link').textContent(), /emergency-check/);
  assert.match(await page.locator('p.parent-link').textContent(), /investigate/);
  await page.screenshot({ path: join(shots, 'subworkflow-child.png'), fullPage: true });

  log('following the link opens the parent, which lists the child it waits for');
  await back.click();
  await page.waitForFunction((id) => location.hash === `#/instance/${encodeURIComponent(id)}`, parent);
  const row = page.locator(`tr.child-row[data-child="${child}"]`);
  await row.waitFor();
  assert.equal(await row.getAttribute('data-status'), 'running');
  assert.equal(await row.getAttribute('data-waiting'), 'true');
  assert.match(await row.textContent(), /investigation-check/);
  assert.match(await page.locator('body').textContent(), /started investigation-check as/);
  await page.screenshot({ path: join(shots, 'subworkflow-parent.png'), fullPage: true });

  log('once the investigation resolves, the parent shows it completed and moves on');
  await call('POST', `/v1/instances/${child}/events`, { type: 'resolved' }, ops);
  const end = Date.now() + 20000;
  for (;;) {
    const inst = await call('GET', `/v1/instances/${parent}`, undefined, ops);
    if (inst.stage === 'recover') break;
    if (Date.now() > end) throw new Error(`the parent never moved on: ${JSON.stringify(inst)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await page.reload();
  const done = page.locator(`tr.child-row[data-child="${child}"][data-status="completed"]`);
  await done.waitFor();
  assert.match(await done.textContent(), /resolved/);
  await row.locator('a').click();
  await page.waitForFunction((id) => location.hash === `#/instance/${encodeURIComponent(id)}`, child);
  await page.locator('p.parent-link').waitFor();

  assert.deepEqual(pageErrors, [], 'no script errors in the pages');
  console.log('ok: sub-workflows browser test passed');
} catch (e) {
  console.error(`FAILED at: ${step}\n${e.stack || e}`);
  for (const context of browser.contexts()) {
    for (const [n, p] of context.pages().entries()) {
      await p.screenshot({ path: join(shots, `failure-subworkflows-${n}.png`), fullPage: true }).catch(() => {});
    }
  }
  if (pageErrors.length) console.error(`page errors:\n${pageErrors.join('\n')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
