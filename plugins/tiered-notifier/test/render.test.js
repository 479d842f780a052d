// Unit tests of the pure renderer: `node --test` in plugins/tiered-notifier.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError, render, tierOf } from '../src/render.js';

const meta = (m, key) => m.metadata.find((l) => l.key === key)?.value;
const summary = (ms) => ms.map((m) => `${m.channel}:${m.recipient}:${meta(m, 'kind')}`);
const noDates = (ms) => ms.every((m) => !/\b20\d\d-\d\d-/.test(m.body) && !/\b\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) 20\d\d/.test(m.body));

// delay-early-warning: the engine's default envelope, the order in `input`.
const lateRegular = {
  order_no: '202405-011',
  customer: { id: 'C-0311', name: 'Delta Packaging Ltd', tier: 'regular' },
  contact: { name: 'Maria Costa', email: 'm.costa@deltapack.example', phone: '+351 21 555 0311' },
  promised_at: '2024-05-10T12:00:00Z',
};
const envelope = (order) => ({
  input: order,
  vars: { threshold: 70, health: { score: 75, reasons: ['production is 33% over its standard 72 h'], labels: { late: 'true' } } },
  instance: { id: 'i1', workflow: 'delay-early-warning', stage: 'emergency' },
  now: '2024-05-09T00:00:00Z',
});

test('early warning: regular customer gets a personal call task and a written notice', () => {
  const { messages } = render(envelope(lateRegular));
  assert.deepEqual(summary(messages), ['task:account-manager:personal-call', 'email:m.costa@deltapack.example:written-notice']);
  const email = messages[1];
  assert.match(email.subject, /202405-011/);
  assert.match(email.body, /another carrier/);
  assert.match(email.body, /Dear Maria Costa/);
  assert.equal(meta(email, 'tier'), 'regular');
  assert.match(messages[0].body, /Health score 75/);
  assert.match(messages[0].body, /\+351 21 555 0311/);
});

test('early warning: strategic customer hears from the supervisor, with a compensation offer', () => {
  const { messages } = render(envelope({ ...lateRegular, customer: { ...lateRegular.customer, tier: 'strategic' } }));
  assert.deepEqual(messages.map((m) => m.recipient), ['supervisor', 'm.costa@deltapack.example']);
  assert.match(messages[1].body, /credit/);
  assert.equal(meta(messages[0], 'kind'), 'supervisor-call');
});

test('early warning: new customer gets a standard email with a progress link only', () => {
  const { messages } = render(envelope({ ...lateRegular, customer: { tier: 'new' } }));
  assert.deepEqual(summary(messages), ['email:m.costa@deltapack.example:standard-email']);
  assert.match(messages[0].body, /https:\/\/track\.example\.com\/orders\/202405-011/);
});

test('early warning promises no new date, unless one is confirmed', () => {
  const { messages } = render(envelope(lateRegular));
  assert.match(messages[1].body, /will confirm a new date as soon as it is certain/);
  assert.ok(!/2024-05-1[1-9]|1[1-9] May/.test(messages[1].body), 'no new date');
  const confirmed = render(envelope({ ...lateRegular, confirmed_delivery_at: '2024-05-12T09:00:00Z' })).messages;
  assert.match(confirmed[1].body, /confirmed a new delivery time: 12 May 2024, 09:00 UTC/);
});

test('early warning without an email address asks a person to send it', () => {
  const { messages } = render(envelope({ ...lateRegular, contact: { name: 'Maria' }, customer: { tier: 'new' } }));
  assert.deepEqual(summary(messages), ['task:customer-service:missing-email']);
});

// delay-emergency-response: a custom input with template delay-notice.
const strategicNotice = {
  template: 'delay-notice',
  tier: 'strategic',
  customer: { name: 'Huaxin Electronics', tier: 'strategic', class: 'B', contact: '+86 21 5555 0101', email: 'purchasing@huaxin.example.com' },
  order_id: '202405-001',
  delay_days: 3,
  ticket: 'INV-202405-001',
  notice_number: 1,
};

test('delay notice: strategic = supervisor call, email and compensation offer', () => {
  const { messages } = render(strategicNotice);
  assert.deepEqual(summary(messages), [
    'phone:+86 21 5555 0101:supervisor-call',
    'email:purchasing@huaxin.example.com:email',
    'email:purchasing@huaxin.example.com:compensation-offer',
  ]);
  assert.ok(noDates(messages), 'no new date is promised');
  assert.match(messages[0].body, /INV-202405-001/);
  assert.match(messages[1].body, /about 3 days later than promised/);
});

test('delay notice: regular = personal call and written notice; new = standard email with link', () => {
  const regular = render({ ...strategicNotice, tier: 'regular', customer: { ...strategicNotice.customer, tier: 'regular' } }).messages;
  assert.deepEqual(regular.map((m) => `${m.channel}:${meta(m, 'kind')}`), ['phone:personal-call', 'email:written-notice']);
  const fresh = render({ template: 'delay-notice', tier: 'new', order_id: '202405-027', delay_days: 1,
    customer: { name: 'Greenleaf Studio', tier: 'new', contact: '+44 20 5555 0327', email: 'hello@greenleaf.example.com' } }).messages;
  assert.deepEqual(summary(fresh), ['email:hello@greenleaf.example.com:standard-email']);
  assert.match(fresh[0].body, /https:\/\/track\.example\.com\/orders\/202405-027/);
  assert.match(fresh[0].body, /about 1 day later/);
  assert.ok(noDates([...regular, ...fresh]));
});

test('delay notice: later notices are marked as updates; unknown tier is treated as new', () => {
  const { messages } = render({ ...strategicNotice, notice_number: 2 });
  assert.ok(messages.every((m) => m.subject.startsWith('Update: ')));
  const unknown = render({ ...strategicNotice, tier: undefined, customer: { email: 'x@example.com' } });
  assert.deepEqual(summary(unknown.messages), ['email:x@example.com:standard-email']);
  assert.match(unknown.warnings[0], /unknown customer tier/);
});

test('delay notice without a phone number turns the call into a task for the caller', () => {
  const { messages } = render({ ...strategicNotice, customer: { name: 'H', tier: 'strategic', email: 'p@h.example' } });
  assert.deepEqual(summary(messages)[0], 'task:supervisor:supervisor-call');
});

test('investigation overdue escalates to the department manager', () => {
  const { messages } = render({
    template: 'investigation-overdue', audience: 'department-manager', order_id: '202405-001',
    ticket: { number: 'INV-202405-001', order_id: '202405-001', customer: 'Huaxin Electronics', problem: 'QC failed', initiator: 'li.wei', blocked_at: 'production', reply_by: '2024-05-06T13:00:00Z' },
  });
  assert.deepEqual(summary(messages), ['email:department-manager:escalation']);
  assert.match(messages[0].body, /INV-202405-001/);
  assert.match(messages[0].body, /QC failed/);
});

test('unshipped 48 h reminds customer service', () => {
  const { messages } = render({
    template: 'unshipped-48h', audience: 'customer-service', recipient: 'customer-service',
    order_id: '202405-008', paid_at: '2024-05-01T10:00:00Z', ticket: 'DSP-202405-008',
  });
  assert.deepEqual(summary(messages), ['chat:customer-service:reminder']);
  assert.equal(messages[0].subject, 'Order 202405-008 not shipped 48 hours after payment');
  assert.match(messages[0].body, /DSP-202405-008/);
  assert.equal(meta(messages[0], 'audience'), 'customer-service');
});

test('metadata values are strings, all messages have the WIT fields', () => {
  for (const doc of [envelope(lateRegular), strategicNotice]) {
    for (const m of render(doc).messages) {
      for (const f of ['channel', 'recipient', 'subject', 'body']) assert.equal(typeof m[f], 'string', f);
      assert.ok(m.metadata.every((l) => typeof l.key === 'string' && typeof l.value === 'string'));
    }
  }
});

test('errors', () => {
  assert.throws(() => render([]), InputError);
  assert.throws(() => render({ template: 'nope', order_id: '1' }), /unknown template 'nope'/);
  assert.throws(() => render({ template: 'delay-notice', tier: 'new' }), /no order number/);
});

test('tiers', () => {
  assert.equal(tierOf('VIP'), 'strategic');
  assert.equal(tierOf('A'), 'strategic');
  assert.equal(tierOf('regular'), 'regular');
  assert.equal(tierOf('new'), 'new');
  assert.equal(tierOf('gold'), undefined);
});
