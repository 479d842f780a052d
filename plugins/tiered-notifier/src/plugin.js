// The tiered-notifier component: waystation:plugin/notifier, built with componentize-js.
// The logic is in render.js; this file parses the JSON, maps errors onto the WIT `result`
// and logs. A world-level import is the module's default import.
import log from 'log';
import { InputError, render as renderMessages } from './render.js';

// componentize-js turns a thrown value with a `payload` into the `err` case of the result;
// anything else thrown would trap, so every failure is caught and wrapped.
const fail = (message) => {
  log('warn', `tiered-notifier: ${message}`);
  return { payload: message };
};

export function render(input) {
  let doc;
  try {
    doc = JSON.parse(input);
  } catch (e) {
    throw fail(`input is not valid JSON: ${e && e.message}`);
  }
  try {
    const { messages, warnings } = renderMessages(doc);
    for (const w of warnings) log('warn', `tiered-notifier: ${w}`);
    log('info', `tiered-notifier: ${messages.length} message(s): ${messages.map((m) => m.channel).join(', ')}`);
    return messages;
  } catch (e) {
    throw fail(e instanceof InputError ? e.message : `internal error: ${e && e.message}`);
  }
}
