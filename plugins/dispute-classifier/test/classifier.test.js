// Unit tests of the pure classifier: `node --test` in plugins/dispute-classifier.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classify, InputError, language } from '../src/classifier.js';

const envelope = (message) => ({
  input: { order_id: '202405-019', message },
  vars: {},
  instance: { id: 'i1', stage: 'classify' },
  now: '2024-05-08T09:00:00Z',
});
const label = (r, key) => r.labels.find((l) => l.key === key)?.value;
const category = (message) => label(classify(envelope(message)), 'category');

test('each kind of dispute is classified in either language', () => {
  const cases = [
    ['The invoice shows the wrong address and the wrong size.', 'wrong-information'],
    ['订单信息错误，收货地址错了', 'wrong-information'],
    ['My parcel is delayed, where is it?', 'shipping-delay'],
    ['I paid almost a day ago and my order still has not shipped. Where is it?', 'shipping-delay'],
    ['付款三天了还没发货，物流也查不到', 'shipping-delay'],
    ['The screen arrived broken and scratched.', 'quality'],
    ['收到的商品有质量问题，屏幕有划痕，开机还会闪屏，要求处理。', 'quality'],
    ['价格比昨天贵了，要求退差价', 'price'],
    ['Your PRICE went down the day after I paid.', 'price'],
    ['The price dropped by 1,200 the day after we paid. Please refund the difference.', 'price'],
    ['售后客服三天没人回复', 'after-sales'],
    ['I wrote to customer service twice and got no reply.', 'after-sales'],
  ];
  for (const [message, expected] of cases) assert.equal(category(message), expected, message);
});

test('a message with no keyword gets no category and score 0', () => {
  const r = classify(envelope('请尽快联系我 / please call me back'));
  assert.equal(r.score, 0);
  assert.equal(label(r, 'category'), undefined);
  assert.equal(label(r, 'language'), 'mixed');
  assert.match(r.reasons[0], /classify by hand/);
});

test('English keywords match at word starts only', () => {
  assert.equal(category('The chocolate was translated badly'), undefined);
  assert.equal(category('It arrived late'), 'shipping-delay');
  assert.equal(category('Both units were SCRATCHED'), 'quality');
  assert.equal(category('It hasn\u2019t shipped yet'), 'shipping-delay', 'curly apostrophe');
});

test('confidence: 40 per hit up to 100, shared with a runner-up', () => {
  assert.equal(classify(envelope('broken')).score, 40);
  assert.equal(classify(envelope('broken, damaged, faulty')).score, 100);
  const mixed = classify(envelope('The parcel is late and the screen is broken and scratched'));
  assert.equal(label(mixed, 'category'), 'quality');
  assert.equal(label(mixed, 'runner_up'), 'shipping-delay');
  assert.equal(mixed.score, Math.round((80 * 2) / 3));
});

test('a keyword inside a longer matched keyword counts once', () => {
  const r = classify(envelope('My order has not shipped'));
  assert.equal(label(r, 'matched'), 'has not shipped');
  assert.equal(r.score, 40);
});

test('a tie goes to the first category in playbook order', () => {
  const r = classify(envelope('wrong size and broken'));
  assert.equal(label(r, 'category'), 'wrong-information');
  assert.equal(label(r, 'runner_up'), 'quality');
  assert.equal(r.score, 20);
});

test('a custom input (no envelope) and an optional subject are read', () => {
  assert.equal(label(classify({ message: 'see subject', subject: 'Overcharged' }), 'category'), 'price');
});

test('bad inputs are errors, not guesses', () => {
  assert.throws(() => classify(envelope('')), InputError);
  assert.throws(() => classify(envelope(42)), InputError);
  assert.throws(() => classify({ input: {}, vars: {} }), InputError);
  assert.throws(() => classify([]), InputError);
});

test('language detection', () => {
  assert.equal(language('质量问题'), 'zh');
  assert.equal(language('broken'), 'en');
  assert.equal(language('12345'), 'other');
});
