// Dispute classification by keywords (DOMAIN.md playbook 4), as pure JavaScript.
//
// No component bindings here: src/plugin.js wraps this module in the component, and
// test/classifier.test.js tests it with plain Node (`node --test`).
//
// The category is the one whose keywords the message hits most (distinct keywords, a
// keyword inside a longer matched one not counted again; the first category in the list
// below wins a tie). English keywords match at the start of a word, case-insensitively,
// so `scratch` also finds "scratched" but `late` does not find "chocolate"; Chinese
// keywords match anywhere.
//
// Confidence (the score, 0-100): 40 per keyword hit, at most 100, then scaled down by
// best / (best + runner-up) when another category was hit too.

/** The five dispute types of playbook 4, in tie-break order. */
export const CATEGORIES = ['wrong-information', 'shipping-delay', 'quality', 'price', 'after-sales'];

/** Keywords per category, in English and Chinese. Edit here to tune the classifier. */
export const KEYWORDS = {
  'wrong-information': [
    'wrong address', 'wrong information', 'wrong info', 'wrong size', 'wrong colour', 'wrong color',
    'wrong item', 'wrong product', 'wrong model', 'incorrect', 'not as described', 'mismatch',
    '信息错误', '地址错', '描述不符', '发错', '错发', '型号不对', '尺寸不对', '颜色不对', '信息有误',
  ],
  'shipping-delay': [
    'not shipped', "hasn't shipped", 'has not shipped', 'not yet shipped', 'not been shipped',
    'where is', 'delay', 'late', 'still waiting', 'not arrived', "hasn't arrived", 'has not arrived',
    'not delivered', 'tracking',
    '未发货', '没发货', '不发货', '物流', '延迟', '延误', '快递', '迟迟', '没收到货', '还没到', '催单',
  ],
  quality: [
    'quality', 'broken', 'defect', 'scratch', 'damaged', 'faulty', 'crack', 'stopped working',
    "doesn't work", 'does not work', 'not working', 'leaking',
    '质量', '破损', '划痕', '坏了', '闪屏', '故障', '裂', '瑕疵', '不能用', '用不了', '漏水', '漏电',
  ],
  price: [
    'price', 'overcharged', 'overcharge', 'cheaper', 'difference', 'discount', 'coupon',
    'charged twice', 'double charged',
    '价格', '差价', '降价', '多收', '贵了', '优惠', '价钱', '多扣',
  ],
  'after-sales': [
    'after-sales', 'after sales', 'no reply', 'no response', 'nobody answers', 'no one answers',
    'support', 'customer service', 'warranty',
    '售后', '客服', '没人回复', '不回复', '没人理', '保修', '退换',
  ],
};

/** An input the classifier cannot work with; the message is shown to operators. */
export class InputError extends Error {}

const ASCII = /^[\x00-\x7f]*$/;
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// Pre-compiled matchers: English at a word start, anything else as a substring.
const MATCHERS = CATEGORIES.map((category) => ({
  category,
  words: KEYWORDS[category].map((word) => {
    const lower = word.toLowerCase();
    if (ASCII.test(lower)) {
      const re = new RegExp(`(?:^|[^a-z0-9])${escape(lower)}`);
      return { word, test: (text) => re.test(text) };
    }
    return { word, test: (text) => text.includes(lower) };
  }),
}));

/**
 * Returns { order, now } from the engine's default envelope
 * ({input, vars, instance, now}) or from a custom input object.
 */
export function unwrap(doc) {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new InputError('input must be a JSON object');
  }
  const input = doc.input;
  if (input && typeof input === 'object' && !Array.isArray(input) && ('instance' in doc || 'vars' in doc || 'now' in doc)) {
    return { order: input, now: doc.now };
  }
  return { order: doc, now: doc.now };
}

/** Lower case, ASCII apostrophes, collapsed spaces. */
export function normalise(text) {
  return text.toLowerCase().replace(/[\u2018\u2019\u02bc]/g, "'").replace(/\s+/g, ' ');
}

/** Which script the message is in: `zh`, `en`, `mixed` or `other`. */
export function language(text) {
  const han = /[\u3400-\u9fff\uf900-\ufaff]/.test(text);
  const latin = /[A-Za-z]{2,}/.test(text);
  return han && latin ? 'mixed' : han ? 'zh' : latin ? 'en' : 'other';
}

/**
 * Classifies the customer's message.
 * @returns {{score: number, reasons: string[], labels: {key: string, value: string}[]}}
 */
export function classify(doc) {
  const { order } = unwrap(doc);
  const parts = [order.subject, order.message ?? order.text].filter((p) => typeof p === 'string');
  if (typeof (order.message ?? order.text) !== 'string' || parts.join('').trim() === '') {
    throw new InputError("no message to classify: 'message' must be a non-empty string");
  }
  const raw = parts.join('\n');
  const text = normalise(raw);

  const hits = MATCHERS.map(({ category, words }) => {
    const found = words.filter((w) => w.test(text)).map((w) => w.word);
    // "has not shipped" also contains "not shipped": count the longer keyword only.
    return { category, words: found.filter((w) => !found.some((o) => o !== w && o.includes(w))) };
  });
  // Stable sort: most hits first, list order on a tie.
  const ranked = hits.filter((h) => h.words.length > 0).sort((a, b) => b.words.length - a.words.length);
  const labels = [{ key: 'language', value: language(raw) }];

  if (ranked.length === 0) {
    return { score: 0, reasons: ['no keyword matched: classify by hand'], labels };
  }
  const [best, second] = ranked;
  let confidence = Math.min(100, 40 * best.words.length);
  const reasons = best.words.map((w) => `matched '${w}' (${best.category})`);
  if (second) {
    confidence = Math.round((confidence * best.words.length) / (best.words.length + second.words.length));
    reasons.push(`also matched ${second.words.map((w) => `'${w}'`).join(', ')} (${second.category})`);
    labels.push({ key: 'runner_up', value: second.category });
    if (second.words.length === best.words.length) {
      reasons.push(`tie between ${best.category} and ${second.category}: ${best.category} comes first`);
    }
  }
  labels.unshift({ key: 'category', value: best.category });
  labels.push({ key: 'matched', value: best.words.join(', ') });
  return { score: confidence, reasons, labels };
}
