// Tiered customer notices (DOMAIN.md playbook 3, step 3) and the internal reminders the
// reference workflows send, as pure JavaScript. src/plugin.js wraps this module in the
// component; test/render.test.js tests it with plain Node (`node --test`).
//
// Customer tiers:
//   strategic  the supervisor calls, an email, and a compensation offer
//   regular    a personal call by the account manager and a written notice
//   new        a standard email with a progress link
// A new delivery date is never promised: a date appears in a customer message only when the
// input carries one that production and logistics have confirmed (`confirmed_delivery_at`).

/** An input the notifier cannot render; the message is shown to operators. */
export class InputError extends Error {}

export const TEMPLATES = ['early-warning', 'delay-notice', 'investigation-overdue', 'unshipped-48h'];
export const DEFAULT_TRACKING_URL = 'https://track.example.com/orders/';
const DEFAULT_COMPENSATION = 'a credit on this order (your account manager will confirm the amount)';

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
const first = (...vs) => vs.find((v) => v !== undefined);

/** strategic / regular / new from a tier, level or class; undefined if unknown. */
export function tierOf(value) {
  const v = str(value)?.toLowerCase();
  if (['strategic', 'vip', 'key', 'a'].includes(v)) return 'strategic';
  if (['regular', 'b'].includes(v)) return 'regular';
  if (['new', 'small', 'c'].includes(v)) return 'new';
  return undefined;
}

/** "10 May 2024, 12:00 UTC" from RFC 3339; the input text if it does not parse. */
export function humanTime(text) {
  const t = Date.parse(text);
  if (Number.isNaN(t)) return String(text);
  const d = new Date(t);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

const days = (n) => (n === 1 ? '1 day' : `${n} days`);

function message(channel, recipient, subject, body, metadata) {
  return {
    channel,
    recipient,
    subject,
    body,
    metadata: Object.entries(metadata)
      .filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(([key, value]) => ({ key, value: String(value) })),
  };
}

/**
 * What the input says, whichever shape it comes in: the engine's default envelope
 * ({input, vars, instance, now}: the early warning of delay-early-warning) or a custom
 * object built by the workflow with a `template`.
 */
export function unwrap(doc) {
  if (!isObject(doc)) throw new InputError('input must be a JSON object');
  const envelope = isObject(doc.input) && ('instance' in doc || 'vars' in doc || 'now' in doc);
  const data = envelope ? doc.input : doc;
  const vars = envelope && isObject(doc.vars) ? doc.vars : {};
  const template = str(doc.template) ?? str(data.template) ?? (envelope ? 'early-warning' : 'delay-notice');
  return { template, data, vars, now: doc.now };
}

/** The customer's name, tier and addresses, from the field names the workflows use. */
export function customerOf(data) {
  const c = isObject(data.customer) ? data.customer : {};
  const contact = isObject(data.contact) ? data.contact : isObject(c.contact) ? c.contact : {};
  const tierSource = first(str(data.tier), str(c.tier), str(c.level), str(data.customer_tier), str(data.customer_level));
  return {
    name: first(str(c.name), str(data.customer_name), typeof data.customer === 'string' ? str(data.customer) : undefined),
    contactName: first(str(contact.name), str(c.contact_name)),
    tier: tierOf(tierSource),
    tierGiven: tierSource,
    email: first(str(c.email), str(contact.email), str(data.email)),
    phone: first(str(c.phone), typeof c.contact === 'string' ? str(c.contact) : undefined, str(contact.phone), str(data.phone)),
  };
}

const orderNo = (data) => {
  const no = first(str(data.order_no), str(data.order_id));
  if (!no) throw new InputError("no order number: give 'order_no' or 'order_id'");
  return no;
};

/** When no email address is on file, a person has to send the notice another way. */
function noEmailTask(no, who, kind, meta) {
  return message(
    'task',
    'customer-service',
    `No email on file for ${who}: send the ${kind.replace('-', ' ')} for order ${no} another way`,
    `The ${kind.replace('-', ' ')} for order ${no} could not be emailed because no address is on file. Contact the customer by phone or post and record the address.`,
    { ...meta, kind: 'missing-email', intended: kind },
  );
}

/** Tells the customer the order is at risk, 36 hours before the promised delivery. */
function earlyWarning({ data, vars }, warnings) {
  const no = orderNo(data);
  const customer = customerOf(data);
  const tier = customer.tier ?? 'new';
  if (!customer.tier) warnings.push(`unknown customer tier ${JSON.stringify(customer.tierGiven ?? null)}: treated as new`);
  const who = customer.name ?? 'the customer';
  const greeting = customer.contactName ?? customer.name ?? 'customer';
  const meta = { template: 'early-warning', tier, order_no: no };
  const promised = str(data.promised_at);
  const confirmed = str(data.confirmed_delivery_at) ?? str(vars.confirmed_delivery_at);
  const link = `${str(data.tracking_url) ?? DEFAULT_TRACKING_URL}${encodeURIComponent(no)}`;
  const health = isObject(vars.health) ? vars.health : undefined;

  let body = `Dear ${greeting},\n\nyour order ${no} is at risk of missing ${promised ? `the delivery we promised for ${humanTime(promised)}` : 'its promised delivery'}. `;
  body += 'We are re-planning production and arranging another carrier, ';
  body += confirmed
    ? `and production and logistics have confirmed a new delivery time: ${humanTime(confirmed)}.`
    : 'and will confirm a new date as soon as it is certain.';

  const messages = [];
  const callBrief = (caller) => {
    const lines = [
      `Call ${who}${customer.phone ? ` on ${customer.phone}` : ''} about order ${no}: it is at risk of arriving late.`,
    ];
    if (health && health.score !== undefined) lines.push(`Health score ${health.score}.`);
    if (health && Array.isArray(health.reasons) && health.reasons.length) {
      lines.push('Why:', ...health.reasons.map((r) => `- ${r}`));
    }
    lines.push('Explain the recovery plan (re-planned production, another carrier). Do not promise a new date before production and logistics confirm it.');
    return message('task', caller, `Call ${who} about the delay of order ${no}`, lines.join('\n'), {
      ...meta,
      kind: caller === 'supervisor' ? 'supervisor-call' : 'personal-call',
      phone: customer.phone,
    });
  };

  let kind;
  if (tier === 'strategic') {
    messages.push(callBrief('supervisor'));
    body += ` As an apology we offer ${str(data.compensation) ?? DEFAULT_COMPENSATION}.`;
    kind = 'email';
  } else if (tier === 'regular') {
    messages.push(callBrief('account-manager'));
    body += ` Your account manager will call you. You can follow the order at ${link}`;
    kind = 'written-notice';
  } else {
    body += ` Follow its progress at ${link}`;
    kind = 'standard-email';
  }
  body += `\n\n${str(data.signature) ?? 'Customer Service'}`;
  messages.push(
    customer.email
      ? message('email', customer.email, `Your order ${no} may arrive later than promised`, body, { ...meta, kind })
      : noEmailTask(no, who, kind, meta),
  );
  return messages;
}

/** Tells the customer of a confirmed delay, by tier (delay-emergency-response). */
function delayNotice({ data }, warnings) {
  const no = orderNo(data);
  const customer = customerOf(data);
  const tier = customer.tier ?? 'new';
  if (!customer.tier) warnings.push(`unknown customer tier ${JSON.stringify(customer.tierGiven ?? null)}: treated as new`);
  const name = customer.contactName ?? customer.name ?? 'customer';
  const who = customer.name ?? 'the customer';
  const notice = Number.isFinite(Number(data.notice_number)) ? Number(data.notice_number) : 1;
  const update = notice > 1 ? 'Update: ' : '';
  const ticket = typeof data.ticket === 'string' ? data.ticket : str(data.ticket?.number);
  const delay = Number(data.delay_days);
  const haveDelay = Number.isFinite(delay) && delay > 0;
  const confirmed = str(data.confirmed_delivery_at);
  const link = `${str(data.tracking_url) ?? DEFAULT_TRACKING_URL}${encodeURIComponent(no)}`;
  const meta = { template: 'delay-notice', tier, order_id: no, ticket, notice_number: notice };

  // The one sentence about timing: an estimate, or a date only once it is confirmed.
  const timing = confirmed
    ? `The new delivery time, confirmed by production and logistics, is ${humanTime(confirmed)}.`
    : `${haveDelay ? `We currently expect it about ${days(delay)} later than promised. ` : ''}We will confirm the new date as soon as it is certain.`;
  const signature = `\n\n${str(data.signature) ?? 'Customer Service'}`;

  const call = (caller, kind, subject, lines) =>
    customer.phone
      ? message('phone', customer.phone, subject, lines, { ...meta, kind, caller, customer: who })
      : message('task', caller, subject, `${lines}\nNo phone number is on file: find one in the CRM.`, { ...meta, kind, caller, customer: who });
  const email = (kind, subject, body) =>
    customer.email ? message('email', customer.email, subject, body, { ...meta, kind }) : noEmailTask(no, who, kind, meta);

  if (tier === 'strategic') {
    return [
      call('supervisor', 'supervisor-call', `${update}Supervisor call: order ${no} is delayed`,
        `Call ${who}: order ${no} is delayed${haveDelay ? ` by about ${days(delay)}` : ''}${ticket ? ` (ticket ${ticket})` : ''}. Explain the recovery plan and the compensation offer; promise no date before production and logistics confirm it.`),
      email('email', `${update}Your order ${no} is delayed`,
        `Dear ${name},\n\nwe are sorry: order ${no} is delayed. ${timing} Progress: ${link}${signature}`),
      email('compensation-offer', `${update}Order ${no}: our compensation offer`,
        `Dear ${name},\n\nfor the inconvenience of the delay on order ${no} we offer ${str(data.compensation) ?? DEFAULT_COMPENSATION}. Your supervisor contact will go through it with you.${signature}`),
    ];
  }
  if (tier === 'regular') {
    return [
      call('account-manager', 'personal-call', `${update}Personal call: order ${no} is delayed`,
        `Call ${who} about the delay on order ${no}${haveDelay ? ` (about ${days(delay)})` : ''}${ticket ? `, ticket ${ticket}` : ''}. Promise no date before production and logistics confirm it.`),
      email('written-notice', `${update}Written notice: order ${no} is delayed`,
        `Dear ${name},\n\nthis confirms in writing that order ${no} is delayed. ${timing} Progress: ${link}${signature}`),
    ];
  }
  return [
    email('standard-email', `${update}Your order ${no} is delayed`,
      `Hello ${name},\n\nyour order ${no} is delayed. ${timing} Follow its progress at ${link}${signature}`),
  ];
}

/** The investigation ticket had no reply in 4 hours: escalate (internal). */
function investigationOverdue({ data }) {
  const no = orderNo(data);
  const t = isObject(data.ticket) ? data.ticket : { number: str(data.ticket) };
  const audience = str(data.audience) ?? 'department-manager';
  const lines = [
    `Ticket ${t.number ?? '(no number)'} for order ${no} has had no reply for 4 hours and needs one now.`,
    t.customer && `Customer: ${t.customer}`,
    t.problem && `Problem: ${t.problem}`,
    t.blocked_at && `Blocked at: ${t.blocked_at}`,
    t.initiator && `Opened by: ${t.initiator}`,
    t.reply_by && `Reply was due: ${humanTime(t.reply_by)}`,
  ].filter(Boolean);
  return [
    message('email', str(data.recipient) ?? audience, `Investigation ticket for order ${no} unanswered after 4 hours`, lines.join('\n'), {
      template: 'investigation-overdue', kind: 'escalation', audience, order_id: no, ticket: t.number,
    }),
  ];
}

/** A paid order has not shipped for 48 hours: remind customer service (internal). */
function unshipped48h({ data }) {
  const no = orderNo(data);
  const audience = str(data.audience) ?? 'customer-service';
  const ticket = typeof data.ticket === 'string' ? data.ticket : str(data.ticket?.number);
  const paid = str(data.paid_at);
  return [
    message('chat', str(data.recipient) ?? audience, `Order ${no} not shipped 48 hours after payment`,
      `Paid at ${paid ? humanTime(paid) : 'an unknown time'}, still not shipped.${ticket ? ` Dispute ticket ${ticket}:` : ''} chase the warehouse and call the customer.`,
      { template: 'unshipped-48h', kind: 'reminder', audience, order_id: no, ticket }),
  ];
}

const RENDERERS = {
  'early-warning': earlyWarning,
  'delay-notice': delayNotice,
  'investigation-overdue': investigationOverdue,
  'unshipped-48h': unshipped48h,
};

/**
 * Renders the messages for one input document.
 * @returns {{messages: object[], warnings: string[]}}
 */
export function render(doc) {
  const ctx = unwrap(doc);
  const renderer = RENDERERS[ctx.template];
  if (!renderer) throw new InputError(`unknown template '${ctx.template}' (known: ${TEMPLATES.join(', ')})`);
  const warnings = [];
  return { messages: renderer(ctx, warnings), warnings };
}
