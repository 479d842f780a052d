// The dashboard in a real headless Chromium against the real `waystation` binary.
//
// Run through run.sh, which starts the server and sets WS_URL, WS_ADMIN, CHROMIUM and
// SHOTS. The story: an administrator uploads a workflow (first with mistakes, shown next to
// their lines), an operator's instances fill the board, one breaches its two-second
// deadline and turns red, the views answer the playbook questions, a reviewer approves a
// task in the inbox, and the instance's timeline shows who did it. Screenshots of every
// page go to SHOTS.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { admin, base, call, here, log, newPage, shot, signIn, story, until } from './harness.mjs';

const definitionText = readFileSync(join(here, 'fixtures', 'dashboard-check.json'), 'utf8');
const RED = 'rgb(220, 38, 38)';
const YELLOW = 'rgb(217, 119, 6)';
const GREEN = 'rgb(22, 163, 74)';

await story('dashboard', async () => {
  // ---------------------------------------------------------------- sign-in
  const adminPage = await newPage();
  log('the sign-in screen refuses an unknown token with a 401');
  await adminPage.goto(`${base}/`);
  await adminPage.waitForSelector('#token');
  assert.match(adminPage.url(), /#\/signin/);
  await shot(adminPage, 'signin');
  await adminPage.fill('#token', 'ws_not_a_real_token');
  await adminPage.click('form.signin button[type=submit]');
  const refused = await adminPage.locator('.problem-401').textContent();
  assert.match(refused, /401/);

  // ---------------------------------------------------------------- workflows
  log('an administrator uploads a definition with mistakes: each error sits under its line');
  await signIn(adminPage, admin);
  await adminPage.goto(`${base}/#/workflows`);
  await adminPage.waitForSelector('#definition');
  const broken = definitionText
    .replace('"on_reject": { "to": "rejected" }', '"on_reject": { "to": "rejectd" }')
    .replace('"deadline": "PT4H"', '"deadline": "P4X"');
  const lines = broken.split('\n');
  const typoLine = lines.findIndex((l) => l.includes('"rejectd"')) + 1;
  const durationLine = lines.findIndex((l) => l.includes('"P4X"')) + 1;
  await adminPage.fill('#definition', broken);
  await adminPage.click('form.upload button[type=submit]');
  await adminPage.waitForSelector('.src-error');
  const typo = await adminPage.locator(`.src-error[data-line="${typoLine}"]`).textContent();
  assert.match(typo, /rejectd/, `the unknown stage is reported under line ${typoLine}`);
  assert.match(typo, /\/stages\/review\/on_reject\/to/);
  const dur = await adminPage.locator(`.src-error[data-line="${durationLine}"]`).textContent();
  assert.match(dur, /P4X/, `the bad duration is reported under line ${durationLine}`);
  assert.equal(await adminPage.locator(`.src-line.has-error[data-line="${typoLine}"]`).count(), 1);
  await shot(adminPage, 'workflows-errors');

  log('the corrected definition is stored as version 1 and listed with its graph');
  await adminPage.fill('#definition', definitionText);
  await adminPage.click('form.upload button[type=submit]');
  await adminPage.waitForSelector('.upload-result .ok');
  assert.match(await adminPage.locator('.upload-result .ok').textContent(), /Stored dashboard-check as version 1/);
  const row = adminPage.locator('tr[data-workflow="dashboard-check"]');
  await row.waitFor();
  assert.match(await row.textContent(), /v1/);
  await row.locator('button', { hasText: 'Definition' }).click();
  await adminPage.waitForSelector('.detail-row svg.graph');
  assert.equal(await adminPage.locator('.detail-row svg.graph .node').count(), 7);
  await shot(adminPage, 'workflows');

  // ---------------------------------------------------------------- plugins
  log('the plugins page lists the registry and shows why an upload is refused');
  await adminPage.goto(`${base}/#/plugins`);
  await adminPage.waitForSelector('#plugin-file');
  await adminPage.setInputFiles('#plugin-file', { name: 'not-a-plugin.wasm', mimeType: 'application/wasm', buffer: Buffer.from('this is not WebAssembly') });
  await adminPage.fill('#plugin-name', 'not-a-plugin');
  await adminPage.click('form.upload button[type=submit]');
  await adminPage.waitForSelector('.upload-result .problem');
  assert.match(await adminPage.locator('.upload-result .problem').textContent(), /422|4\d\d/);
  await shot(adminPage, 'plugins');

  // ---------------------------------------------------------------- schedules
  log('the schedules page lists a paused schedule; resuming it shows its next run');
  await call('PUT', '/v1/schedules/new-year-check', admin, {
    cron: '0 0 1 1 *', zone: 'Europe/Berlin', workflow: 'dashboard-check', paused: true,
  });
  await adminPage.goto(`${base}/#/schedules`);
  const sched = adminPage.locator('tr[data-schedule="new-year-check"]');
  await sched.waitFor();
  assert.match(await sched.textContent(), /Paused/);
  await sched.locator('button', { hasText: 'Resume' }).click();
  await adminPage.locator('tr[data-schedule="new-year-check"] button', { hasText: 'Pause' }).waitFor();
  const listed = await call('GET', '/v1/schedules', admin);
  assert.equal(listed.items[0].paused, false);
  // Midnight of 1 January in Berlin (CET) is 23:00 UTC on New Year's Eve.
  assert.match(listed.items[0].next_run, /^\d{4}-12-31T23:00:00Z$/);
  await shot(adminPage, 'schedules');

  // ---------------------------------------------------------------- instances
  log('an operator starts four instances; the urgent one breaches its 2 s deadline');
  const ops = (await call('POST', '/v1/tokens', admin, { name: 'olga', roles: ['operator'] })).token;
  const rui = (await call('POST', '/v1/tokens', admin, { name: 'rui', roles: ['approver:reviewer'] })).token;
  // Each order has its own number (the business key): one running instance per number.
  let orders = 0;
  const start = (lane) => {
    orders += 1;
    return call('POST', '/v1/workflows/dashboard-check/instances', ops,
      { input: { ref: `ORD-${lane}-${orders}`, lane, customer: `${lane === 'urgent' ? 'ACME Shenzhen' : 'Globex'} ${orders}`, amount: 1000 * orders } });
  };
  const calm = (await start('calm')).id;
  const soon = (await start('soon')).id;
  const urgent = (await start('urgent')).id;
  const special = (await start('special')).id;
  await until('the urgent instance to breach', async () => (await call('GET', `/v1/instances/${urgent}`, ops)).sla.state === 'breached');

  // ---------------------------------------------------------------- board
  log('the board shows red, yellow and green cards with words and icons, and counts per column');
  const board = await newPage();
  await signIn(board, ops);
  assert.match(board.url(), /#\/board/);
  await board.click('.tile >> text=Dashboard check');
  const card = (id) => board.locator(`.card[data-key="${id}"]`);
  await card(urgent).waitFor();
  await card(soon).waitFor();
  await card(calm).waitFor();
  const look = (id) => card(id).evaluate((el) => ({
    border: getComputedStyle(el).borderLeftColor,
    label: el.querySelector('.badge').textContent.trim(),
    icon: Boolean(el.querySelector('.badge svg.icon')),
  }));
  const red = await look(urgent);
  assert.deepEqual(red, { border: RED, label: 'Breached', icon: true });
  const yellow = await look(soon);
  assert.deepEqual(yellow, { border: YELLOW, label: 'At risk', icon: true });
  const green = await look(calm);
  assert.deepEqual(green, { border: GREEN, label: 'On time', icon: true });
  const count = (stage) => board.locator(`.column[data-stage="${stage}"] .count`).textContent();
  assert.equal(await count('review'), '2');
  assert.equal(await count('urgent_review'), '1');
  assert.equal(await count('approved'), '0');
  assert.match(await board.locator('.column[data-stage="urgent_review"] .col-states').textContent(), /1 breached/);
  await shot(board, 'board');

  log('one-click views: special-approval, deadline near and not started, no update for 24 h');
  await board.click('button.view[data-view="special"]');
  await board.waitForFunction(() => document.querySelectorAll('.card').length === 1);
  assert.equal(await card(special).count(), 1);
  await board.click('button.view[data-view="near"]');
  // At risk or breached, and nobody has acted: the breached urgent order too.
  await board.waitForFunction(([a, b]) => document.querySelectorAll('.card').length === 2
    && document.querySelector(`.card[data-key="${a}"]`) && document.querySelector(`.card[data-key="${b}"]`), [soon, urgent]);
  await shot(board, 'board-view-deadline-near');
  await board.click('button.view[data-view="stale"]');
  await board.waitForFunction(() => document.querySelector('.summary').textContent.includes('None match'));
  assert.equal(await board.locator('.card').count(), 0);
  await board.click('button.view[data-view="stale"]'); // off again: the full board
  await card(calm).waitFor();

  log('a card shows the order number and the fields marked show');
  assert.equal(await card(calm).locator('.card-key').textContent(), 'ORD-calm-1');
  assert.equal(await card(calm).locator('.card-fields dd[data-field="customer"]').textContent(), 'Globex 1');
  assert.equal(await card(calm).locator('.card-fields dd[data-field="amount"]').textContent(), (1000).toLocaleString('en-US'));
  assert.equal(await card(calm).locator('.card-fields dd[data-field="lane"]').count(), 0, 'lane is not marked show');

  log('the search box finds an order by its number and by a word of its customer');
  await board.fill('#q', 'ORD-urgent-3');
  await board.press('#q', 'Enter');
  await board.waitForFunction((id) => location.hash.startsWith('#/search') && document.querySelectorAll('.search-results .card').length === 1
    && document.querySelector(`.search-results .card[data-key="${id}"]`), urgent);
  await board.fill('#q', 'acme');
  await board.press('#q', 'Enter');
  await board.waitForFunction((id) => document.querySelector('.summary').textContent.includes('acme')
    && document.querySelectorAll('.search-results .card').length === 1 && document.querySelector(`.search-results .card[data-key="${id}"]`), urgent);
  await shot(board, 'search');
  await board.goto(`${base}/#/board?workflow=dashboard-check`);
  await card(calm).waitFor();

  log('filters: breached only');
  await board.selectOption('select[name="sla"]', 'breached');
  await board.waitForFunction((id) => document.querySelectorAll('.card').length === 1 && document.querySelector(`.card[data-key="${id}"]`), urgent);
  await board.click('button.clear');
  await card(calm).waitFor();

  log('live: a new instance appears without a reload');
  const late = (await start('calm')).id;
  await card(late).waitFor({ timeout: 15000 });

  log('keyboard: arrows move between cards, Enter opens the instance');
  await card(urgent).focus();
  await board.keyboard.press('ArrowLeft');
  const focusedKey = await board.evaluate(() => document.activeElement.dataset.key);
  assert.ok([calm, special, late, soon].includes(focusedKey), 'focus moved to a neighbouring column');
  await card(urgent).focus();
  await board.keyboard.press('Enter');
  await board.waitForSelector('svg.graph .node.current');
  assert.equal(await board.locator('svg.graph .node.current').getAttribute('data-stage'), 'urgent_review');
  assert.match(await board.locator('svg.graph .node.current').getAttribute('class'), /st-breached/);
  assert.match(await board.locator('.facts .badge').textContent(), /Breached/);
  await board.waitForSelector('.timeline .ev-sla_changed');
  await shot(board, 'instance-breached');

  log('the at-risk instance has an armed deadline timer with a live countdown');
  await board.goto(`${base}/#/instance/${soon}`);
  const countdown = board.locator('.timer[data-purpose="deadline"] .countdown');
  await countdown.waitFor();
  const before = await countdown.textContent();
  assert.match(before, /^due in (29|30)m/);
  await board.waitForFunction((t) => document.querySelector('.timer[data-purpose="deadline"] .countdown').textContent !== t, before, { timeout: 5000 });

  log('phone width: the board stacks its columns and nothing scrolls sideways');
  const phone = await newPage(390, 844);
  await signIn(phone, ops);
  await phone.goto(`${base}/#/board?workflow=dashboard-check`);
  await phone.locator(`.card[data-key="${urgent}"]`).waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no horizontal scrolling at phone width (overflow ${overflow}px)`);
  await shot(phone, 'board-phone');

  // ---------------------------------------------------------------- inbox
  log('a reviewer sees the five open tasks and approves one with a comment');
  const inbox = await newPage();
  await signIn(inbox, rui);
  assert.match(inbox.url(), /#\/inbox/, 'an approver lands on the inbox');
  await inbox.waitForFunction(() => document.querySelectorAll('.task-card').length === 5);
  await shot(inbox, 'inbox');
  assert.match(await inbox.locator('.task-card h2').first().textContent(), /^ORD-[a-z]+-\d+ · dashboard-check · /,
    'each task names its order number and workflow');
  const calmTask = inbox.locator(`.task-card[data-instance="${calm}"]`);
  assert.equal(await calmTask.locator('.task-fields dd[data-field="amount"]').textContent(), (1000).toLocaleString('en-US'),
    'the approver sees the amount before deciding');
  assert.equal(await calmTask.locator('.task-fields dd[data-field="customer"]').textContent(), 'Globex 1');
  const overdue = inbox.locator('.task-card', { has: inbox.locator('.badge.st-breached') });
  assert.equal(await overdue.count(), 1, 'the task whose stage is past its deadline shows it as breached');
  assert.match(await overdue.textContent(), /overdue by/);
  const task = inbox.locator(`.task-card[data-instance="${calm}"]`);
  await task.locator('textarea').fill('within budget');
  await task.locator('button.approve').click();
  await inbox.waitForSelector('.decided-line');
  assert.match(await inbox.locator('.decided-line').textContent(), /Approved .* completed \(approved\)/);
  assert.equal(await inbox.locator(`.task-card[data-instance="${calm}"]`).count(), 0);

  log('my work lists what a supervisor assigned to the reviewer');
  await call('POST', `/v1/instances/${special}/assign`, ops, { to: 'rui' });
  await inbox.goto(`${base}/#/work`);
  await inbox.waitForFunction((id) => document.querySelectorAll('.my-work .card').length === 1
    && document.querySelector(`.my-work .card[data-key="${id}"]`), special);
  assert.match(await inbox.locator('.my-work .card').textContent(), /assigned to rui/);
  await shot(inbox, 'my-work');

  log('the reviewer may not read the board: the 403 is shown as such');
  await inbox.goto(`${base}/#/board`);
  const forbidden = await inbox.locator('.problem-403').first().textContent();
  assert.match(forbidden, /403/);
  assert.match(forbidden, /the token has approver:reviewer/);

  // ---------------------------------------------------------------- timeline
  log('the instance timeline shows who approved, with the comment, and the end');
  await board.goto(`${base}/#/instance/${calm}`);
  const decided = board.locator('.timeline .ev-decided');
  await decided.waitFor();
  assert.match(await decided.locator('.who').textContent(), /^rui$/);
  assert.match(await decided.locator('.what').textContent(), /Approved at level reviewer/);
  assert.match(await decided.locator('.comment').textContent(), /within budget/);
  assert.match(await board.locator('.timeline .ev-started .who').textContent(), /^olga$/, 'the start names the token that sent it');
  assert.equal(await board.locator('section[aria-labelledby="h-fields"] dd[data-field="lane"]').textContent(), 'calm', 'the instance page shows every field');
  assert.match(await board.locator('h1 .instance-key').textContent(), /^ORD-calm-1$/);
  await board.locator('.timeline .ev-completed').waitFor();
  assert.equal(await board.locator('svg.graph .node.current').getAttribute('data-stage'), 'approved');
  log('step by step: the review stage met its deadline, and rui acted in it');
  const reviewStep = board.locator('table.steps tr[data-stage="review"]');
  await reviewStep.waitFor();
  assert.match(await reviewStep.locator('td.acts').textContent(), /rui approved:reviewer after/);
  assert.match(await reviewStep.locator('td.deadline').textContent(), /met/);
  await shot(board, 'instance');

  // ---------------------------------------------------------------- figures
  log('the figures page shows this month beside the last, a chart per figure, a breakdown by lane and a CSV');
  const all = (await call('GET', '/v1/instances?workflow=dashboard-check&limit=1000', admin)).items;
  const lanes = {};
  for (const i of all) lanes[i.fields.lane] = (lanes[i.fields.lane] || 0) + 1;
  const figures = await newPage();
  await signIn(figures, admin);
  await figures.goto(`${base}/#/figures/dashboard-check?tz=UTC&by=lane`);
  const started = figures.locator('table.figures tr[data-figure="Started"]');
  await started.waitFor();
  assert.equal(await started.locator('td.now').textContent(), String(all.length), 'every instance started this month');
  assert.equal(await started.locator('td.before').textContent(), '0');
  assert.equal(await started.locator('svg.spark rect').count(), 12, 'a bar per month');
  assert.equal(await figures.locator('table.figures tr[data-figure="Ended completed"] td.now').textContent(),
    String(all.filter((i) => i.status === 'completed').length));
  assert.match(await figures.locator('table.figures tr[data-figure="Tagged special-approval"] td.now').textContent(), /%$/);
  for (const [lane, n] of Object.entries(lanes)) {
    assert.equal(await figures.locator(`table.breakdown tr[data-group="${lane}"] td`).first().textContent(), String(n), `lane ${lane}`);
  }
  const [download] = await Promise.all([figures.waitForEvent('download'), figures.click('#figures-csv')]);
  const csv = readFileSync(await download.path(), 'utf8').split('\n');
  assert.equal(csv[0], 'period,start,end,group,stage,figure,value');
  assert.ok(csv.some((l) => l.endsWith(`,,started,${all.length}`)), 'the CSV has the month\'s starts');
  await shot(figures, 'figures');
  const phoneFigures = await newPage(390, 800);
  await signIn(phoneFigures, admin);
  await phoneFigures.goto(`${base}/#/figures/dashboard-check?tz=UTC`);
  await phoneFigures.locator('table.figures tr[data-figure="Started"]').waitFor();
  const figuresOverflow = await phoneFigures.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(figuresOverflow <= 1, `no sideways scrolling on a phone (${figuresOverflow}px)`);
  await shot(phoneFigures, 'figures-phone');

});
