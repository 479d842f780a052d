// Parallel branches in the dashboard, in a real headless Chromium against the real
// `waystation` binary (started by run.sh, which sets WS_URL, WS_ADMIN, CHROMIUM, SHOTS).
// Production has 2 seconds to confirm and logistics an hour: production turns red while
// logistics stays green, and the board's card, the instance page's branch table and its
// graph (fork, join, each branch's current stage in its own colour) all say so.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { admin, base, browser, call, here, log, pageErrors, shot, signIn, story, until } from './harness.mjs';

await story('branches', async () => {
  log('a parallel workflow is uploaded and an instance forks into two branches');
  const definition = JSON.parse(readFileSync(join(here, 'fixtures', 'parallel-check.json'), 'utf8'));
  await call('PUT', '/v1/workflows/parallel-check', admin, definition);
  const ops = (await call('POST', '/v1/tokens', admin, { name: 'branch-ops', roles: ['operator'] })).token;
  const started = await call('POST', '/v1/workflows/parallel-check/instances', ops, { input: {} });
  const id = started.id;
  await until('production to breach', async () => {
    const inst = await call('GET', `/v1/instances/${id}`, ops);
    return (inst.branches || []).some((b) => b.branch === 'production' && b.sla === 'breached');
  });

  // Script errors only, as this test always did: its console errors are not collected.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await signIn(page, admin);

  log('the board card shows each running branch in its own SLA colour');
  await page.goto(`${base}/#/board?workflow=parallel-check`);
  const card = page.locator(`.card[data-key="${id}"]`).first();
  await card.waitFor();
  assert.equal(await card.getAttribute('data-sla'), 'breached', 'the instance is as late as its latest branch');
  assert.equal(await card.locator('.branch-chip[data-branch="production"]').getAttribute('data-sla'), 'breached');
  assert.equal(await card.locator('.branch-chip[data-branch="logistics"]').getAttribute('data-sla'), 'on_time');
  await shot(page, 'branches-board');

  log('the instance page lists the branches and the graph draws the fork, the join and both current stages');
  await page.goto(`${base}/#/instance/${encodeURIComponent(id)}`);
  const rows = page.locator('table.branch-table tr.branch-row');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 2);
  const production = page.locator('tr.branch-row[data-branch="production"]');
  assert.equal(await production.getAttribute('data-stage'), 'production_confirm');
  assert.match(await production.textContent(), /Breached/);
  assert.match(await page.locator('tr.branch-row[data-branch="logistics"]').textContent(), /On time/);
  const red = page.locator('svg.graph g.node.branch-current.st-breached[data-stage="production_confirm"]');
  const green = page.locator('svg.graph g.node.branch-current.st-on_time[data-stage="logistics_confirm"]');
  assert.equal(await red.count(), 1, 'production outlined red');
  assert.equal(await green.count(), 1, 'logistics outlined green');
  assert.equal(await page.locator('svg.graph path.edge-fork').count(), 2, 'one fork arrow per branch');
  assert.equal(await page.locator('svg.graph path.edge-join').count(), 1, 'the join leads on');
  log('step by step puts the breach on production, the timeline says which branch started');
  await page.locator('tr.breach[data-stage="production_confirm"]').waitFor();
  assert.equal(await page.locator('tr.breach[data-stage="logistics_confirm"]').count(), 0, 'logistics did not breach');
  assert.match(await page.locator('body').textContent(), /Branch production of confirm started/);
  await shot(page, 'branches-instance');

  log('once both confirmed, the branches are gone and the instance is in the next stage');
  await call('POST', `/v1/instances/${id}/events`, ops, { type: 'confirmed', stage: 'production_confirm' });
  const after = await call('POST', `/v1/instances/${id}/events`, ops, { type: 'confirmed' });
  assert.equal(after.stage, 'ship');
  await page.reload();
  await page.waitForSelector('.fact-line');
  await page.waitForFunction(() => /Ship/.test(document.querySelector('.fact-line').textContent));
  assert.equal(await page.locator('table.branch-table').count(), 0);

});
