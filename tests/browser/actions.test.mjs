// Acting from the dashboard, in a real headless Chromium against the real binary (issue
// 16). Run through run.sh after dashboard.test.mjs, on the same server.
//
// The story: an operator starts an order from the form generated from the workflow's
// input_schema (a refused field first, shown at the field; then a double click that starts
// one order), sends the event the waiting stage accepts (one refused with the API's reason,
// one accepted), cancels another order with a reason, retries one that failed, watches a
// card turn red live without a reload, and comes Back to the board with its filters and
// the card they opened. Screenshots of each page go to SHOTS.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { admin, base, call, here, log, newPage, shot, signIn, story, until } from './harness.mjs';

const definition = JSON.parse(readFileSync(join(here, 'fixtures', 'order-desk.json'), 'utf8'));
const RED = 'rgb(220, 38, 38)';

const orders = async (token, key) => (await call('GET', `/v1/instances?workflow=order-desk&limit=100`, token)).items.filter((i) => i.key === key);

await story('actions', async () => {
  await call('PUT', '/v1/workflows/order-desk', admin, definition);
  const opal = (await call('POST', '/v1/tokens', admin, { name: 'opal', roles: ['operator'] })).token;
  const page = await newPage();
  await signIn(page, opal);

  // ---------------------------------------------------------------- start
  log('start: the form is generated from the input_schema, with types, enums, formats and descriptions');
  await page.goto(`${base}/#/board?workflow=order-desk`);
  await page.click('a.start-link');
  await page.waitForSelector('form.start-form');
  assert.match(page.url(), /#\/start\/order-desk$/);
  const field = (name) => page.locator(`.form-field[data-field="${name}"]`);
  assert.match(await field('order_no').textContent(), /\(required\).*ORD- and digits/s);
  assert.deepEqual(await field('tier').locator('option').allTextContents(), ['Choose…', 'regular', 'vip']);
  assert.equal(await field('promised').locator('input').getAttribute('type'), 'date');
  assert.equal(await field('email').locator('input').getAttribute('type'), 'email');
  assert.equal(await field('ready_after').locator('input').getAttribute('type'), 'datetime-local');
  assert.doesNotMatch(await field('email').textContent(), /required/);

  log('start: a refused field is shown at the field, with the API\'s words, and nothing starts');
  await field('order_no').locator('input').fill('1001');
  await field('amount').locator('input').fill('250');
  await field('tier').locator('select').selectOption({ label: 'vip' });
  await field('promised').locator('input').fill('2026-12-24');
  await page.click('form.start-form button[type=submit]');
  const orderError = field('order_no').locator('.field-error');
  await orderError.waitFor();
  assert.match(await orderError.textContent(), /ORD-/);
  assert.equal(await field('amount').locator('.field-error').isVisible(), false, 'only the refused field is marked');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'order_no', 'focus goes to the refused field');
  assert.equal((await call('GET', '/v1/instances?workflow=order-desk', opal)).items.length, 0);
  await shot(page, 'start-refused');

  log('start: corrected, a double click starts exactly one order and opens it');
  await field('order_no').locator('input').fill('ORD-1001');
  await page.dblclick('form.start-form button[type=submit]');
  await page.waitForFunction(() => location.hash.startsWith('#/instance/'));
  const first = await orders(opal, 'ORD-1001');
  assert.equal(first.length, 1, 'one order for a double click');
  assert.equal(first[0].stage, 'wait_reply');
  assert.equal(first[0].fields.promised, '2026-12-24');

  // ---------------------------------------------------------------- events
  log('events: the waiting stage lists the events it accepts');
  await page.waitForSelector('.event-form[data-event="replied"]');
  assert.deepEqual(await page.locator('.event-forms .event-form').evaluateAll((els) => els.map((e) => e.dataset.event)), ['date_changed', 'replied']);

  log('events: a refused event shows the 409 reason and changes nothing');
  const dateForm = page.locator('.event-form[data-event="date_changed"]');
  await dateForm.locator('textarea').fill('{"reason": "customer asked"}');
  await dateForm.locator('button').click();
  const refusal = dateForm.locator('.problem-409');
  await refusal.waitFor();
  assert.match(await refusal.textContent(), /no branch's condition holds/);
  await shot(page, 'event-refused');

  log('events: an accepted event is recorded with who sent it');
  await dateForm.locator('textarea').fill('{"date": "2026-12-27"}');
  await dateForm.locator('button').click();
  await page.waitForSelector('.timeline .ev-event_received');
  assert.match(await page.locator('.timeline .ev-event_received .who').textContent(), /^opal$/);
  assert.match(await page.locator('.timeline .ev-event_received .what').textContent(), /date_changed/);
  const history = await call('GET', `/v1/instances/${first[0].id}/history`, opal);
  assert.equal(history.items.filter((e) => e.type === 'event_received').length, 1, 'the refused event wrote nothing');

  // ---------------------------------------------------------------- cancel
  log('cancel: with a reason, recorded with who cancelled');
  const second = await call('POST', '/v1/workflows/order-desk/instances', opal, { input: { order_no: 'ORD-1002', amount: 90, tier: 'regular' } });
  await page.goto(`${base}/#/instance/${second.id}`);
  const cancel = page.locator('form.cancel-form');
  await cancel.waitFor();
  await cancel.locator('input[name="reason"]').fill('customer withdrew the order');
  await cancel.locator('button[type=submit]').click();
  await page.waitForSelector('.timeline .ev-cancelled');
  assert.match(await page.locator('.timeline .ev-cancelled .what').textContent(), /customer withdrew the order/);
  assert.match(await page.locator('.timeline .ev-cancelled .who').textContent(), /^opal$/);
  assert.equal((await call('GET', `/v1/instances/${second.id}`, opal)).status, 'cancelled');
  await page.waitForSelector('.actions >> text=nothing more can be done');

  // ---------------------------------------------------------------- retry
  log('retry: an order checked too early fails; once it is time, Retry runs the check again');
  const readyAt = new Date(Date.now() + 2500);
  const third = await call('POST', '/v1/workflows/order-desk/instances', opal,
    { input: { order_no: 'ORD-1003', amount: 40, tier: 'regular', ready_after: readyAt.toISOString() } });
  assert.equal(third.status, 'failed');
  await page.goto(`${base}/#/instance/${third.id}`);
  const retry = page.locator('form.retry-form');
  await retry.waitFor();
  assert.match(await retry.textContent(), /no transition of task stage 'check' holds/);
  await shot(page, 'retry-failed');
  await until('the ready time', async () => Date.now() > readyAt.getTime() + 200);
  await retry.locator('button[type=submit]').click();
  await page.waitForSelector('.timeline .ev-retried');
  assert.match(await page.locator('.timeline .ev-retried .who').textContent(), /^opal$/);
  await page.waitForSelector('.event-form[data-event="replied"]');
  const retried = await call('GET', `/v1/instances/${third.id}`, opal);
  assert.deepEqual([retried.status, retried.stage, retried.version], ['running', 'wait_reply', 1]);

  // ---------------------------------------------------------------- live
  log('live: the board follows the stream; a card turns red within a second of its breach, without a reload');
  const board = await newPage();
  await signIn(board, opal);
  await board.goto(`${base}/#/board?workflow=order-desk`);
  await board.waitForSelector('#live[data-mode="live"]');
  await board.evaluate(() => { window.notReloaded = true; });
  const fourth = await call('POST', '/v1/workflows/order-desk/instances', opal,
    { input: { order_no: 'ORD-1004', amount: 10, tier: 'vip', reply_within: 2 } });
  const card = board.locator(`.card[data-key="${fourth.id}"]`);
  await card.waitFor({ timeout: 3000 });
  await until('the breach', async () => (await call('GET', `/v1/instances/${fourth.id}`, opal)).sla.state === 'breached', 10000);
  const breachedAt = Date.now();
  await board.waitForFunction((id) => {
    const el = document.querySelector(`.card[data-key="${id}"]`);
    return el && el.dataset.sla === 'breached';
  }, fourth.id, { timeout: 2500 });
  const latency = Date.now() - breachedAt;
  assert.equal(await card.evaluate((el) => getComputedStyle(el).borderLeftColor), RED);
  assert.ok(await board.evaluate(() => window.notReloaded === true), 'the page was not reloaded');
  console.log(`  (red ${latency} ms after the breach was readable)`);
  await shot(board, 'board-live-red');

  // ---------------------------------------------------------------- place
  log('place: filters live in the URL; Back from an instance keeps them and focuses the card opened');
  await board.selectOption('select[name="status"]', 'running');
  await board.waitForFunction(() => location.hash.includes('status=running'));
  const runningCard = board.locator(`.card[data-key="${first[0].id}"]`);
  await runningCard.waitFor();
  await runningCard.click();
  await board.waitForFunction(() => location.hash.startsWith('#/instance/'));
  await board.waitForSelector('.facts');
  await board.goBack();
  await board.waitForFunction(() => location.hash.includes('status=running'));
  assert.equal(await board.locator('select[name="status"]').inputValue(), 'running');
  await board.waitForFunction((id) => document.activeElement && document.activeElement.dataset.key === id, first[0].id);
  await board.reload();
  assert.equal(await board.locator('select[name="status"]').inputValue(), 'running', 'a reload keeps the filters');

  log('place: two Tabs reach "Skip to the cards", Enter focuses the first card');
  await board.locator(`.card[data-key="${first[0].id}"]`).waitFor();
  await board.evaluate(() => { document.activeElement.blur(); window.scrollTo(0, 0); });
  await board.keyboard.press('Tab');
  await board.keyboard.press('Tab');
  assert.equal(await board.evaluate(() => document.activeElement.id), 'skip-cards');
  await board.keyboard.press('Enter');
  assert.ok(await board.evaluate(() => document.activeElement.classList.contains('card')), 'a card has focus');

  log('versions: a stage only an older version has still gets its column while instances run there');
  const v2 = JSON.parse(JSON.stringify(definition));
  v2.stages.await_answer = v2.stages.wait_reply;
  delete v2.stages.wait_reply;
  v2.stages.check.transitions[0].to = 'await_answer';
  v2.stages.await_answer.on.date_changed.to = 'await_answer';
  await call('PUT', '/v1/workflows/order-desk', admin, v2);
  await board.goto(`${base}/#/board?workflow=order-desk`);
  const oldColumn = board.locator('.column[data-stage="wait_reply"]');
  await oldColumn.waitFor();
  assert.match(await oldColumn.locator('h2').textContent(), /Waiting for the customer \(version 1\)/);
  await oldColumn.locator(`.card[data-key="${first[0].id}"]`).waitFor();
  assert.equal(await board.locator('.column[data-stage="await_answer"]').count(), 1, 'the newest version\'s stage too');

  log('the status dot says Offline only when the server does not answer: a 404 page stays online');
  await board.goto(`${base}/#/instance/01ARZ3NDEKTSV4RRFFQ69G5FAV`);
  await board.waitForSelector('.problem-404');
  await new Promise((r) => setTimeout(r, 300));
  assert.notEqual(await board.locator('#live').textContent(), 'Offline');

  log('an operator checks a definition: every error is listed where it is visible');
  await board.goto(`${base}/#/workflows`);
  await board.waitForSelector('#definition');
  const broken = JSON.stringify({
    ...definition,
    start: 'chek',
    stages: {
      ...definition.stages,
      check: { ...definition.stages.check, transitions: [{ to: 'wait_replyy' }] },
      wait_reply: { ...definition.stages.wait_reply, deadline: 'P4X' },
    },
  }, null, 2);
  await board.fill('#definition', broken);
  await board.click('button.check');
  await board.waitForSelector('.problems li');
  const listed = await board.locator('.problems li').count();
  assert.ok(listed >= 3, `every error listed (${listed})`);
  assert.ok(await board.locator('.problems').isVisible());
  const inView = await board.locator('.problems').evaluate((el) => { const r = el.getBoundingClientRect(); return r.top < innerHeight && r.bottom > 0; });
  assert.ok(inView, 'the list of errors is in view');
  await shot(board, 'operator-check');

  // ---------------------------------------------------------------- progress link
  log('progress link: the customer opens it without a token and sees step titles, nothing private');
  const { url: link } = await call('GET', `/v1/instances/${first[0].id}/progress-link`, opal);
  assert.match(link, new RegExp(`/p/${first[0].id}\\.0\\.[0-9a-f]{32}$`));
  const customer = await newPage(390, 800);
  await customer.goto(link);
  await customer.waitForSelector('.progress-steps li');
  const steps = await customer.locator('.progress-steps li').evaluateAll((els) => els.map((e) => [e.textContent, e.dataset.state]));
  assert.deepEqual(steps, [['Check the order ✓', 'done'], ['Waiting for the customer (now)', 'current']]);
  assert.equal(await customer.locator('.progress-status').textContent(), 'In progress');
  const visible = await customer.evaluate(() => document.body.innerText);
  for (const secret of ['ORD-1001', 'opal', 'vip', '250', '2026-12-2', 'date_changed', 'wait_reply', first[0].id, second.id, 'order-specialist']) {
    assert.ok(!visible.includes(secret), `the customer's page does not show ${secret}`);
  }
  assert.equal(await customer.evaluate(() => sessionStorage.length), 0, 'no token in the customer\'s browser');
  await shot(customer, 'progress-link');

  log('progress link: revoking it makes the old link stop working');
  const renewed = await call('DELETE', `/v1/instances/${first[0].id}/progress-link`, opal);
  assert.notEqual(renewed.url, link);
  await customer.reload();
  await customer.waitForSelector('.problem');
  assert.match(await customer.locator('.problem').textContent(), /does not work/);

}, { consoleErrors: /status of 40[134969]|status of 422/ });
